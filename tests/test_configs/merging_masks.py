"""Which mask modules of a model merge on one forward."""
from typing import Callable, Dict

import torch
from torch import nn

from ltm_mm.models.layers import LearnableMergeMask


def merging_by_mask(model: nn.Module, forward: Callable[[], object]
                    ) -> Dict[str, bool]:
    """``{name: merged}`` for every mask module of ``model`` (names as in
    ``model.named_modules()``) over one call of ``forward``, which runs
    ``model`` or a part of it.  A mask module the forward did not reach
    counts as not merging."""
    masks = {name: module for name, module in model.named_modules()
             if isinstance(module, LearnableMergeMask)}
    for mask in masks.values():
        mask.record, mask.recording = None, True
    try:
        with torch.no_grad():
            forward()
    finally:
        for mask in masks.values():
            mask.recording = False
    return {name: mask.record is not None and mask.record.merging
            for name, mask in masks.items()}

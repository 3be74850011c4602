"""The one way to find the mask modules of a model's LTM layers."""
from typing import List

from mmengine.model import is_model_wrapper
from torch import nn

from .merge_mask import LearnableMergeMask


def find_merge_masks(model: nn.Module) -> List[LearnableMergeMask]:
    """Mask modules of every LTM layer of ``model``, in network order (a
    DDP or other model wrapper is unwrapped).  Each one's statistics learn
    their layer's name, which their warnings and the hook's log lines use.
    Baseline mergers (``pool``, ``tome``) have none."""
    if is_model_wrapper(model):
        model = model.module
    masks = []
    for name, module in model.named_modules():
        if isinstance(module, LearnableMergeMask):
            module.statistics.layer_name = name
            masks.append(module)
    return masks

"""What one forward of a mask module records for the statistics and the IB
analysis (set only while the module's ``recording`` is True)."""
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class MergeRecord:
    """Detached per-forward record of one LTM layer.

    ``B`` counts token sequences: MobileViT has ``p_h * p_w`` sequences per
    image, consecutive per image.

    Attributes:
        merged_mean: ``(B, D)`` token mean of the prior merge ``G0^T Z``
            (the class centroids are defined on it).
        input_mean: ``(B, D_in)`` token mean of the layer's input.
        phi: ``(B, K)`` class posteriors of the IB step, None without
            statistics.
        num_merged: ``P``, merged tokens per sequence.
        num_tokens: ``N``, source tokens per sequence.
        merging: whether this forward merged.
        applied_mean: ``(B, D)`` token mean of the merge actually applied
            (final ``G``), filled by
            :func:`~ltm_mm.models.layers.applied_merge.record_applied_merge`.
        applied_num_merged: merged tokens of that merge (``N`` when the
            layer did not merge).
    """
    merged_mean: torch.Tensor
    input_mean: torch.Tensor
    phi: Optional[torch.Tensor]
    num_merged: int
    num_tokens: int
    merging: bool
    applied_mean: Optional[torch.Tensor] = None
    applied_num_merged: Optional[int] = None

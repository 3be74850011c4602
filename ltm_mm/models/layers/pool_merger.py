"""``pool``: fixed area downsampling onto the merged grid (no parameters).

The floor a learned merger must beat: the same merged grid, ratios and
unmerge rule as LTM (:mod:`ltm_mm.ops.area_pool`), but ``G`` is the
input-independent fractional-area average of the source tokens each merged
cell covers.  Its plan exposes what the LTM blocks use of a
:class:`~ltm_mm.models.layers.MergePlan` (``merge``, ``unmerge``,
``source_hw``, ``merged_hw``, ``dense``; :mod:`.merger_contract`), so the
blocks run it unchanged.
"""
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import nn

from ltm_mm.ops import (area_pool_tokens, area_unpool_tokens, area_weights,
                        check_ratio, merge_grids)
from .merger_contract import MergeInputs


@dataclass
class AreaPoolPlan:
    """Area pooling from ``source_hw`` to ``merged_hw`` and back."""
    source_hw: tuple
    merged_hw: tuple
    keeps_grid: ClassVar[bool] = True
    merged_sizes: ClassVar[None] = None

    def merge(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, C) -> (B, P, C)``."""
        return area_pool_tokens(tokens, self.source_hw, self.merged_hw)

    def unmerge(self, merged: torch.Tensor) -> torch.Tensor:
        """``(B, P, C) -> (B, N, C)``, the LTM plan's unmerge rule."""
        return area_unpool_tokens(merged, self.source_hw, self.merged_hw)

    def dense(self) -> torch.Tensor:
        """``(1, N, P)`` dense ``G`` (for analysis and tests)."""
        pool_h = area_weights(self.source_hw[0], self.merged_hw[0])
        pool_w = area_weights(self.source_hw[1], self.merged_hw[1])
        # G^T = A_h (x) A_w: (P, N) in row-major grid order -> (1, N, P)
        return torch.kron(pool_h, pool_w).t()[None].float()


class AreaPoolMerger(nn.Module):
    """Merger ``pool`` of one layer: area pooling at ratio r.

    Args:
        ratio (float): r in (0, 1]; the merged grid is LTM's
            ``(ceil(h sqrt r), ceil(w sqrt r))``.
    """
    keeps_grid = True
    uses_attention_keys = False

    def __init__(self, ratio: float):
        super().__init__()
        self.ratio = check_ratio(ratio)

    def forward(self, tokens: torch.Tensor, source_hw: tuple,
                inputs: MergeInputs = MergeInputs()
                ) -> Optional[AreaPoolPlan]:
        """Plan for ``tokens`` ``(B, N, D)`` on ``source_hw``; None when the
        merged grid equals the source grid (nothing to merge).  ``inputs``
        is unused: the plan depends only on the grids."""
        source_hw, merged_hw = merge_grids(tokens.shape[1], source_hw,
                                           self.ratio)
        if merged_hw == source_hw:
            return None
        return AreaPoolPlan(source_hw, merged_hw)

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}'

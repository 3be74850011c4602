"""One layer's merge, applied to any tensor on the same token grid."""
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from ltm_mm.ops import WindowTable, merge_tokens, unmerge_tokens


@dataclass
class MergePlan:
    """The sparse merging matrix ``G`` of a batch, with its inverse (the
    ``ltm`` merger's :class:`~.merger_contract.MergerPlan`).

    Attributes:
        weights: ``(B, P, K)`` window weights (masked); each merged token's
            weights sum to 1.  Carries gradients to the mask module.
        table: the window index table.
        spread_weights: ``(B, P, K)`` weights used by :meth:`unmerge`, all
            positive (the window softmax before the hard mask), so a source
            token that the mask dropped from every window still gets a value
            back.  Defaults to ``weights``.
        cover_weights: optional ``(B, N, C)``
            :func:`~ltm_mm.ops.unmerge_cover_weights` of the unmerge's
            weights, when they were computed with the plan (a CUDA graph of
            the mask module computes them; :mod:`.eval_graphs`).
    """
    weights: torch.Tensor
    table: WindowTable
    spread_weights: Optional[torch.Tensor] = None
    cover_weights: Optional[torch.Tensor] = None
    #: merged tokens are a grid (:class:`~.merger_contract.MergerPlan`)
    keeps_grid: ClassVar[bool] = True
    #: a grid merge needs no token sizes downstream
    merged_sizes: ClassVar[None] = None

    @property
    def source_hw(self) -> tuple:
        return self.table.source_hw

    @property
    def merged_hw(self) -> tuple:
        return self.table.merged_hw

    def merge(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, C) -> (B, P, C)`` with this plan's ``G``."""
        return merge_tokens(tokens, self.weights, self.table)

    def unmerge(self, merged: torch.Tensor) -> torch.Tensor:
        """``(B, P, C) -> (B, N, C)``: each source token becomes the weighted
        average of the merged tokens whose window holds it."""
        weights = self.weights if self.spread_weights is None else \
            self.spread_weights
        return unmerge_tokens(merged, weights, self.table,
                              self.cover_weights)

    def dense(self) -> torch.Tensor:
        """``(B, N, P)`` dense ``G`` (for analysis and tests)."""
        batch, num_merged, num_slots = self.weights.shape
        num_sources = self.source_hw[0] * self.source_hw[1]
        dense = self.weights.new_zeros(batch, num_merged, num_sources)
        index = self.table.source_index.expand(batch, -1, -1)
        # add, not assign: an invalid slot (weight 0) repeats a valid token
        dense.scatter_add_(2, index, self.weights)
        return dense.transpose(1, 2)

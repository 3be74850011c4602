"""``tome``: Token Merging's bipartite soft matching as a merger.

ToMe (Bolya et al., ICLR 2023) merges the most similar tokens, measured on
the attention keys, by size-weighted averaging
(:mod:`ltm_mm.ops.bipartite_matching`); the unmerge copies each merged
token back to every source token it holds (ToMe for Stable Diffusion), so
dense outputs keep their strides.  It merges ``N - P`` tokens with
``P = h' w'`` of LTM's merged grid at the same ratio, so the three mergers
cost comparable MACs.

ToMe's merged tokens are a set, not a grid.  ``merged_hw`` is only the
nominal ``(h', w')`` with ``h' w' = P``, used to lay the set out as a map
for *per-token* layers (1x1 convolutions, transformer layers, chained
merges).  Operations that need spatial neighbours get the tokens unmerged
first (see the LTM blocks): the MobileViT fusion conv runs on the unmerged
map, the EfficientViT MBConv runs its depthwise conv on the unmerged map
between its 1x1 convs (:mod:`.set_merged_mbconv`).  Hence ``tome`` needs
``restore_resolution=True``.  Proportional attention (ToMe's ``log s``
attention bias) is not applied: every merger feeds the same unmodified
attention layers.
"""
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import nn

from ltm_mm.ops import (bipartite_soft_matching, check_ratio,
                        merge_by_assignment, merge_grids,
                        unmerge_by_assignment)
from .merger_contract import MergeInputs


@dataclass
class ToMePlan:
    """A bipartite-matching merge of a batch and its inverse.

    Attributes:
        assignment: ``(B, N)`` merged index of every source token.
        sizes: ``(B, N)`` sizes of the source tokens.
        merged_sizes: ``(B, P)`` sizes of the merged tokens (the sizes a
            following merge of the merged tokens starts from).
        source_hw: the source grid.
        merged_hw: nominal ``(h', w')``, ``h' * w' = P`` (not a grid).
    """
    assignment: torch.Tensor
    sizes: torch.Tensor
    merged_sizes: torch.Tensor
    source_hw: tuple
    merged_hw: tuple
    keeps_grid: ClassVar[bool] = False

    def merge(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, C) -> (B, P, C)``, size-weighted averages."""
        return merge_by_assignment(tokens, self.assignment, self.sizes,
                                   self.merged_sizes)

    def unmerge(self, merged: torch.Tensor) -> torch.Tensor:
        """``(B, P, C) -> (B, N, C)``: each source gets its merged token."""
        return unmerge_by_assignment(merged, self.assignment)

    def dense(self) -> torch.Tensor:
        """``(B, N, P)`` dense ``G`` (for analysis and tests)."""
        num_merged = self.merged_sizes.shape[1]
        one_hot = torch.nn.functional.one_hot(self.assignment, num_merged)
        weights = one_hot.to(self.sizes.dtype) * self.sizes[..., None]
        return weights / self.merged_sizes[:, None, :]


class ToMeMerger(nn.Module):
    """Merger ``tome`` of one layer (no parameters).

    Args:
        ratio (float): r in (0, 1]; merges to ``P = h' w'`` tokens, the
            token count of LTM's merged grid.
    """
    keeps_grid = False
    uses_attention_keys = True

    def __init__(self, ratio: float):
        super().__init__()
        self.ratio = check_ratio(ratio)

    def forward(self, tokens: torch.Tensor, source_hw: tuple,
                inputs: MergeInputs = MergeInputs()) -> Optional[ToMePlan]:
        """Plan for ``tokens`` ``(B, N, D)``.

        Args:
            inputs: ``attention_keys`` ``(B, N, C)`` are what similarity is
                measured on (``tokens`` when None); ``sizes`` ``(B, N)`` the
                sizes of the tokens when they are themselves merged tokens
                of an earlier ToMe layer (1 when None).

        Returns:
            A :class:`ToMePlan`, or None when ``P = N`` (nothing to merge).
        """
        source_hw, merged_hw = merge_grids(tokens.shape[1], source_hw,
                                           self.ratio)
        if merged_hw == source_hw:
            return None
        metric = tokens if inputs.attention_keys is None \
            else inputs.attention_keys
        assignment, sizes, merged_sizes = bipartite_soft_matching(
            metric, merged_hw[0] * merged_hw[1], inputs.sizes)
        return ToMePlan(assignment, sizes, merged_sizes, source_hw,
                        merged_hw)

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}'

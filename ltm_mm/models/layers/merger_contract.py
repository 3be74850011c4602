"""What every merger (``ltm``, ``pool``, ``tome``) and its plan provide.

A block hands its merger the tokens after a layer's attention, their grid
and a :class:`MergeInputs`; the merger returns a plan (or None when nothing
is merged) that the block applies with ``merge`` and undoes with
``unmerge``.  Blocks read only what these protocols name, so a new merger
needs no change to them: it says whether its merged tokens form a grid
(``keeps_grid``) and whether it matches on the attention keys
(``uses_attention_keys``; the block then captures them).
"""
from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class MergeInputs:
    """What a layer offers its merger besides the tokens to merge.

    Attributes:
        input_tokens: ``(B, N, D_in)`` the layer's input (the LTM
            statistics' input centroids read it while recording).
        attention_keys: ``(B, N, d)`` keys of the attention the merge
            follows, averaged over heads; only captured for a merger whose
            ``uses_attention_keys`` is True.
        sizes: ``(B, N)`` how many source tokens each token already holds,
            the previous plan's ``merged_sizes`` in a chain of merges; None
            when every token is one.
    """
    input_tokens: Optional[torch.Tensor] = None
    attention_keys: Optional[torch.Tensor] = None
    sizes: Optional[torch.Tensor] = None


@runtime_checkable
class MergerPlan(Protocol):
    """One layer's merge of a batch of token sequences, and its inverse.

    Attributes:
        source_hw: the source grid ``(h, w)``, ``N = h w``.
        merged_hw: the merged grid ``(h', w')``, ``P = h' w'``; nominal
            (a layout, not neighbours) when ``keeps_grid`` is False.
        keeps_grid: whether merged tokens have spatial neighbours, so that
            convolutions may run on the merged map.
        merged_sizes: ``(B, P)`` source tokens held by each merged token,
            for a following merge; None for grid merges.
    """
    source_hw: tuple
    merged_hw: tuple
    keeps_grid: bool
    merged_sizes: Optional[torch.Tensor]

    def merge(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, C) -> (B, P, C)``."""

    def unmerge(self, merged: torch.Tensor) -> torch.Tensor:
        """``(B, P, C) -> (B, N, C)``."""

    def dense(self) -> torch.Tensor:
        """``(B or 1, N, P)`` dense ``G`` (for analysis and tests)."""


@runtime_checkable
class Merger(Protocol):
    """The module of one merging layer."""
    ratio: float
    keeps_grid: bool
    uses_attention_keys: bool

    def __call__(self, tokens: torch.Tensor, source_hw: tuple,
                 inputs: MergeInputs = MergeInputs()
                 ) -> Optional[MergerPlan]:
        """Plan for ``tokens`` ``(B, N, D)`` on ``source_hw``; None when the
        merged grid equals the source grid."""

"""Windowed token merging ``X~ = G^T Z`` and its inverse (DESIGN section 2).

``G`` (N x P, columns summing to 1) is stored sparsely as per-window weights
``(B, P, K)`` over the ``K`` slots of :class:`~ltm_mm.ops.windows.WindowTable`.
Both directions loop over the (few) window slots and accumulate
``index_select`` results: this never materialises a ``(B, P, K, D)`` gather,
which measured about 2x slower on CPU for large grids.
"""
import torch

from .windows import WindowTable


def merge_tokens(tokens: torch.Tensor, weights: torch.Tensor,
                 table: WindowTable) -> torch.Tensor:
    """Merge ``(B, N, D)`` source tokens into ``(B, P, D)`` merged tokens.

    Args:
        tokens: ``(B, N, D)``, ``N = h * w`` of ``table.source_hw``.
        weights: ``(B, P, K)`` window weights of each merged token (a column
            of ``G``), normally summing to 1 over ``K``.
        table: the window table of this merge.
    """
    batch, num_tokens, _ = tokens.shape
    num_merged, num_slots = table.source_index.shape
    if num_tokens != table.source_hw[0] * table.source_hw[1]:
        raise ValueError(f'tokens have N={num_tokens} but the window table '
                         f'is for a {table.source_hw} grid')
    if weights.shape != (batch, num_merged, num_slots):
        expected = (batch, num_merged, num_slots)
        raise ValueError(f'weights must be (B, P, K) = {expected}, got '
                         f'{tuple(weights.shape)}')
    merged = None
    for slot in range(num_slots):
        # (B, N, D) -> (B, P, D): the slot's source token of every window
        term = tokens.index_select(1, table.source_index[:, slot])
        term = term * weights[:, :, slot, None]
        merged = term if merged is None else merged + term
    return merged


def unmerge_tokens(merged: torch.Tensor, weights: torch.Tensor,
                   table: WindowTable) -> torch.Tensor:
    """Spread ``(B, P, D)`` merged tokens back to ``(B, N, D)`` sources.

    ``Z_n = sum_p G[n, p] X~_p / sum_p G[n, p]``: each source token becomes
    the ``G``-weighted average of the merged tokens whose window holds it, so
    a constant map comes back unchanged.  A source whose every weight is 0
    (possible after hard masking) gets 0.
    """
    batch, num_merged, _ = merged.shape
    num_slots = table.num_slots
    if weights.shape != (batch, num_merged, num_slots):
        expected = (batch, num_merged, num_slots)
        raise ValueError(f'weights must be (B, P, K) = {expected}, got '
                         f'{tuple(weights.shape)}')
    # (B, P, K) -> (B, P*K + 1): the extra slot is the zero pad
    flat_weights = torch.cat(
        [weights.reshape(batch, -1), weights.new_zeros(batch, 1)], dim=1)
    # pad slots point past the last merged token: give them a zero token
    merged_padded = torch.cat([merged, merged.new_zeros(batch, 1,
                                                        merged.shape[2])], 1)
    # (N, C) merged-token index of each covering slot (pad -> P)
    reverse_target = torch.div(
        table.reverse_slot, num_slots, rounding_mode='floor')
    total = None
    norm = None
    for cover in range(table.reverse_slot.shape[1]):
        # (B, N): the weight G[n, p] of this cover of every source token
        weight = flat_weights.index_select(1, table.reverse_slot[:, cover])
        # (B, P+1, D) -> (B, N, D)
        term = merged_padded.index_select(1, reverse_target[:, cover])
        term = term * weight[:, :, None]
        total = term if total is None else total + term
        norm = weight if norm is None else norm + weight
    return total / norm.clamp_min(torch.finfo(norm.dtype).tiny)[:, :, None]

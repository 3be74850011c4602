"""Windowed token merging ``X~ = G^T Z`` and its inverse (DESIGN section 2).

``G`` (N x P, columns summing to 1) is stored sparsely as per-window weights
``(B, P, K)`` over the ``K`` slots of :class:`~ltm_mm.ops.windows.WindowTable`.
Both directions are one ``F.embedding_bag`` call (a weighted sum of gathered
rows, with autograd for the rows and the weights): it never materialises a
``(B, P, K, D)`` gather and measured 10-30x faster on CPU than gathering or
looping over slots (measured with a 20x20 grid, D=144, 4 sequences).
"""
import torch
import torch.nn.functional as F

from .windows import WindowTable


def _weighted_row_sum(rows: torch.Tensor, index: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """``out[i] = sum_j weights[i, j] * rows[index[i, j]]``.

    Args:
        rows: ``(R, D)``; index, weights: ``(M, J)``.  Returns ``(M, D)``.
    """
    return F.embedding_bag(index, rows, mode='sum',
                           per_sample_weights=weights.to(rows.dtype))


def _check_weights(weights, batch, table):
    expected = (batch, ) + tuple(table.source_index.shape)
    if tuple(weights.shape) != expected:
        raise ValueError(f'weights must be (B, P, K) = {expected}, got '
                         f'{tuple(weights.shape)}')


def merge_tokens(tokens: torch.Tensor, weights: torch.Tensor,
                 table: WindowTable) -> torch.Tensor:
    """Merge ``(B, N, D)`` source tokens into ``(B, P, D)`` merged tokens.

    Args:
        tokens: ``(B, N, D)``, ``N = h * w`` of ``table.source_hw``.
        weights: ``(B, P, K)`` window weights of each merged token (a column
            of ``G``), normally summing to 1 over ``K``.
        table: the window table of this merge.
    """
    batch, num_tokens, dim = tokens.shape
    if num_tokens != table.source_hw[0] * table.source_hw[1]:
        raise ValueError(f'tokens have N={num_tokens} but the window table '
                         f'is for a {table.source_hw} grid')
    _check_weights(weights, batch, table)
    num_merged, num_slots = table.source_index.shape
    # (B, P, K): flat row of each slot's source token in (B*N, D)
    offsets = torch.arange(batch, device=tokens.device) * num_tokens
    index = table.source_index[None] + offsets[:, None, None]
    merged = _weighted_row_sum(tokens.reshape(batch * num_tokens, dim),
                               index.reshape(-1, num_slots),
                               weights.reshape(-1, num_slots))
    return merged.view(batch, num_merged, dim)  # (B*P, D) -> (B, P, D)


def unmerge_tokens(merged: torch.Tensor, weights: torch.Tensor,
                   table: WindowTable) -> torch.Tensor:
    """Spread ``(B, P, D)`` merged tokens back to ``(B, N, D)`` sources.

    ``Z_n = sum_p G[n, p] X~_p / sum_p G[n, p]``: each source token becomes
    the ``G``-weighted average of the merged tokens whose window holds it, so
    a constant map comes back unchanged.  A source whose every weight is 0
    (possible after hard masking) gets 0.
    """
    batch, num_merged, dim = merged.shape
    _check_weights(weights, batch, table)
    num_slots = table.num_slots
    num_sources, max_cover = table.reverse_slot.shape
    # (B, P*K + 1): the extra slot is the zero pad of the reverse table
    flat_weights = torch.cat(
        [weights.reshape(batch, -1), weights.new_zeros(batch, 1)], dim=1)
    # (B, N, C): G[n, p] of every slot covering source n
    cover_weights = flat_weights.index_select(
        1, table.reverse_slot.reshape(-1)).view(batch, num_sources, max_cover)
    norm = cover_weights.sum(-1, keepdim=True)
    cover_weights = cover_weights / norm.clamp_min(torch.finfo(norm.dtype).tiny)
    # (N, C) merged token of each cover; pad slots (index P*K) -> P - 1 with
    # weight 0, so they add nothing
    target = torch.div(table.reverse_slot, num_slots, rounding_mode='floor')
    target = target.clamp_max(num_merged - 1)
    offsets = torch.arange(batch, device=merged.device) * num_merged
    index = target[None] + offsets[:, None, None]  # (B, N, C)
    restored = _weighted_row_sum(merged.reshape(batch * num_merged, dim),
                                 index.reshape(-1, max_cover),
                                 cover_weights.reshape(-1, max_cover))
    return restored.view(batch, num_sources, dim)  # (B*N, D) -> (B, N, D)

"""Windowed token merging ``X~ = G^T Z`` and its inverse (docs/design.md,
sections 1 and 5).

``G`` (N x P, columns summing to 1) is stored sparsely as per-window weights
``(B, P, K)`` over the ``K`` slots of :class:`~ltm_mm.ops.windows.WindowTable`.

Two primitives compute the same weighted row sums:

* :func:`bagged_row_sum`, ``F.embedding_bag`` (weighted sum of gathered
  rows, with autograd for rows and weights), eager on every device and
  traced on the CPU.  It never materialises the ``(B, P, K, D)`` gather,
  which makes it much faster than gathering on the CPU (docs/speed.md,
  "Measurements behind the code").  Inductor calls it as an ATen kernel,
  so the weights are computed once, before it.
* :func:`gathered_row_sum`, traced for a GPU: gather, multiply, sum, which
  inductor fuses into one kernel that writes no gather.  Left alone,
  inductor inlines into that kernel whatever computes its inputs, redone
  for every channel and window slot: the weights (window softmax, hard
  mask, cover gather and normalisation) and the rows (a residual add, a
  patch unfold's index arithmetic), which made compiled LTM layers slower
  than eager ones on the CPU and as costly as LTM's whole extra time on a
  GPU (docs/speed.md, "Measurements behind the code").  So the traced GPU
  merge marks rows and weights :func:`computed_once`
  (:func:`fused_gather_row_sum`).
  An ONNX export uses it too: ONNX has no ``embedding_bag``, and the
  exporters write one as a ``Loop`` over the bags.

The flat row indices (window slots offset by each sequence's first row)
depend only on the table and the batch size; eager forwards cache them.
"""
from functools import lru_cache, wraps
from typing import Optional

import torch
import torch.nn.functional as F

from .windows import WindowTable


def gathered_row_sum(rows: torch.Tensor, index: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
    """``out[i] = sum_j weights[i, j] * rows[index[i, j]]`` as a gather,
    a product and a sum (traced for a GPU, where the compiler fuses them).

    Args:
        rows: ``(R, D)``; index, weights: ``(M, J)``.  Returns ``(M, D)``.
    """
    # (M, J, D) gather times (M, J, 1) weights, summed over J -> (M, D)
    return (rows[index] * weights.to(rows.dtype)[..., None]).sum(1)


def computed_once(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` itself, as an ``as_strided`` view of its own layout.

    Inductor computes the input of ``as_strided`` into a buffer (the view
    needs its memory) instead of inlining its computation into each of its
    consumers' loads; eager, it is a free view.
    """
    # the offset defaults to the tensor's own (asking for it would break
    # the traced graph)
    return tensor.as_strided(tensor.shape, tensor.stride())


def fused_gather_row_sum(rows: torch.Tensor, index: torch.Tensor,
                         weights: torch.Tensor) -> torch.Tensor:
    """:func:`gathered_row_sum` of rows and weights computed once, before
    the fused gather reads them (the traced GPU merge)."""
    return gathered_row_sum(computed_once(rows), index,
                            computed_once(weights))


def bagged_row_sum(rows: torch.Tensor, index: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
    """:func:`gathered_row_sum` by ``embedding_bag``, which never builds the
    ``(M, J, D)`` gather."""
    num_bags, bag_size = index.shape
    # embedding_bag reads each row as a block: rows strided across memory
    # (token-major views of channel-first maps, e.g. (1, C, N) transposed)
    # made it several times slower than copying them first.  The bags are
    # passed flat with their start offsets: for a 2-D index embedding_bag
    # would build the offsets (an arange) on every call.
    return F.embedding_bag(index.reshape(-1), rows.contiguous(),
                           bag_offsets(num_bags, bag_size, index.device),
                           mode='sum',
                           per_sample_weights=weights.to(
                               rows.dtype).reshape(-1))


def _weighted_row_sum(rows: torch.Tensor, index: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """The merge primitive of this call: fused gather when traced for a GPU,
    ``embedding_bag`` otherwise (module docstring)."""
    if torch.compiler.is_compiling() and rows.device.type != 'cpu':
        return fused_gather_row_sum(rows, index, weights)
    if torch.onnx.is_in_onnx_export():
        # ONNX has no embedding_bag: the exporters write it as a Loop over
        # the bags, which ONNX Runtime runs bag by bag
        return gathered_row_sum(rows, index, weights)
    return bagged_row_sum(rows, index, weights)


def cached_when_eager(maxsize: int):
    """Decorator: results cached per argument values in eager forwards,
    computed (a constant to the compiler) when traced.  For tensors that
    depend only on shapes and cached tables; made outside inference mode,
    so training forwards can reuse what eval forwards cached."""

    def decorate(make):
        @lru_cache(maxsize=maxsize)
        def cached(*args):
            with torch.inference_mode(False):
                return make(*args)

        @wraps(make)
        def call(*args):
            if torch.compiler.is_compiling():
                return make(*args)
            return cached(*args)

        return call

    return decorate


@cached_when_eager(maxsize=512)
def batched_index(index: torch.Tensor, batch: int,
                  rows_per_item: int) -> torch.Tensor:
    """``(batch * M, J)``: ``index`` ``(M, J)`` offset by each item's first
    row in a ``(batch * rows_per_item, D)`` matrix; cached per table tensor
    and batch in eager mode (tables are cached, so their tensors are stable
    keys)."""
    offsets = torch.arange(batch, device=index.device) * rows_per_item
    # (1, M, J) + (B, 1, 1) -> (B, M, J) -> (B*M, J)
    return (index[None] + offsets[:, None, None]).reshape(-1, index.shape[1])


@cached_when_eager(maxsize=64)
def bag_offsets(num_bags: int, bag_size: int,
                device: torch.device) -> torch.Tensor:
    """``(num_bags,)`` start of each bag of ``bag_size`` in a flat index."""
    return torch.arange(0, num_bags * bag_size, bag_size, device=device)


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
    index = batched_index(table.source_index, batch, num_tokens)
    # (B*N, D) rows, (B*P, K) bags -> (B*P, D) -> (B, P, D)
    merged = _weighted_row_sum(tokens.reshape(batch * num_tokens, dim), index,
                               weights.reshape(-1, num_slots))
    return merged.view(batch, num_merged, dim)


def unmerge_cover_weights(weights: torch.Tensor,
                          table: WindowTable) -> torch.Tensor:
    """``(B, N, C)`` weights of the merged tokens covering each source token,
    normalised to sum to 1 (0 where a source's every weight is 0): what
    :func:`unmerge_tokens` averages with.

    Args:
        weights: ``(B, P, K)`` window weights.
        table: the window table of the merge.
    """
    _check_weights(weights, weights.shape[0], table)
    return _cover_weights(weights, table)


def _cover_weights(weights: torch.Tensor,
                   table: WindowTable) -> torch.Tensor:
    """:func:`unmerge_cover_weights` of weights already checked."""
    batch = weights.shape[0]
    # (B, P*K + 1): the extra slot is the zero pad of the reverse table
    flat_weights = F.pad(weights.reshape(batch, -1), (0, 1))
    # (B, N, C): G[n, p] of every slot covering source n
    cover_weights = flat_weights[:, table.reverse_slot]
    norm = cover_weights.sum(-1, keepdim=True)
    return cover_weights / norm.clamp_min(torch.finfo(norm.dtype).tiny)


def unmerge_tokens(merged: torch.Tensor, weights: torch.Tensor,
                   table: WindowTable,
                   cover_weights: Optional[torch.Tensor] = None
                   ) -> torch.Tensor:
    """Spread ``(B, P, D)`` merged tokens back to ``(B, N, D)`` sources.

    ``Z_n = sum_p G[n, p] X~_p / sum_p G[n, p]``: each source token becomes
    the ``G``-weighted average of the merged tokens whose window holds it, so
    a constant map comes back unchanged.  A source whose every weight is 0
    (possible after hard masking) gets 0.  ``cover_weights``, when given,
    are :func:`unmerge_cover_weights` of ``weights``, computed beforehand.
    """
    batch, num_merged, dim = merged.shape
    _check_weights(weights, batch, table)
    num_sources, max_cover = table.reverse_slot.shape
    if cover_weights is None:  # weights checked above
        cover_weights = _cover_weights(weights, table)
    elif tuple(cover_weights.shape) != (batch, num_sources, max_cover):
        raise ValueError(f'cover_weights must be (B, N, C) = '
                         f'{(batch, num_sources, max_cover)}, got '
                         f'{tuple(cover_weights.shape)}')
    index = batched_index(table.reverse_target, batch, num_merged)
    # (B*P, D) rows, (B*N, C) bags -> (B*N, D) -> (B, N, D)
    restored = _weighted_row_sum(merged.reshape(batch * num_merged, dim),
                                 index, cover_weights.reshape(-1, max_cover))
    return restored.view(batch, num_sources, dim)

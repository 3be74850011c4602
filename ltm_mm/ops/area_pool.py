"""Fixed area resampling onto the merged grid: the ``pool`` baseline merger.

``G`` is input-independent and has no parameters: merged token ``(j, k)``
is the area average of the source tokens its cell covers when the source
grid ``h x w`` is divided into ``h' x w'`` equal cells.  Per axis

    A[j, i] = |[i, i + 1] n [j h / h', (j + 1) h / h']| * h' / h,

an ``(h', h)`` matrix whose rows sum to 1, and ``G^T = A_h (x) A_w`` (the
Kronecker product), applied separably.  For integer factors this is
exactly ``F.adaptive_avg_pool2d`` (= ``F.interpolate(mode='area')``); for
other factors it is the exact fractional-area average (equal to
nearest-upsampling by ``(h', w')`` followed by adaptive average pooling),
whose cells are uniform, centred at ``(j + 0.5) h / h' - 0.5`` like LTM's
merged grid (docs/design.md, section 2).  ``adaptive_avg_pool2d`` instead
averages whole tokens over ``[floor(j h / h'), ceil((j + 1) h / h'))``, overlapping
uneven bins for non-integer factors.

Unmerge is the rule the LTM plan uses (:func:`~ltm_mm.ops.unmerge_tokens`):
``Z_n = sum_p G[n, p] X~_p / sum_p G[n, p]``, here ``U_h X~ U_w^T`` with
``U = A^T`` normalised per source row.  It restores a constant exactly and
is nearest-neighbour upsampling at integer factors.
"""
from functools import lru_cache

import torch

from .shape_constants import building_constants


def area_weights(source: int, target: int) -> torch.Tensor:
    """``(target, source)`` fractional-area weights of one axis (float64);
    every row sums to 1."""
    if not 1 <= target <= source:
        raise ValueError(f'area pooling shrinks an axis: need 1 <= target '
                         f'<= source, got source={source}, target={target}')
    # cell j covers [j * s / t, (j + 1) * s / t) in source units
    edges = torch.arange(target + 1, dtype=torch.float64) * source / target
    lo = torch.arange(source, dtype=torch.float64)
    # (t, 1) against (1, s): overlap of cell j with source token i
    overlap = (torch.minimum(edges[1:, None], lo[None] + 1) -
               torch.maximum(edges[:-1, None], lo[None])).clamp_min(0)
    return overlap * target / source


@lru_cache(maxsize=256)
def _axis_operators(source: int, target: int, device: torch.device,
                    dtype: torch.dtype) -> tuple:
    """``(A, U)``: ``(t, s)`` pooling and ``(s, t)`` spreading weights."""
    with building_constants():  # reused by training forwards and traces
        pool = area_weights(source, target)
        spread = pool.t() / pool.sum(0)[:, None]  # (s, t), rows sum to 1
        return pool.to(device, dtype), spread.to(device, dtype)


def axis_operators(source: int, target: int, device, dtype) -> tuple:
    """Cached ``(A, U)`` of one axis on ``device`` in ``dtype``."""
    return _axis_operators(int(source), int(target), torch.device(device),
                           dtype)


def _separable(tokens: torch.Tensor, in_hw, op_h: torch.Tensor,
               op_w: torch.Tensor) -> torch.Tensor:
    """``out = op_h X op_w^T`` per channel for ``(B, h*w, C)`` tokens, as
    two batched products (``bmm``: counted exactly by the MAC counter)."""
    batch, _, channels = tokens.shape
    (out_h, height), (out_w, width) = op_h.shape, op_w.shape
    # (B, h*w, C) -> (B, h, w*C); (B, H', h) @ (B, h, w*C) -> (B, H', w*C)
    out = torch.bmm(op_h.expand(batch, -1, -1),
                    tokens.reshape(batch, height, width * channels))
    # (B, H', w*C) -> (B*H', w, C); (B*H', W', w) @ (.., w, C) -> (.., W', C)
    out = torch.bmm(op_w.expand(batch * out_h, -1, -1),
                    out.reshape(batch * out_h, width, channels))
    # (B*H', W', C) -> (B, H'*W', C)
    return out.reshape(batch, out_h * out_w, channels)


def area_pool_tokens(tokens: torch.Tensor, source_hw,
                     merged_hw) -> torch.Tensor:
    """``(B, N, C) -> (B, P, C)``: area average onto the merged grid."""
    if tokens.shape[1] != source_hw[0] * source_hw[1]:
        raise ValueError(f'tokens have N={tokens.shape[1]} but the grid is '
                         f'{source_hw[0]}x{source_hw[1]}')
    pool_h, _ = axis_operators(source_hw[0], merged_hw[0], tokens.device,
                               tokens.dtype)
    pool_w, _ = axis_operators(source_hw[1], merged_hw[1], tokens.device,
                               tokens.dtype)
    return _separable(tokens, source_hw, pool_h, pool_w)


def area_unpool_tokens(merged: torch.Tensor, source_hw,
                       merged_hw) -> torch.Tensor:
    """``(B, P, C) -> (B, N, C)``: each source token is the ``G``-weighted
    average of the merged tokens whose cell overlaps it."""
    if merged.shape[1] != merged_hw[0] * merged_hw[1]:
        raise ValueError(f'merged tokens have P={merged.shape[1]} but the '
                         f'merged grid is {merged_hw[0]}x{merged_hw[1]}')
    _, spread_h = axis_operators(source_hw[0], merged_hw[0], merged.device,
                                 merged.dtype)
    _, spread_w = axis_operators(source_hw[1], merged_hw[1], merged.device,
                                 merged.dtype)
    return _separable(merged, merged_hw, spread_h, spread_w)

"""Index tables of the local merging windows (docs/design.md, section 2).

Each target token ``p`` of the ``h' x w'`` merged grid merges the source
tokens inside a ``k_h x k_w`` window of the ``h x w`` source grid: the
product of one window per axis (:mod:`ltm_mm.ops.axis_windows`), centred on
``p``'s ideal position on a uniform grid of the merged size.  Slots outside
the grid, or outside the merged token's area-pooling cell, are invalid
(log-prior ``-inf``, weight 0) rather than shifted inwards, and the fixed
log-prior of a valid slot is the log of its area weight, so that the window
softmax of ``theta = 0`` is exactly area pooling onto the merged grid.  The
learnable logits ``theta`` (``k x k``) are indexed by the position inside
the window.

Tables depend only on ``(h, w, h', w', k)``.  :func:`window_table` caches
them per shape and device; a traced forward (``torch.compile``) calls it at
trace time and embeds the table as constants, so no table is built, and
nothing synchronises, on the hot path.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import torch

from .axis_windows import AxisWindows, axis_windows
from .shape_constants import building_constants


@dataclass(frozen=True)
class WindowTable:
    """Index tables for one ``(h, w) -> (h', w')`` merge with windows ``k``.

    Attributes:
        source_index: ``(P, K)`` long, flat source token of each window slot
            (``K = k_h * k_w``; ``k_h = min(k, h)``, or 1 when the rows are
            not merged; likewise ``k_w``).  Invalid slots point at a valid
            token of the grid; their weight is always 0.
        theta_index: ``(K,)`` long, flat index into ``theta.view(k * k)``.
        prior_logits: ``(P, K)`` float32, fixed log-prior of each slot: the
            log of its area-pooling weight (``-inf`` for invalid slots).
        reverse_slot: ``(N, C)`` long, for each source token the flat slots
            ``p * K + j`` whose window holds it, padded with ``P * K`` (a slot
            whose weight is always zero); ``C`` is the largest cover count.
        reverse_target: ``(N, C)`` long, the merged token ``p`` of each of
            those slots (0 for pads).
        source_hw, merged_hw: the two grids.
    """
    source_index: torch.Tensor
    theta_index: torch.Tensor
    prior_logits: torch.Tensor
    reverse_slot: torch.Tensor
    reverse_target: torch.Tensor
    source_hw: tuple
    merged_hw: tuple

    @property
    def num_slots(self) -> int:
        return self.source_index.shape[1]

    @property
    def num_merged(self) -> int:
        return self.source_index.shape[0]

    def to(self, device: torch.device) -> 'WindowTable':
        if self.source_index.device == device:
            return self
        return WindowTable(
            self.source_index.to(device), self.theta_index.to(device),
            self.prior_logits.to(device), self.reverse_slot.to(device),
            self.reverse_target.to(device), self.source_hw, self.merged_hw)


@dataclass(frozen=True)
class _AxisPlan:
    """One axis's windows, whether every source position is covered and,
    per source position, its covers padded to the longest: merged index,
    slot, and whether the entry is real."""
    windows: AxisWindows
    covered: bool
    cover_merged: tuple
    cover_slot: tuple
    cover_real: tuple


def _uncovered_error(source_hw, merged_hw, k):
    return ValueError(
        f'merging a {source_hw[0]}x{source_hw[1]} token grid into '
        f'{merged_hw[0]}x{merged_hw[1]} with {k}x{k} windows leaves source '
        f'tokens outside every window; use a larger merge ratio (the merged '
        f'grid must be at least about 1/{k} of the source along each axis) '
        f'or a larger window_size')


@lru_cache(maxsize=256)
def _axis_plan(size: int, merged: int, k: int) -> _AxisPlan:
    """Plain-Python part of a table, per axis."""
    windows = axis_windows(size, merged, k)
    covers = windows.covers()
    width = max(len(c) for c in covers)

    def pad(cover):
        return width - len(cover)

    return _AxisPlan(
        windows, all(covers),
        tuple(tuple([j for j, _ in c] + [0] * pad(c)) for c in covers),
        tuple(tuple([t for _, t in c] + [0] * pad(c)) for c in covers),
        tuple(tuple([True] * len(c) + [False] * pad(c)) for c in covers))


def _check_grids(source_hw, merged_hw, window_size):
    (height, width), (merged_h, merged_w) = source_hw, merged_hw
    if not (1 <= merged_h <= height and 1 <= merged_w <= width):
        raise ValueError(f'merged grid {merged_h}x{merged_w} must be within '
                         f'the source grid {height}x{width}')
    if window_size < 1:
        raise ValueError(f'window_size must be >= 1, got {window_size}')


def build_window_table(source_hw, merged_hw, window_size: int,
                       device: Optional[torch.device] = None) -> WindowTable:
    """Build the :class:`WindowTable` of ``source_hw -> merged_hw`` (no
    cache; traceable)."""
    _check_grids(source_hw, merged_hw, window_size)
    (height, width), (merged_h, merged_w) = source_hw, merged_hw
    k = window_size
    row_plan = _axis_plan(height, merged_h, k)
    col_plan = _axis_plan(width, merged_w, k)
    rows, cols = row_plan.windows, col_plan.windows
    if not (row_plan.covered and col_plan.covered):
        raise _uncovered_error(source_hw, merged_hw, k)
    num_merged, num_slots = merged_h * merged_w, rows.length * cols.length

    pos_h, pos_w = torch.tensor(rows.positions), torch.tensor(cols.positions)
    # (h', 1, k_h, 1) and (1, w', 1, k_w) -> (h', w', k_h, k_w) -> (P, K)
    source = pos_h[:, None, :, None] * width + pos_w[None, :, None, :]
    source = source.reshape(num_merged, num_slots)
    valid = (torch.tensor(rows.valid)[:, None, :, None] &
             torch.tensor(cols.valid)[None, :, None, :])
    prior = (torch.tensor(rows.prior, dtype=torch.float32)[:, None, :, None] +
             torch.tensor(cols.prior, dtype=torch.float32)[None, :, None, :])
    prior = prior.masked_fill(~valid, float('-inf'))
    prior = prior.reshape(num_merged, num_slots)
    dh = torch.arange(rows.length) + rows.theta_offset
    dw = torch.arange(cols.length) + cols.theta_offset
    theta_index = (dh[:, None] * k + dw[None, :]).reshape(num_slots)

    # reverse tables: products of the per-axis covers
    pad = num_merged * num_slots
    row_j, row_t, row_real = (torch.tensor(v) for v in (
        row_plan.cover_merged, row_plan.cover_slot, row_plan.cover_real))
    col_j, col_t, col_real = (torch.tensor(v) for v in (
        col_plan.cover_merged, col_plan.cover_slot, col_plan.cover_real))
    # (h, 1, C_h, 1) with (1, w, 1, C_w) -> (h, w, C_h, C_w) -> (N, C)
    target = row_j[:, None, :, None] * merged_w + col_j[None, :, None, :]
    slot = (target * num_slots + row_t[:, None, :, None] * cols.length +
            col_t[None, :, None, :])
    real = row_real[:, None, :, None] & col_real[None, :, None, :]
    num_sources = height * width
    slot = torch.where(real, slot, pad).reshape(num_sources, -1)
    target = torch.where(real, target, 0).reshape(num_sources, -1)
    table = WindowTable(source, theta_index, prior, slot, target,
                        (height, width), (merged_h, merged_w))
    return table if device is None else table.to(torch.device(device))


@lru_cache(maxsize=256)
def _cached_table(height, width, merged_h, merged_w, k,
                  device: torch.device) -> WindowTable:
    # real tensors whoever asks first: an eval forward under inference mode
    # or an export tracing with fake tensors (see .shape_constants)
    with building_constants():
        return build_window_table((height, width), (merged_h, merged_w), k,
                                  device)


@torch._dynamo.assume_constant_result
def window_table(source_hw, merged_hw, window_size: int,
                 device=None) -> WindowTable:
    """Cached :class:`WindowTable` for ``source_hw -> merged_hw``.

    A traced forward (``torch.compile``) runs it once at trace time and
    keeps the table as constants of the graph: nothing of it runs per call.
    """
    _check_grids(source_hw, merged_hw, window_size)
    key = tuple(int(v) for v in (*source_hw, *merged_hw, window_size))
    return _cached_table(*key, torch.device(device or 'cpu'))

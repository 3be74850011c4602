"""Index tables of the local merging windows (DESIGN section 2, Locality).

Each target token ``p`` of the ``h' x w'`` merged grid merges the source
tokens inside a ``k x k`` window of the ``h x w`` source grid, centred on
``p``'s position mapped back into the source grid and shifted inwards at the
borders (so a window never leaves the grid and never repeats a token).  On an
axis shorter than ``k`` the window spans the whole axis.  The learnable logits
``theta`` (``k x k``) are indexed by the position inside the window.

Tables depend only on ``(h, w, h', w', k)`` and are cached.
"""
from dataclasses import dataclass
from functools import lru_cache

import torch


@dataclass(frozen=True)
class WindowTable:
    """Index tables for one ``(h, w) -> (h', w')`` merge with windows ``k``.

    Attributes:
        source_index: ``(P, K)`` long, flat source token of each window slot
            (``K = k_h * k_w`` slots, ``k_h = min(k, h)``, ``k_w = min(k, w)``).
        theta_index: ``(P, K)`` long, flat index into ``theta.view(k * k)``.
        reverse_slot: ``(N, C)`` long, for each source token the flat slots
            ``p * K + j`` whose window holds it, padded with ``P * K`` (a slot
            whose weight is always zero); ``C`` is the largest cover count.
        source_hw, merged_hw: the two grids.
    """
    source_index: torch.Tensor
    theta_index: torch.Tensor
    reverse_slot: torch.Tensor
    source_hw: tuple
    merged_hw: tuple

    @property
    def num_slots(self) -> int:
        return self.source_index.shape[1]

    def to(self, device: torch.device) -> 'WindowTable':
        if self.source_index.device == device:
            return self
        return WindowTable(
            self.source_index.to(device), self.theta_index.to(device),
            self.reverse_slot.to(device), self.source_hw, self.merged_hw)


def _axis_windows(size: int, merged: int, k: int):
    """Window start of each target along one axis, window length, and the
    offset of the window inside theta's ``k`` positions."""
    length = min(k, size)
    # centre of target j mapped back: floor((j + 0.5) * size / merged)
    target = torch.arange(merged, dtype=torch.float64)
    centre = torch.floor((target + 0.5) * size / merged).long()
    start = (centre - length // 2).clamp(0, size - length)
    return start, length, (k - length) // 2


@lru_cache(maxsize=256)
def _build_table(height: int, width: int, merged_h: int, merged_w: int,
                 k: int) -> WindowTable:
    start_h, len_h, off_h = _axis_windows(height, merged_h, k)
    start_w, len_w, off_w = _axis_windows(width, merged_w, k)
    dh = torch.arange(len_h)
    dw = torch.arange(len_w)
    # rows/cols of every slot: (h', k_h) and (w', k_w)
    rows = start_h[:, None] + dh[None, :]
    cols = start_w[:, None] + dw[None, :]
    # (h', 1, k_h, 1) x (1, w', 1, k_w) -> (h', w', k_h, k_w) -> (P, K)
    source = (rows[:, None, :, None] * width + cols[None, :, None, :])
    source = source.reshape(merged_h * merged_w, len_h * len_w)
    theta = ((dh[:, None] + off_h) * k + (dw[None, :] + off_w)).reshape(-1)
    theta = theta.expand(merged_h * merged_w, -1).contiguous()

    num_sources = height * width
    counts = torch.bincount(source.reshape(-1), minlength=num_sources)
    if bool((counts == 0).any()):
        raise ValueError(
            f'merging a {height}x{width} token grid into {merged_h}x'
            f'{merged_w} with {k}x{k} windows leaves source tokens outside '
            f'every window; use a larger merge ratio (the merged grid must '
            f'be at least about 1/{k} of the source along each axis) or a '
            f'larger window_size')
    # reverse table: sort slots by source token, then pad each run to C
    flat_source = source.reshape(-1)
    order = torch.argsort(flat_source, stable=True)
    max_cover = int(counts.max())
    run_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(flat_source.numel()) - run_start[flat_source[order]]
    pad_slot = flat_source.numel()  # the always-zero slot
    reverse = torch.full((num_sources, max_cover), pad_slot, dtype=torch.long)
    reverse[flat_source[order], rank] = order
    return WindowTable(source, theta, reverse, (height, width),
                       (merged_h, merged_w))


def window_table(source_hw, merged_hw, window_size: int,
                 device=None) -> WindowTable:
    """Cached :class:`WindowTable` for ``source_hw -> merged_hw``."""
    (height, width), (merged_h, merged_w) = source_hw, merged_hw
    if not (1 <= merged_h <= height and 1 <= merged_w <= width):
        raise ValueError(f'merged grid {merged_h}x{merged_w} must be within '
                         f'the source grid {height}x{width}')
    if window_size < 1:
        raise ValueError(f'window_size must be >= 1, got {window_size}')
    key = (int(height), int(width), int(merged_h), int(merged_w),
           int(window_size))
    if device is None or torch.device(device).type == 'cpu':
        return _build_table(*key)
    return _table_on_device(*key, torch.device(device))


@lru_cache(maxsize=256)
def _table_on_device(height, width, merged_h, merged_w, k,
                     device: torch.device) -> WindowTable:
    return _build_table(height, width, merged_h, merged_w, k).to(device)

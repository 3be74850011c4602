"""Merging windows along one axis of the token grid (pure Python).

Merged token ``j`` of an axis of ``merged`` tokens ideally sits at
``centre_j = (j + 0.5) * size / merged - 0.5`` on the source axis of ``size``
tokens (the centres of a uniform grid of the merged size), generally not an
integer.  Its window is the ``length = min(k, size)`` consecutive source
positions whose middle is nearest ``centre_j``.

Each slot carries a fixed log-prior: the log of the fraction of merged cell
``j`` (the interval ``[j size / merged, (j + 1) size / merged)`` when the
axis is cut into ``merged`` equal cells) that source position ``x`` covers,
the area weight of :func:`~ltm_mm.ops.area_pool.area_weights`.  With
``theta = 0`` the window softmax of those priors is exactly area pooling
onto the merged grid (the ``pool`` merger), so a learned merge starts where
pooling is and moves from there.  A cell at most two tokens wide (``r >=
1/4``) always lies inside its ``k = 3`` window; a wider cell is truncated to
its window and renormalised.

Slots outside the axis or outside the cell are *invalid* (log-prior
``-inf``, weight always 0): content is never shifted inwards at the borders,
so two windows are never identical.

An axis that is not merged (``merged == size``) gets windows of length 1:
each merged token is its source token along that axis.

Everything here is plain Python on integers and fractions, so building a
table adds no tensor operation to a traced forward and never synchronises.
"""
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Tuple


@dataclass(frozen=True)
class AxisWindows:
    """Windows of every merged token along one axis.

    Attributes:
        size, merged: source and merged lengths of the axis.
        length: slots per window along this axis.
        theta_offset: index of slot 0 among theta's ``k`` positions.
        positions: ``[merged][length]`` source position of each slot,
            clamped into the axis for invalid slots.
        valid: ``[merged][length]`` whether the slot lies inside the axis
            and overlaps the merged token's cell.
        prior: ``[merged][length]`` log area weight of each valid slot (0
            for invalid ones).
        centres: ``[merged]`` ideal position of each merged token.
    """
    size: int
    merged: int
    length: int
    theta_offset: int
    positions: Tuple[Tuple[int, ...], ...]
    valid: Tuple[Tuple[bool, ...], ...]
    prior: Tuple[Tuple[float, ...], ...]
    centres: Tuple[float, ...]

    def covers(self) -> List[List[Tuple[int, int]]]:
        """``[size]`` lists of ``(merged token, slot)`` holding each source
        position (valid slots only)."""
        covers = [[] for _ in range(self.size)]
        for j in range(self.merged):
            for t in range(self.length):
                if self.valid[j][t]:
                    covers[self.positions[j][t]].append((j, t))
        return covers


def cell_overlap(position: int, cell: int, size: int,
                 merged: int) -> Fraction:
    """Length of ``[position, position + 1)`` inside merged cell ``cell``
    of a ``size -> merged`` axis, as a fraction of the cell's length (the
    area weight; exact, so a zero is a zero)."""
    low = Fraction(cell * size, merged)
    high = Fraction((cell + 1) * size, merged)
    overlap = min(high, Fraction(position + 1)) - max(low, Fraction(position))
    return max(overlap, Fraction(0)) * Fraction(merged, size)


def axis_windows(size: int, merged: int, window_size: int) -> AxisWindows:
    """:class:`AxisWindows` of a ``size -> merged`` axis with windows ``k``."""
    if merged == size:
        return AxisWindows(size, merged, 1, (window_size - 1) // 2,
                           tuple((j, ) for j in range(size)),
                           tuple((True, ) for _ in range(size)),
                           tuple((0.0, ) for _ in range(size)),
                           tuple(float(j) for j in range(size)))
    length = min(window_size, size)
    theta_offset = (window_size - length) // 2
    positions, valid, prior, centres = [], [], [], []
    for j in range(merged):
        centre = (j + 0.5) * size / merged - 0.5
        # the window whose middle is nearest the centre
        start = math.floor(centre - (length - 1) / 2 + 0.5)
        raw = [start + t for t in range(length)]
        weights = [cell_overlap(x, j, size, merged) if 0 <= x < size else
                   Fraction(0) for x in raw]
        positions.append(tuple(min(max(x, 0), size - 1) for x in raw))
        valid.append(tuple(w > 0 for w in weights))
        prior.append(tuple(math.log(w) if w > 0 else 0.0 for w in weights))
        centres.append(centre)
    return AxisWindows(size, merged, length, theta_offset, tuple(positions),
                       tuple(valid), tuple(prior), tuple(centres))

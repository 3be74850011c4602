"""Merging windows along one axis of the token grid (pure Python).

Merged token ``j`` of an axis of ``merged`` tokens ideally sits at
``centre_j = (j + 0.5) * size / merged - 0.5`` on the source axis of ``size``
tokens (the centres of a uniform grid of the merged size), generally not an
integer.  Its window is the ``length = min(k, size)`` consecutive source
positions whose middle is nearest ``centre_j``.  Positions outside the axis
are *invalid* slots (their weight is always 0): content is never shifted
inwards at the borders, so two windows are never identical.

A fixed per-slot log-prior ``tilt * (position - centre_j)`` (shifted to be
>= 0) is fitted so
that the window softmax of the initial ``theta`` profile (``-d^2 / 2`` along
the axis, see ``initial_theta``) has its centroid exactly at ``centre_j``
over the valid slots: at initialisation every merged token sits on the
uniform merged grid, to floating-point accuracy, borders included.  Learned
``theta`` then moves weights relative to that prior.

An axis that is not merged (``merged == size``) gets windows of length 1:
each merged token is its source token along that axis.

Everything here is plain Python on integers and floats, so building a table
adds no tensor operation to a traced forward and never synchronises.
"""
import math
from dataclasses import dataclass
from typing import List, Tuple

#: Bisection bounds and steps of the tilt fit (the centroid is monotone in
#: the tilt; 80 halvings of [-60, 60] reach float64 resolution).
_TILT_BOUND = 60.0
_TILT_STEPS = 80


@dataclass(frozen=True)
class AxisWindows:
    """Windows of every merged token along one axis.

    Attributes:
        size, merged: source and merged lengths of the axis.
        length: slots per window along this axis.
        theta_offset: index of slot 0 among theta's ``k`` positions.
        positions: ``[merged][length]`` source position of each slot,
            clamped into the axis for invalid slots.
        valid: ``[merged][length]`` whether the slot lies inside the axis.
        prior: ``[merged][length]`` log-prior of each valid slot.
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


def _centroid(offsets, positions, tilt):
    """Centroid of ``softmax(-d^2 / 2 + tilt * x)`` over the given slots."""
    logits = [-0.5 * d * d + tilt * x for d, x in zip(offsets, positions)]
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    return sum(w * x for w, x in zip(weights, positions)) / sum(weights)


def fit_tilt(offsets: List[float], positions: List[float],
             target: float) -> float:
    """Tilt ``lambda`` with ``centroid(softmax(-d^2/2 + lambda x)) = target``.

    ``offsets`` are the slots' positions in theta's frame, ``positions``
    their positions relative to ``target``'s frame.  Bisection: the centroid
    increases with ``lambda``.  A target outside the slots' span gets the
    bound nearest it.
    """
    if len(positions) == 1:
        return 0.0
    low, high = -_TILT_BOUND, _TILT_BOUND
    for _ in range(_TILT_STEPS):
        middle = 0.5 * (low + high)
        if _centroid(offsets, positions, middle) < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


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
    # theta's frame: slot t sits at d = t + theta_offset - (k - 1) / 2
    offsets = [t + theta_offset - (window_size - 1) / 2
               for t in range(length)]
    positions, valid, prior, centres = [], [], [], []
    for j in range(merged):
        centre = (j + 0.5) * size / merged - 0.5
        # the window whose middle is nearest the centre
        start = math.floor(centre - (length - 1) / 2 + 0.5)
        raw = [start + t for t in range(length)]
        inside = [0 <= x < size for x in raw]
        kept = [t for t in range(length) if inside[t]]
        tilt = fit_tilt([offsets[t] for t in kept],
                        [raw[t] - centre for t in kept], 0.0)
        # shifted so the smallest valid log-prior is 0 (softmax ignores the
        # shift; logits stay >= theta, so the initial mask keeps every slot)
        lowest = min(tilt * (raw[t] - centre) for t in kept)
        positions.append(tuple(min(max(x, 0), size - 1) for x in raw))
        valid.append(tuple(inside))
        prior.append(tuple(tilt * (x - centre) - lowest if ok else 0.0
                           for x, ok in zip(raw, inside)))
        centres.append(centre)
    return AxisWindows(size, merged, length, theta_offset, tuple(positions),
                       tuple(valid), tuple(prior), tuple(centres))

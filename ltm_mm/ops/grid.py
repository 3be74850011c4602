"""Target grid of a merging layer (paper Sec. 3.1, efficient blocks)."""
import math
from typing import Tuple


def check_ratio(ratio) -> float:
    """Return ``ratio`` as a float after checking it lies in (0, 1].

    Raises:
        ValueError: naming the value, for r <= 0, r > 1, NaN or a non-number.
    """
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f'merge ratio must be a number in (0, 1], got '
                         f'{ratio!r}') from None
    if math.isnan(value) or not 0.0 < value <= 1.0:
        raise ValueError(f'merge ratio must be in (0, 1] (1 = no merging), '
                         f'got {ratio!r}')
    return value


def merged_grid_size(height: int, width: int, ratio: float) -> Tuple[int, int]:
    """``(h', w') = (ceil(h * sqrt(r)), ceil(w * sqrt(r)))``.

    The merged tokens keep a 2-D layout so that convolutions can follow.
    ``r = 1`` returns ``(h, w)``; small grids may also come back unchanged
    (5x5 at r = 0.7 stays 5x5), in which case nothing is merged.
    """
    ratio = check_ratio(ratio)
    if height < 1 or width < 1:
        raise ValueError(f'token grid must be at least 1x1, got '
                         f'{height}x{width}')
    scale = math.sqrt(ratio)
    # The small epsilon keeps exact products (e.g. 20 * 0.5) from being
    # pushed to the next integer by floating-point error.
    return (min(height, math.ceil(height * scale - 1e-9)),
            min(width, math.ceil(width * scale - 1e-9)))


def merge_grids(num_tokens: int, source_hw, ratio: float
                ) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """``(source_hw, merged_hw)`` as plain ints for ``num_tokens`` tokens on
    ``source_hw`` merged at ``ratio``.

    Raises:
        ValueError: when ``num_tokens`` is not ``h * w``.
    """
    source_hw = (int(source_hw[0]), int(source_hw[1]))
    if num_tokens != source_hw[0] * source_hw[1]:
        raise ValueError(f'tokens have N={num_tokens} but the grid is '
                         f'{source_hw[0]}x{source_hw[1]}')
    return source_hw, merged_grid_size(*source_hw, ratio)

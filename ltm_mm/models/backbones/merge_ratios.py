"""``merge_ratios`` of a backbone config, expanded to one ratio per
merging unit (MobileViT: transformer layer; EfficientViT:
EfficientViTBlock)."""
from typing import Sequence, Tuple, Union

from ltm_mm.ops import check_ratio


def expand_merge_ratios(merge_ratios: Union[float, Sequence[float]],
                        depths: Sequence[int], unit: str
                        ) -> Tuple[float, ...]:
    """One checked ratio per unit, group after group.

    Args:
        merge_ratios: a scalar (the first unit of every group merges at it,
            the others keep ``1.0``) or one value per unit.
        depths: units per group (transformer layers per MobileViT block,
            EfficientViTBlocks per attention stage).
        unit: what one value is for, named in the error.

    Raises:
        ValueError: a ratio outside ``(0, 1]`` or a wrong number of them.
    """
    if isinstance(merge_ratios, (int, float)):
        first = check_ratio(merge_ratios)
        return tuple(first if i == 0 else 1.0 for depth in depths
                     for i in range(depth))
    ratios = tuple(check_ratio(r) for r in merge_ratios)
    if len(ratios) != sum(depths):
        raise ValueError(
            f'merge_ratios needs one value per {unit} ({sum(depths)} = '
            f'{" + ".join(map(str, depths))}) or a scalar, got '
            f'{len(ratios)} values')
    return ratios

"""Small LTM backbones for tests that run whole forwards."""
from ltm_mm.models.backbones import LTMEfficientViT, LTMMobileViT

NAMES = ('efficientvit', 'mobilevit')


def small_ltm_backbone(name: str, ratio: float = 0.7):
    """LTM-MobileViT-XXS (``ratio`` in all nine transformer layers) or
    LTM-EfficientViT-B0 (``ratio`` in every block), 10 statistics classes,
    random weights."""
    if name == 'mobilevit':
        return LTMMobileViT('xx_small', merge_ratios=[ratio] * 9,
                            num_classes=10, out_indices=(2, 3, 4))
    if name == 'efficientvit':
        return LTMEfficientViT('b0', merge_ratios=ratio, num_classes=10,
                               out_indices=(1, 2, 3))
    raise ValueError(f'no small backbone named {name!r}; use one of {NAMES}')

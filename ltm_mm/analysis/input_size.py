"""Train and test an SSDLite demo config at another square input size.

The detection demo's images are 320 x 320 and its anchors are laid out for
that size.  A smaller input trains several times faster on a CPU (the cost
of the backbone grows with the pixel count), which is what makes seeded
comparisons affordable; the objects shrink with the image, so the anchor
sizes are scaled alike and the anchor strides follow the feature maps.
"""
import math
from typing import List

from mmengine.config import Config

#: The input size the demo detection configs are written for.
DEMO_INPUT_SIZE = 320


def ssdlite_feature_sizes(size: int, levels: int = 6) -> List[int]:
    """Side of each SSDLite level's feature map for a ``size`` input: the
    backbone's stride-16 and stride-32 outputs, then the neck's 3x3
    stride-2 convolutions with padding 1 (``ceil(n / 2)`` each)."""
    sides = [math.ceil(size / 16), math.ceil(size / 32)]
    while len(sides) < levels:
        sides.append(math.ceil(sides[-1] / 2))
    return sides


def set_ssdlite_input_size(cfg: Config, size: int) -> Config:
    """Resize every pipeline's images to ``size`` x ``size`` and lay the
    anchors out for that size (in place; returns ``cfg``).

    Anchor sizes scale by ``size / 320``; strides become ``size`` over each
    level's feature side (rounded, as the base's 107 for 320 / 3).
    """
    if size < 64 or size % 32:
        raise ValueError(f'input size must be a multiple of 32 and at least '
                         f'64, got {size}')
    scale = size / DEMO_INPUT_SIZE
    anchors = cfg.model.bbox_head.anchor_generator
    levels = len(anchors.strides)
    anchors.strides = [
        round(size / side) for side in ssdlite_feature_sizes(size, levels)
    ]
    anchors.min_sizes = [round(s * scale) for s in anchors.min_sizes]
    anchors.max_sizes = [round(s * scale) for s in anchors.max_sizes]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for transform in cfg[loader].dataset.pipeline:
            if transform['type'] == 'Resize':
                transform['scale'] = (size, size)
    return cfg

"""Output stride 16 or 8 for MobileViT by dilation (DeepLab-style).

MobileViT's segmentation networks (Mehta & Rastegari, ICLR 2022: DeepLabv3
on PASCAL VOC, output stride 16) keep the resolution of the last stages:
each stage that would halve the map runs at stride 1 instead, the
depthwise 3x3 of its transition ``InvertedResidual`` takes the dilation
reached so far, the dilation then doubles, and the local 3x3 convolution
of its MobileViT block takes the doubled dilation.  The fusion convolution
stays undilated.  Only strides, dilations and paddings change, so every
checkpoint loads as it is, and the transformer sees a larger token grid
(patches are still ``p_h x p_w`` pixels of the dilated map), where token
merging has more to merge.
"""
from typing import List

from torch import nn

#: output strides :func:`dilate_last_stages` can reach from 32
OUTPUT_STRIDES = (8, 16, 32)


def _set_dilation(conv: nn.Conv2d, dilation: int) -> None:
    """Stride 1, ``dilation`` and the padding that keeps the size."""
    kernel = conv.kernel_size[0]
    conv.stride = (1, 1)
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation * (kernel - 1) // 2, ) * 2


def _strided_conv(module: nn.Module) -> nn.Conv2d:
    convs = [m for m in module.modules()
             if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    if len(convs) != 1:
        raise ValueError(f'expected one strided convolution in '
                         f'{type(module).__name__}, found {len(convs)}')
    return convs[0]


def dilate_last_stages(layers: nn.Sequential, strides: List[int],
                       output_stride: int) -> List[int]:
    """Make MobileViT ``layers`` reach at most ``output_stride``.

    Args:
        layers: MobileViT stages; those to dilate (the stride-16 and
            stride-32 ones) are ``Sequential(InvertedResidual,
            MobileVitBlock)``, the block's ``local_rep[0]`` being its local
            3x3 conv.
        strides: the stride of each stage's output, undilated.
        output_stride: 8, 16 or 32 (32: nothing changes).

    Returns:
        The stride of each stage's output after dilation.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f'output_stride must be one of {OUTPUT_STRIDES}, '
                         f'got {output_stride!r}')
    strides = list(strides)
    dilation = 1
    for index, layer in enumerate(layers):
        if strides[index] <= output_stride:
            continue
        # this stage would halve the map below output_stride: keep it
        _set_dilation(_strided_conv(layer[0]), dilation)
        layer[0].stride = 1
        dilation *= 2
        for block in list(layer)[1:]:  # the MobileViT block
            _set_dilation(block.local_rep[0].conv, dilation)
        strides[index] = output_stride
    return strides

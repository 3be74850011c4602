"""LTMMobileViT at output stride 16 / 8 (DeepLab-style dilation)."""
import pytest
import torch

from ltm_mm.models.backbones import LTMMobileViT


@pytest.mark.parametrize('output_stride,strides', [
    (32, (2, 4, 8, 16, 32)),
    (16, (2, 4, 8, 16, 16)),
    (8, (2, 4, 8, 8, 8)),
])
def test_output_strides_match_the_maps(output_stride, strides):
    torch.manual_seed(0)
    model = LTMMobileViT('xx_small', merge_ratios=0.5,
                         out_indices=(0, 1, 2, 3, 4),
                         output_stride=output_stride).eval()
    assert model.out_strides == strides
    height, width = 96, 160
    with torch.no_grad(), pytest.warns(UserWarning, match='no valid class'):
        outs = model(torch.randn(1, 3, height, width))
    for out, stride, channels in zip(outs, model.out_strides,
                                     model.out_channels):
        assert out.shape == (1, channels, height // stride, width // stride)


def test_dilation_changes_no_weight():
    plain = LTMMobileViT('xx_small', merge_ratios=1.0)
    dilated = LTMMobileViT('xx_small', merge_ratios=1.0, output_stride=8)
    assert {k: v.shape for k, v in plain.state_dict().items()} == \
        {k: v.shape for k, v in dilated.state_dict().items()}
    last = dilated.layers[4]
    assert last[0].stride == 1
    assert last[1].local_rep[0].conv.dilation == (4, 4)
    assert dilated.layers[3][1].local_rep[0].conv.dilation == (2, 2)
    # the fusion conv is not dilated (MobileViT's DeepLabv3)
    assert last[1].conv_fusion.conv.dilation == (1, 1)


def test_unknown_output_stride_is_named():
    with pytest.raises(ValueError, match=r'one of \(8, 16, 32\), got 4'):
        LTMMobileViT('xx_small', output_stride=4)

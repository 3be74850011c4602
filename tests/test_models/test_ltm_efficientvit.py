import warnings

import pytest
import torch

from ltm_mm.models.backbones import EfficientViT, LTMEfficientViT
from ltm_mm.models.layers.ltm_efficientvit_block import LTMEfficientViTBlock

ARCHS = ['b0', 'b1', 'b2', 'b3']


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        yield


@pytest.mark.parametrize('arch,out_indices', [
    *[('b1', i) for i in (0, 1, 2, 3, -1, (2, 3))],
    *[(arch, (0, 1, 2, 3)) for arch in ARCHS],
])
def test_shapes_match_published_channels_and_strides(arch, out_indices):
    model = LTMEfficientViT(arch, out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 96, 128))
    assert isinstance(outs, tuple) and len(outs) == len(model.out_channels)
    for out, channels, stride in zip(outs, model.out_channels,
                                     model.out_strides):
        assert out.shape == (1, channels, 96 // stride, 128 // stride)


@pytest.mark.parametrize('arch', ARCHS)
def test_ratio_one_equals_plain_exactly(arch):
    plain = EfficientViT(arch).eval()
    for module in plain.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    ours = LTMEfficientViT(arch, merge_ratios=1.0).eval()
    ours.load_state_dict(plain.state_dict(), strict=True)
    assert ours.merge_mask_modules() == []
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        for a, b in zip(ours(x), plain(x)):
            assert torch.equal(a, b)


def test_plain_checkpoint_loads_with_only_ltm_keys_missing():
    result = LTMEfficientViT('b1').load_state_dict(
        EfficientViT('b1').state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys
    assert all('.merge_mask.' in key for key in result.missing_keys)


@pytest.mark.parametrize('hw', [(224, 224), (320, 320), (800, 1333),
                                (801, 1201)])
def test_restore_resolution_gives_plain_shapes(hw):
    plain = EfficientViT('b1').eval()
    ours = LTMEfficientViT('b1', merge_ratios=[0.5] * 7).eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        assert [o.shape for o in ours(x)] == [o.shape for o in plain(x)]


def test_without_restore_the_merged_grid_flows_on():
    model = LTMEfficientViT('b1', restore_resolution=False).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 224))
    # stage 3: 14x14 -> 12x12 after its first block; stage 4: 6x6 -> 6x6
    assert outs[2].shape[-2:] == (12, 12)
    assert outs[3].shape[-2:] == (6, 6)


@pytest.mark.parametrize('hw', [(16, 16), (15, 21)])
def test_restore_keeps_the_residual_stream_at_full_resolution(hw):
    """With restore_resolution only the MBConv branch runs merged: with that
    branch silenced the LTM block is exactly the plain block."""
    ltm = LTMEfficientViTBlock(32, merge_ratio=0.5, restore_resolution=True)
    plain = LTMEfficientViTBlock(32)
    plain.load_state_dict(ltm.state_dict(), strict=False)
    for block in (ltm, plain):
        # point_conv = conv + BN (no activation): zero weights give 0
        torch.nn.init.zeros_(block.local_module.main.point_conv.conv.weight)
        block.eval()
    x = torch.randn(2, 32, *hw)
    with torch.no_grad():
        torch.testing.assert_close(ltm(x), plain(x), atol=1e-6, rtol=0)


def test_merging_changes_output_and_ratios_are_per_block():
    model = LTMEfficientViT('b1', merge_ratios=[0.5, 1, 1, 0.7, 1, 1, 1])
    assert [m.ratio for m in model.merge_mask_modules()] == [0.5, 0.7]
    model.eval()
    plain = LTMEfficientViT('b1', merge_ratios=1.0).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert not torch.allclose(model(x)[2], plain(x)[2], atol=1e-4)


def test_eval_is_batch_invariant():
    model = LTMEfficientViT('b0').eval()
    x = torch.randn(3, 3, 160, 160)
    with torch.no_grad():
        batched, alone = model(x), model(x[2:3])
    for a, b in zip(alone, batched):
        torch.testing.assert_close(a[0], b[2], atol=1e-5, rtol=1e-5)


def test_train_merging_only_changes_only_mask_modules():
    model = LTMEfficientViT('b0', train_merging_only=True).train()
    assert model.train() is model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum(o.square().mean() for o in model(torch.randn(2, 3, 128, 128))
        ).backward()
    optimizer.step()
    changed = [k for k, v in model.state_dict().items()
               if not torch.equal(before[k], v)]
    assert changed and all('.merge_mask.' in k for k in changed), changed


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='b9'), 'unknown'),
    (dict(out_indices=4), 'out of range'),
    (dict(merge_ratios=0), 'ratio'),
    (dict(merge_ratios=float('nan')), 'ratio'),
    (dict(merge_ratios=[0.7] * 6), 'one value per EfficientViTBlock'),
    (dict(frozen_stages=5), 'frozen_stages'),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LTMEfficientViT(**kwargs)

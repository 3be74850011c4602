import warnings

import pytest
import torch
from mmpretrain.models import MobileViT

from ltm_mm.models.backbones import LTMMobileViT
from ltm_mm.models.layers import MapPlans, MergerPlan
from ltm_mm.models.layers.ltm_mobilevit_block import LTMMobileVitBlock

ARCHS = ['xx_small', 'x_small', 'small']
ALL_OUT = (0, 1, 2, 3, 4)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        yield


def _plain(arch, out_indices=ALL_OUT):
    """mmpretrain's MobileViT in eval mode (its ``eval()`` returns None)."""
    model = MobileViT(arch, out_indices=list(out_indices))
    model.eval()
    return model


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('out_indices', [0, 1, 2, 3, 4, -1, (3, 4), ALL_OUT])
def test_shapes_match_published_channels_and_strides(arch, out_indices):
    model = LTMMobileViT(arch, out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 128, 128))
    assert isinstance(outs, tuple)
    assert len(outs) == len(model.out_channels) == len(model.out_strides)
    for out, channels, stride in zip(outs, model.out_channels,
                                     model.out_strides):
        assert out.shape == (1, channels, 128 // stride, 128 // stride)


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('size', [256, 320])
def test_ratio_one_equals_mmpretrain(arch, size):
    plain = _plain(arch)
    # randomise BN statistics so the comparison is not vacuous
    for module in plain.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    ours = LTMMobileViT(arch, merge_ratios=1.0, out_indices=ALL_OUT).eval()
    ours.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        for a, b in zip(ours(x), plain(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize('arch', ARCHS)
def test_mmpretrain_checkpoint_loads_with_only_ltm_keys_missing(arch):
    state = _plain(arch).state_dict()
    ours = LTMMobileViT(arch)
    result = ours.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys
    assert all('.merge_masks.' in key for key in result.missing_keys)
    # default ratios: one LTM layer per MobileViT block
    assert len(ours.merge_mask_modules()) == 3


@pytest.mark.parametrize('hw', [(256, 256), (320, 320), (321, 479),
                                (512, 384), (64, 64)])
@pytest.mark.parametrize('arch', ['x_small', 'small'])
def test_restore_resolution_gives_plain_shapes(arch, hw):
    plain = _plain(arch)
    ours = LTMMobileViT(arch, merge_ratios=0.5, out_indices=ALL_OUT).eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        expected = [o.shape for o in plain(x)]
        got = [o.shape for o in ours(x)]
    assert got == expected


def test_without_restore_the_merged_grid_flows_on():
    ours = LTMMobileViT('small', restore_resolution=False,
                        out_indices=ALL_OUT).eval()
    with torch.no_grad():
        outs = ours(torch.randn(1, 3, 256, 256))
    # stage 2: 32x32 map -> 16x16 tokens -> 14x14 merged -> 28x28 map
    assert outs[2].shape[-2:] == (28, 28)
    assert outs[3].shape[-2:] == (12, 12)  # 14 -> 7x7 tokens -> 6x6
    assert outs[4].shape[-2:] == (6, 6)  # 6 -> 3x3 tokens, unchanged


def _block_pair(restore_resolution):
    """An LTM block (r = 0.5 on both layers) and a plain one, same weights,
    with the transformer path silenced: conv_proj outputs Swish(0) = 0."""
    kwargs = dict(in_channels=16, transformer_dim=24, ffn_dim=48,
                  out_channels=16, num_transformer_blocks=2)
    ltm = LTMMobileVitBlock(merge_ratios=[0.5, 0.5],
                            restore_resolution=restore_resolution, **kwargs)
    plain = LTMMobileVitBlock(**kwargs)
    plain.load_state_dict(ltm.state_dict(), strict=False)
    for block in (ltm, plain):
        torch.nn.init.zeros_(block.conv_proj.conv.weight)
        block.eval()
    return ltm, plain


@pytest.mark.parametrize('hw', [(32, 32), (30, 42)])
def test_restore_keeps_the_shortcut_and_fusion_at_full_resolution(hw):
    """With restore_resolution only the transformer path is merged: with
    that path silenced the block is exactly the plain block, for any input
    size (the fusion conv sees the unmerged shortcut)."""
    ltm, plain = _block_pair(restore_resolution=True)
    x = torch.randn(2, 16, *hw)
    with torch.no_grad():
        torch.testing.assert_close(ltm(x), plain(x), atol=1e-6, rtol=0)


class _IdentityPlan:
    """A merge plan whose grids are equal: merge and unmerge return their
    input."""
    keeps_grid = True
    merged_sizes = None

    def __init__(self, grid_hw):
        self.source_hw = self.merged_hw = grid_hw

    def merge(self, tokens):
        return tokens

    def unmerge(self, tokens):
        return tokens

    def dense(self):
        return torch.eye(self.source_hw[0] * self.source_hw[1])[None]


def test_split_fusion_conv_equals_the_concatenated_conv():
    """The restore path runs the fusion conv as a shortcut part plus an
    unmerged transformer part; with nothing merged that is exactly
    conv_fusion(cat(shortcut, x))."""
    ltm, _ = _block_pair(restore_resolution=True)
    assert isinstance(_IdentityPlan((1, 1)), MergerPlan)
    for module in ltm.conv_fusion.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    shortcut, x = torch.randn(2, 16, 12, 10), torch.randn(2, 16, 12, 10)
    with torch.no_grad():
        plans = MapPlans([_IdentityPlan((6, 5))], ltm.patch_size)
        split = ltm._fuse_restoring(shortcut, x, plans)
        joint = ltm.conv_fusion(torch.cat((shortcut, x), dim=1))
    torch.testing.assert_close(split, joint, atol=1e-5, rtol=1e-5)


def test_without_restore_the_shortcut_is_merged():
    ltm, plain = _block_pair(restore_resolution=False)
    x = torch.randn(2, 16, 32, 32)
    with torch.no_grad():
        merged, full = ltm(x), plain(x)
    # 16x16 tokens per sequence -> 12x12 -> 9x9: an 18x18 map
    assert merged.shape[-2:] == (18, 18)
    assert full.shape[-2:] == (32, 32)


def test_merging_changes_output_and_ratio_list_is_per_layer():
    ratios = [0.5, 1.0, 0.7, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    model = LTMMobileViT('x_small', merge_ratios=ratios).eval()
    assert [m.ratio for m in model.merge_mask_modules()] == [0.5, 0.7]
    plain = LTMMobileViT('x_small', merge_ratios=1.0).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert not torch.allclose(model(x)[0], plain(x)[0], atol=1e-3)


def test_eval_output_is_batch_invariant():
    model = LTMMobileViT('x_small', out_indices=ALL_OUT).eval()
    x = torch.randn(3, 3, 256, 256)
    with torch.no_grad():
        batched = model(x)
        alone = model(x[1:2])
    for a, b in zip(alone, batched):
        torch.testing.assert_close(a[0], b[1], atol=1e-5, rtol=1e-5)


def test_train_merging_only_changes_only_mask_modules():
    model = LTMMobileViT('xx_small', train_merging_only=True,
                         out_indices=ALL_OUT).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all('.merge_masks.' in n for n in trainable)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=0.1,
        weight_decay=0.1)
    loss = sum(o.square().mean() for o in model(torch.randn(2, 3, 128, 128)))
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, 'the mask modules must train'
    assert all('.merge_masks.' in k for k in changed), changed


def test_frozen_stages_and_norm_eval():
    model = LTMMobileViT('xx_small', frozen_stages=2, norm_eval=True)
    assert model.train() is model
    for module in (model.stem, model.layers[0], model.layers[1]):
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.layers[2].parameters())
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not bn.training for bn in bns)
    assert model.layers[2].training


def test_with_cp_gives_same_output_and_gradients():
    torch.manual_seed(0)
    model = LTMMobileViT('xx_small', out_indices=(2, 4)).train()
    checkpointed = LTMMobileViT('xx_small', out_indices=(2, 4),
                                with_cp=True).train()
    checkpointed.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 96, 96, requires_grad=True)
    outs = []
    for net in (model, checkpointed):
        torch.manual_seed(1)  # same Gumbel noise
        out = sum(o.sum() for o in net(x))
        grads = torch.autograd.grad(out, [x] + list(net.parameters()),
                                    allow_unused=True)
        outs.append((out, grads))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='large'), 'unknown arch'),
    (dict(out_indices=5), 'out of range'),
    (dict(out_indices=(1, 1)), 'repeats'),
    (dict(out_indices=()), 'non-empty'),
    (dict(merge_ratios=0.0), 'ratio'),
    (dict(merge_ratios=1.2), 'ratio'),
    (dict(merge_ratios=[0.7] * 8), 'one value per transformer layer'),
    (dict(frozen_stages=6), 'frozen_stages'),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LTMMobileViT(**kwargs)

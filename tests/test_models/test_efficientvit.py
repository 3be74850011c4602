"""EfficientViT backbone, its blocks and the timm checkpoint converter."""
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ltm_mm.models.backbones import EfficientViT
from ltm_mm.models.backbones import efficientvit as efficientvit_module
from ltm_mm.models.backbones.efficientvit_convert import (
    ConversionError, convert_timm_efficientvit, unwrap_state_dict)
from ltm_mm.models.layers import EfficientViTBlock
from ltm_mm.models.layers.efficientvit_blocks import relu_linear_attention
from ltm_mm.registry import MODELS
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'convert_checkpoint.py'
ARCHS = ['b0', 'b1', 'b2', 'b3']
ALL_OUT = (0, 1, 2, 3)
# The paper's / timm's stage widths (stages 1-4) and EfficientViTBlocks per
# attention stage, written out here independently of arch_settings.
STAGE_WIDTHS = dict(b0=(16, 32, 64, 128), b1=(32, 64, 128, 256),
                    b2=(48, 96, 192, 384), b3=(64, 128, 256, 512))
ATTENTION_DEPTHS = dict(b0=(2, 2), b1=(3, 4), b2=(4, 6), b3=(6, 9))
STRIDES = (4, 8, 16, 32)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny inputs gain nothing from a second thread, while OpenMP threads
    that spin-wait run ~100x slower when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize_norms(model):
    """Non-trivial BN statistics and affine terms, so eval-mode BN is not
    (close to) the identity and a comparison can fail."""
    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return model


def _timm(arch):
    torch.manual_seed(0)
    model = timm.create_model(f'efficientvit_{arch}', pretrained=False)
    return _randomize_norms(model).eval()


def _head_keys(state_dict):
    return sorted(k for k in state_dict if k.startswith('head.'))


def _strip(state_dict, prefix='backbone.'):
    assert all(k.startswith(prefix) for k in state_dict)
    return {k[len(prefix):]: v for k, v in state_dict.items()}


def _grid(size, stride):
    """Output size after log2(stride) stride-2 convs with padding 1."""
    h, w = size
    while stride > 1:
        h, w, stride = (h + 1) // 2, (w + 1) // 2, stride // 2
    return h, w


# ----------------------------------------------------------------------
# Shapes and the published metadata
# ----------------------------------------------------------------------
@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('out_indices',
                         [0, 1, 2, 3, -1, -4, (1, 3), (-2, 0), ALL_OUT])
def test_shapes_match_out_channels_and_strides(arch, out_indices):
    model = EfficientViT(arch, out_indices=out_indices).eval()
    indices = (out_indices, ) if isinstance(out_indices, int) \
        else out_indices
    indices = sorted(i % 4 for i in indices)
    assert model.out_channels == tuple(STAGE_WIDTHS[arch][i]
                                       for i in indices)
    assert model.out_strides == tuple(STRIDES[i] for i in indices)
    for size in [(224, 224), (100, 150)]:
        with torch.no_grad():
            outs = model(torch.randn(1, 3, *size))
        assert isinstance(outs, tuple)
        assert len(outs) == len(indices)
        for out, channels, stride in zip(outs, model.out_channels,
                                         model.out_strides):
            assert out.shape == (1, channels, *_grid(size, stride))


# ----------------------------------------------------------------------
# Equality with timm
# ----------------------------------------------------------------------
@pytest.mark.parametrize('arch', ARCHS)
def test_converted_timm_weights_reproduce_timm_features(arch):
    ref = _timm(arch)
    converted, dropped, found_arch = convert_timm_efficientvit(
        ref.state_dict())
    assert found_arch == arch
    assert dropped == _head_keys(ref.state_dict()) and dropped
    ours = EfficientViT(arch, out_indices=ALL_OUT, init_cfg=None)
    ours.load_state_dict(_strip(converted), strict=True)
    ours.eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        expected = ref.forward_intermediates(x, intermediates_only=True)
        outs = ours(x)
    assert len(expected) == len(outs) == 4
    for out, exp, stride in zip(outs, expected, STRIDES):
        assert out.shape == exp.shape == (2, STAGE_WIDTHS[arch][
            STRIDES.index(stride)], *_grid((96, 128), stride))
        assert exp.abs().mean() > 0.05  # not a degenerate comparison
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=0)


def test_relu_linear_attention_equals_quadratic_form():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 4, generator=gen) for _ in range(3))
    scores = q.relu() @ k.relu().transpose(-1, -2)  # (B, h, N, N)
    expected = (scores @ v) / (scores.sum(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(relu_linear_attention(q, k, v, eps=1e-5),
                               expected, atol=1e-5, rtol=1e-5)


def test_block_runs_context_then_local_module():
    block = _randomize_norms(EfficientViTBlock(32, head_dim=8)).eval()
    x = torch.randn(2, 32, 5, 7)
    with torch.no_grad():
        z = block.context_module(x)
        torch.testing.assert_close(z, x + block.context_module.main(x))
        torch.testing.assert_close(block(x), block.local_module(z))
        assert not torch.allclose(block(x), z)


class _TaggedBlock(EfficientViTBlock):
    """A substitute block that records where the backbone put it."""

    def __init__(self, *args, where, **kwargs):
        super().__init__(*args, **kwargs)
        self.where = where


class _SubstitutedViT(EfficientViT):

    def __init__(self, *args, tag='x', **kwargs):
        self.tag = tag  # read by make_attention_block during __init__
        super().__init__(*args, **kwargs)

    def make_attention_block(self, in_channels, stage_index, block_index):
        return _TaggedBlock(in_channels, head_dim=self.head_dim,
                            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                            where=(self.tag, stage_index, block_index))


@pytest.mark.parametrize('arch', ['b0', 'b1'])
def test_subclass_substitutes_attention_blocks(arch):
    model = _SubstitutedViT(arch, tag='ltm').eval()
    tagged = [m.where for m in model.modules()
              if isinstance(m, _TaggedBlock)]
    d3, d4 = ATTENTION_DEPTHS[arch]
    assert tagged == [('ltm', 2, i) for i in range(d3)] + \
        [('ltm', 3, i) for i in range(d4)]
    # same keys as the plain backbone, and the inherited forward runs it
    plain = EfficientViT(arch).eval()
    model.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for out, exp in zip(model(x), plain(x)):
            torch.testing.assert_close(out, exp)


# ----------------------------------------------------------------------
# OpenMMLab contract
# ----------------------------------------------------------------------
def test_registered_and_built_from_config():
    model = MODELS.build(dict(type='ltm_mm.EfficientViT', arch='b0',
                              out_indices=(2, 3)))
    assert isinstance(model, EfficientViT)
    assert model.out_channels == (64, 128)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3, 4])
def test_frozen_stages(frozen_stages):
    model = EfficientViT('b0', frozen_stages=frozen_stages)
    assert model.train() is model
    parts = [model.stem, *model.stages]
    for index, part in enumerate(parts):
        frozen = index <= frozen_stages  # parts[0] is the stem
        assert all(p.requires_grad != frozen for p in part.parameters())
        assert all(m.training != frozen for m in part.modules())
    if 0 <= frozen_stages < 4:
        # frozen BN statistics stay put while the rest trains
        before = model.stem.in_conv.norm.running_mean.clone()
        last = model.stages[-1].blocks[0].main.point_conv.norm.running_mean
        last_before = last.clone()
        model(torch.randn(2, 3, 64, 64))
        assert torch.equal(model.stem.in_conv.norm.running_mean, before)
        assert not torch.equal(last, last_before)


def test_norm_eval_keeps_bn_in_eval_mode():
    model = EfficientViT('b0', norm_eval=True)
    assert model.train() is model
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert model.training and model.stages[0].training
    stats = [m.running_mean.clone() for m in norms]
    model(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(m.running_mean, s) for m, s in zip(norms, stats))
    # without norm_eval, training updates the statistics
    plain = EfficientViT('b0').train()
    assert all(m.training for m in plain.modules()
               if isinstance(m, _BatchNorm))


def test_train_and_eval_return_self():
    model = EfficientViT('b0')
    assert model.train() is model
    assert model.eval() is model and not model.training
    assert model.train(False) is model


def test_with_cp_same_outputs_and_gradients(monkeypatch):
    calls = []
    real_checkpoint = efficientvit_module.cp.checkpoint

    def counting_checkpoint(function, *args, **kwargs):
        calls.append(function)
        return real_checkpoint(function, *args, **kwargs)

    monkeypatch.setattr(efficientvit_module.cp, 'checkpoint',
                        counting_checkpoint)
    torch.manual_seed(0)
    plain = EfficientViT('b0').train()
    with_cp = EfficientViT('b0', with_cp=True).train()
    with_cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    x_plain, x_cp = x.clone().requires_grad_(), x.clone().requires_grad_()
    outs_plain, outs_cp = plain(x_plain), with_cp(x_cp)
    assert len(calls) == sum(len(s.blocks) for s in with_cp.stages) > 0
    for a, b in zip(outs_plain, outs_cp):
        torch.testing.assert_close(a, b)
    sum(o.square().mean() for o in outs_plain).backward()
    sum(o.square().mean() for o in outs_cp).backward()
    torch.testing.assert_close(x_plain.grad, x_cp.grad)
    for (name, p), q in zip(plain.named_parameters(), with_cp.parameters()):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    # no checkpointing at inference
    calls.clear()
    with torch.no_grad():
        with_cp.eval()(x)
    assert calls == []


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='b9'), "unknown EfficientViT arch 'b9'"),
    (dict(arch=dict(widths=(8, 16, 32, 64, 128))), 'custom arch'),
    (dict(arch=dict(widths=(8, 16), depths=(1, 2), head_dim=8)),
     "arch\\['widths'\\] needs 5 values"),
    (dict(out_indices=4), 'out_indices entry 4'),
    (dict(out_indices=(0, -5)), 'out_indices entry -5'),
    (dict(out_indices=()), 'out_indices'),
    (dict(out_indices=(1, -3)), 'repeats'),
    (dict(frozen_stages=5), 'frozen_stages .* got 5'),
    (dict(frozen_stages=-2), 'frozen_stages .* got -2'),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EfficientViT(**kwargs)


def test_custom_arch_dict():
    model = EfficientViT(dict(widths=(8, 8, 16, 16, 32),
                              depths=(0, 1, 1, 1, 1), head_dim=8))
    assert model.out_channels == (8, 16, 16, 32)
    outs = model.eval()(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [8, 16, 16, 32]


# ----------------------------------------------------------------------
# Converter: function and CLI
# ----------------------------------------------------------------------
def _load_tool():
    return load_script(str(TOOL.relative_to(ROOT)))


def test_cli_end_to_end_loads_through_pretrained_init_cfg(tmp_path):
    ref = _timm('b0')
    src, dst = tmp_path / 'timm_b0.pth', tmp_path / 'out' / 'b0.pth'
    torch.save(ref.state_dict(), src)
    result = subprocess.run(
        [sys.executable, str(TOOL), 'efficientvit', str(src), str(dst)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert 'head.classifier.4.weight' in result.stdout  # dropped, reported
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['arch'] == 'b0'
    assert checkpoint['meta']['dropped_keys'] == _head_keys(ref.state_dict())

    model = EfficientViT('b0', init_cfg=dict(
        type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    model.init_weights()
    loaded = model.state_dict()
    timm_sd = {k: v for k, v in ref.state_dict().items()
               if not k.startswith('head.')}
    assert set(loaded) == set(timm_sd)
    for key, value in timm_sd.items():
        assert torch.equal(loaded[key], value), key
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for out, exp in zip(model.eval()(x),
                            ref.forward_intermediates(
                                x, intermediates_only=True)):
            torch.testing.assert_close(out, exp, atol=1e-4, rtol=0)


def test_cli_missing_source_is_named(tmp_path):
    missing = tmp_path / 'no_such.pth'
    result = subprocess.run(
        [sys.executable, str(TOOL), 'efficientvit', str(missing),
         str(tmp_path / 'dst.pth')],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2
    assert f'source checkpoint not found: {str(missing)!r}' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'dst.pth').exists()


@pytest.mark.parametrize('layout', ['safetensors', 'state_dict', 'model'])
def test_cli_reads_safetensors_and_wrapped_state_dicts(tmp_path, layout):
    from safetensors.torch import save_file
    ref = _timm('b0')
    state_dict = {k: v.contiguous() for k, v in ref.state_dict().items()}
    if layout == 'safetensors':
        src = tmp_path / 'model.safetensors'
        save_file(state_dict, str(src))
    else:
        src = tmp_path / 'ckpt.pth'
        torch.save({layout: state_dict, 'epoch': 3}, src)
    dst = tmp_path / 'out.pth'
    assert _load_tool().main(['efficientvit', str(src), str(dst)]) == 0
    converted = torch.load(dst, weights_only=True)['state_dict']
    expected, _, _ = convert_timm_efficientvit(state_dict)
    assert list(converted) == list(expected)
    assert all(torch.equal(converted[k], expected[k]) for k in expected)


def test_cli_unexpected_key_is_an_error(tmp_path, capsys):
    state_dict = _timm('b0').state_dict()
    state_dict['stages.1.blocks.0.main.extra.weight'] = torch.zeros(3)
    src = tmp_path / 'bad.pth'
    torch.save(state_dict, src)
    assert _load_tool().main(
        ['efficientvit', str(src), str(tmp_path / 'out.pth')]) == 2
    err = capsys.readouterr().err
    assert 'unexpected keys' in err
    assert 'stages.1.blocks.0.main.extra.weight' in err
    assert not (tmp_path / 'out.pth').exists()


def test_converter_names_missing_mismatched_and_unknown_keys():
    state_dict = dict(_timm('b0').state_dict())
    del state_dict['stages.3.blocks.2.local_module.main.point_conv.norm.bias']
    state_dict['stages.0.blocks.0.main.depth_conv.conv.weight'] = \
        torch.zeros(1, 1, 3, 3)
    with pytest.raises(ConversionError) as error:
        convert_timm_efficientvit(state_dict)
    message = str(error.value)
    assert 'missing keys' in message
    assert 'stages.3.blocks.2.local_module.main.point_conv.norm.bias' \
        in message
    assert 'shape mismatches' in message
    assert 'stages.0.blocks.0.main.depth_conv.conv.weight: (1, 1, 3, 3)' \
        in message
    with pytest.raises(ConversionError, match="stem width 7"):
        convert_timm_efficientvit(
            {'stem.in_conv.conv.weight': torch.zeros(7, 3, 3, 3)})
    with pytest.raises(ConversionError, match='not a timm EfficientViT'):
        convert_timm_efficientvit({'conv1.weight': torch.zeros(1)})
    with pytest.raises(ConversionError, match="'state_dict' or 'model'"):
        unwrap_state_dict({'epoch': 3})


@pytest.mark.parametrize('channels_last', [False, True])
def test_grouped_pointwise_conv_equals_a_grouped_conv2d(channels_last):
    """LiteMLA's grouped 1x1 conv as one matmul: the values, gradients and
    parameters of ``nn.Conv2d(..., 1, groups=g, bias=False)``."""
    from ltm_mm.models.layers.efficientvit_blocks import GroupedPointwiseConv
    torch.manual_seed(0)
    fast = GroupedPointwiseConv(24, 36, groups=6).double()
    reference = torch.nn.Conv2d(24, 36, 1, groups=6, bias=False).double()
    reference.load_state_dict(fast.state_dict())
    assert list(fast.state_dict()) == ['weight']
    x = torch.randn(3, 24, 5, 7, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    outputs, grads = [], []
    for conv in (fast, reference):
        out = conv(x)
        outputs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(),
                                         (x, conv.weight)))
    assert outputs[0].shape == (3, 36, 5, 7)
    torch.testing.assert_close(outputs[0], outputs[1])
    for fast_grad, reference_grad in zip(*grads):
        torch.testing.assert_close(fast_grad, reference_grad)
    with pytest.raises(ValueError, match='expected 24 input channels'):
        fast(torch.zeros(1, 12, 5, 7, dtype=torch.float64))

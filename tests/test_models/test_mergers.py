"""The ``merger`` option of both LTM backbones: ltm, pool, tome."""
import types
import warnings

import pytest
import torch
from mmpretrain.models import MobileViT

from ltm_mm.analysis.merge_weights import capture_plans
from ltm_mm.hooks import LTMStatisticsHook
from ltm_mm.models.backbones import EfficientViT, LTMEfficientViT, LTMMobileViT
from ltm_mm.models.layers import (AreaPoolMerger, LearnableMergeMask,
                                  ToMeMerger, build_merger)
from ltm_mm.models.layers.attention_keys import (captured_output,
                                                 multihead_keys)

MERGERS = ['ltm', 'pool', 'tome']


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        yield


def _randomise_bn(model):
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def _pair(backbone, merger, ratio, **kwargs):
    """(plain, ours) in eval mode with the plain weights loaded strictly
    where the merger adds no keys."""
    if backbone == 'mobilevit':
        plain = MobileViT('xx_small', out_indices=[2, 3, 4])
        plain.eval()
        ours = LTMMobileViT('xx_small', merge_ratios=ratio, merger=merger,
                            out_indices=(2, 3, 4), **kwargs).eval()
    else:
        plain = EfficientViT('b0', out_indices=(1, 2, 3)).eval()
        ours = LTMEfficientViT('b0', merge_ratios=ratio, merger=merger,
                               out_indices=(1, 2, 3), **kwargs).eval()
    _randomise_bn(plain)
    ours.load_state_dict(plain.state_dict(), strict=merger != 'ltm')
    return plain, ours


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
@pytest.mark.parametrize('merger', MERGERS)
def test_ratio_one_equals_the_plain_backbone_exactly(backbone, merger):
    plain, ours = _pair(backbone, merger, 1.0)
    assert not any(isinstance(m, (AreaPoolMerger, ToMeMerger,
                                  LearnableMergeMask))
                   for m in ours.modules())
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(ours(x), plain(x)):
            assert torch.equal(a, b)


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
@pytest.mark.parametrize('merger', ['pool', 'tome'])
def test_baselines_add_no_keys_keep_plain_shapes_and_change_outputs(
        backbone, merger):
    plain, ours = _pair(backbone, merger, [0.5] * (9 if backbone ==
                                                   'mobilevit' else 4))
    assert set(ours.state_dict()) == set(plain.state_dict())
    assert ours.merger == merger
    x = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        outs, plain_outs = ours(x), plain(x)
    assert [a.shape for a in outs] == [b.shape for b in plain_outs]
    # the last output follows merging layers (the first may not)
    assert not torch.allclose(outs[-1], plain_outs[-1], atol=1e-3)


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
@pytest.mark.parametrize('merger', ['pool', 'tome'])
def test_eval_is_batch_invariant(backbone, merger):
    # float64: float32 convolutions round differently per batch size
    # (~1e-6), which can flip a near-tie of ToMe's discrete matching; the
    # matching itself is per sample (tests/test_ops/test_bipartite_matching).
    # Small input: grouped convolutions are slow in float64.
    torch.manual_seed(0)
    _, model = _pair(backbone, merger, 0.5)
    model.double()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        batched, alone = model(x), model(x[1:])
    for a, b in zip(alone, batched):
        torch.testing.assert_close(a[0], b[1], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
@pytest.mark.parametrize('merger', ['pool', 'tome'])
def test_training_forward_gives_gradients_to_the_backbone(backbone, merger):
    _, model = _pair(backbone, merger, 0.5)
    model.train()
    sum(out.square().mean() for out in model(torch.randn(2, 3, 64, 64))
        ).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_tome_merges_the_grid_count_on_each_sequence_and_unmerges_back():
    model = LTMMobileViT('xx_small', merge_ratios=[0.5] + [1.0] * 8,
                         merger='tome').eval()
    merger = model.layers[2][1].merge_masks['0']
    plans = []
    handle = merger.register_forward_hook(
        lambda module, args, plan: plans.append(plan))
    with torch.no_grad():
        model(torch.randn(1, 3, 128, 128))  # stride 8: 16x16 map, 8x8 grid
    handle.remove()
    plan, = plans
    assert plan.source_hw == (8, 8) and plan.merged_hw == (6, 6)
    # 4 sequences (2x2 patch positions), 64 tokens each, 36 merged tokens
    assert plan.assignment.shape == (4, 64)
    assert plan.merged_sizes.shape == (4, 36)
    assert torch.equal(plan.merged_sizes.sum(1), torch.full((4, ), 64.))
    constant = torch.full((4, 64, 5), 0.25)
    merged = plan.merge(constant)
    assert merged.shape == (4, 36, 5)
    torch.testing.assert_close(plan.unmerge(merged), constant)
    torch.testing.assert_close(plan.dense().sum(1), torch.ones(4, 36))


def test_tome_reads_the_keys_of_the_attention_it_follows():
    model = LTMMobileViT('xx_small', merger='tome').eval()
    layer = model.layers[2][1].global_rep[0]
    tokens = torch.randn(4, 64, layer.embed_dims)
    with torch.no_grad(), captured_output(layer.attn.qkv) as qkv:
        layer.attn(layer.ln1(tokens))
    keys = multihead_keys(qkv[0], layer.attn.num_heads)
    dim, heads = layer.embed_dims, layer.attn.num_heads
    weight = layer.attn.qkv.weight[dim:2 * dim]
    bias = layer.attn.qkv.bias[dim:2 * dim]
    expected = (layer.ln1(tokens) @ weight.t() + bias).reshape(
        4, 64, heads, dim // heads).mean(2)
    torch.testing.assert_close(keys, expected)
    assert layer.attn.qkv._forward_hooks == {}  # the hook lived one call


def test_pool_plan_is_area_g_with_unit_columns():
    plan = build_merger('pool', 8, 0.7)(torch.zeros(2, 100, 8), (10, 10))
    dense = plan.dense()
    assert plan.merged_hw == (9, 9) and dense.shape == (1, 100, 81)
    torch.testing.assert_close(dense.sum(1), torch.ones(1, 81))
    tokens = torch.randn(2, 100, 8)
    torch.testing.assert_close(plan.merge(tokens),
                               dense.transpose(1, 2) @ tokens,
                               atol=1e-5, rtol=1e-5)


def test_pool_without_restore_lets_the_merged_grid_flow_on():
    model = LTMMobileViT('xx_small', merge_ratios=0.25, merger='pool',
                         restore_resolution=False, out_indices=(2, )).eval()
    with torch.no_grad():
        out, = model(torch.randn(1, 3, 128, 128))
    assert out.shape == (1, 48, 8, 8)  # 16x16 map, 8x8 grid -> 4x4 grid


@pytest.mark.parametrize('cls', [LTMMobileViT, LTMEfficientViT])
@pytest.mark.parametrize('kwargs,match', [
    (dict(merger='bilinear'), r"unknown merger 'bilinear'; choose from "
     r"\['ltm', 'pool', 'tome'\]"),
    (dict(merger='tome', restore_resolution=False),
     "merger='tome' needs restore_resolution=True"),
    (dict(merger='pool', train_merging_only=True),
     "merger='pool' has no parameters"),
    (dict(merger='tome', detach_score_inputs=True),
     "merger='tome' has no IB step"),
])
def test_bad_merger_options_raise(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
def test_detach_score_inputs_reaches_every_mask_module(backbone):
    def build(**kwargs):
        if backbone == 'mobilevit':
            return LTMMobileViT('xx_small', merge_ratios=0.7, **kwargs)
        return LTMEfficientViT('b0', merge_ratios=0.7, **kwargs)

    masks = build(detach_score_inputs=True).merge_mask_modules()
    assert masks and all(m.detach_score_inputs for m in masks)
    assert not any(m.detach_score_inputs
                   for m in build().merge_mask_modules())


@pytest.mark.parametrize('merger', ['pool', 'tome'])
def test_statistics_hook_and_analysis_refuse_baseline_mergers(merger):
    backbone = LTMMobileViT('xx_small', merger=merger)
    runner = types.SimpleNamespace(model=backbone, epoch=0)
    with pytest.raises(ValueError, match=r"only merger='ltm' has"):
        LTMStatisticsHook().before_train(runner)
    with pytest.raises(ValueError, match='merge-weight visualisation'):
        capture_plans(backbone, torch.zeros(1, 3, 64, 64))


def test_building_ltm_leaves_the_global_generator_where_it_was(
        monkeypatch):
    torch.manual_seed(3)
    state = torch.random.get_rng_state()
    reseeded = []  # CUDA's generators are not touched either
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', reseeded.append)
    first = build_merger('ltm', 32, 0.7, index=0)
    second = build_merger('ltm', 32, 0.7, index=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert reseeded == []
    # a stream of its own per layer, the same under the same seed
    assert not torch.equal(first.mlp_in.weight, second.mlp_in.weight)
    torch.manual_seed(3)
    assert torch.equal(build_merger('ltm', 32, 0.7).mlp_in.weight,
                       first.mlp_in.weight)
    torch.manual_seed(4)
    assert not torch.equal(build_merger('ltm', 32, 0.7).mlp_in.weight,
                           first.mlp_in.weight)


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
def test_same_seed_same_weights_whatever_the_merger(backbone):
    """Seeded comparisons differ in the merger alone: every weight a merger
    does not add, and what is drawn after the backbone (a head, here a
    linear layer), is the plain model's."""
    def build(merger):
        torch.manual_seed(0)
        if merger is None:
            net = MobileViT('xx_small') if backbone == 'mobilevit' \
                else EfficientViT('b0')
        elif backbone == 'mobilevit':
            net = LTMMobileViT('xx_small', merge_ratios=0.7, merger=merger)
        else:
            net = LTMEfficientViT('b0', merge_ratios=0.7, merger=merger)
        net.init_weights()
        return net.state_dict(), torch.nn.Linear(8, 8).weight

    plain, plain_head = build(None)
    for merger in MERGERS:
        weights, head = build(merger)
        assert torch.equal(head, plain_head), merger
        for key, value in plain.items():
            assert torch.equal(weights[key], value), (merger, key)
    ltm = build('ltm')[0]
    assert any('mlp_in' in key for key in ltm)


@pytest.mark.parametrize('backbone', ['mobilevit', 'efficientvit'])
def test_ltm_without_statistics_trains_as_pool_until_theta_moves(backbone):
    """The seeded comparisons' ``ltm`` row without statistics is ``pool``
    plus theta: from the same weights a training step gives the same
    outputs and the same gradient in every weight the two share, and the
    only gradient of its own lands on theta (the score MLP, without
    statistics, gets none)."""
    def build(merger):
        torch.manual_seed(0)
        if backbone == 'mobilevit':
            net = LTMMobileViT('xx_small', merge_ratios=0.7, merger=merger,
                               out_indices=(2, 3, 4))
        else:
            net = LTMEfficientViT('b0', merge_ratios=0.7, merger=merger,
                                  out_indices=(1, 2, 3))
        net.init_weights()
        return net.train()

    x = torch.randn(2, 3, 96, 128)
    grads = {}
    outputs = {}
    for merger in ('pool', 'ltm'):
        net = build(merger)
        outs = net(x)
        sum((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
            for out in outs).backward()
        outputs[merger] = outs
        grads[merger] = {k: p.grad for k, p in net.named_parameters()}
    for pooled, learned in zip(outputs['pool'], outputs['ltm']):
        torch.testing.assert_close(learned, pooled, atol=1e-4, rtol=1e-4)
    # the two compute the same merge in another order (a window gather
    # against separable products): equal up to float32 rounding, which
    # BatchNorm's batch statistics carry to every earlier layer
    shared = list(grads['pool'])
    pooled = torch.cat([grads['pool'][k].flatten() for k in shared])
    learned = torch.cat([grads['ltm'][k].flatten() for k in shared])
    assert (learned - pooled).norm() <= 1e-4 * pooled.norm()
    own = {k: g for k, g in grads['ltm'].items() if k not in grads['pool']}
    assert all(g is None for k, g in own.items() if '.mlp_' in k)
    assert any(g is not None and g.abs().sum() > 0
               for k, g in own.items() if k.endswith('.theta'))
    assert all(k.endswith('.theta') or '.mlp_' in k for k in own)

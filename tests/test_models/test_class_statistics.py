"""ClassStatistics: Python-mirrored flags, loading old and new checkpoints,
dtype handling, the step with P_ref, and tracing without graph breaks."""
import warnings

import pytest
import torch
import torch._dynamo

from ltm_mm.models.layers import ClassStatistics, LearnableMergeMask
from ltm_mm.ops import ib_step

K, DIM = 5, 8


def _statistics(reference=49.0, merged=True, seen=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    stats = ClassStatistics(K, DIM, DIM)
    stats.update(torch.randn(K, DIM, generator=gen),
                 torch.randn(K, K, generator=gen).log_softmax(0),
                 torch.randn(K, DIM, generator=gen), 0.02, seen=seen,
                 reference_num_merged=reference,
                 merged_at_collection=merged)
    return stats


def test_validity_is_python_state_kept_by_update_set_valid_and_loading():
    stats = ClassStatistics(K, DIM, DIM)
    assert stats.is_valid() is False
    valid = _statistics()
    assert valid.is_valid() is True and bool(valid.valid)
    # loading valid=True makes it valid ...
    stats.load_state_dict(valid.state_dict())
    assert stats.is_valid() is True
    # ... and valid=False invalid again
    stats.load_state_dict(ClassStatistics(K, DIM, DIM).state_dict())
    assert stats.is_valid() is False
    valid.set_valid(False)
    assert valid.is_valid() is False and not bool(valid.valid)
    unmerged = _statistics(merged=False)
    assert not unmerged.merged_when_collected()
    stats.load_state_dict(unmerged.state_dict())
    assert not stats.merged_when_collected()
    stats.load_state_dict(valid.state_dict())
    assert stats.merged_when_collected()


def test_old_checkpoint_without_new_buffers_loads_with_stated_defaults():
    new = _statistics(reference=49.0, seen=torch.tensor([1, 1, 0, 1, 0]).bool(),
                      merged=False)
    old_state = {k: v for k, v in new.state_dict().items()
                 if k not in ('seen', 'reference_num_merged',
                              'merged_at_collection')}
    loaded = ClassStatistics(K, DIM, DIM)
    with pytest.warns(UserWarning, match='predate the recorded reference'):
        loaded.load_state_dict(old_state)  # strict: nothing missing
    assert loaded.is_valid()
    assert bool(loaded.seen.all())
    assert float(loaded.reference_num_merged) == 0.0
    assert loaded.merged_when_collected()
    # P_ref unknown: phi uses the current P, as before these buffers
    x = torch.randn(3, DIM)
    phi, u = loaded.ib_step(x, 36)
    phi_ref, u_ref = ib_step(x, new.centroids, new.log_q, new.beta, 36)
    torch.testing.assert_close(phi, phi_ref)
    torch.testing.assert_close(u, u_ref)
    # an old checkpoint of never-collected statistics loads silently
    fresh = {k: v for k, v in ClassStatistics(K, DIM, DIM).state_dict()
             .items() if k != 'seen'}
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ClassStatistics(K, DIM, DIM).load_state_dict(fresh)


def test_step_uses_reference_token_count_not_the_current_one():
    stats = _statistics(reference=49.0)
    x = torch.randn(4, DIM, dtype=torch.float64)
    expected = ib_step(x, stats.centroids, stats.log_q, stats.beta, 49)
    for current in (49, 196, 2982):
        phi, u = stats.ib_step(x.float(), current)
        torch.testing.assert_close(phi, expected[0].float())
        torch.testing.assert_close(u, expected[1].float())


def test_half_keeps_statistics_float32_and_returns_half():
    stats = _statistics()
    before = {k: v.clone() for k, v in stats.state_dict().items()}
    stats.half()
    for name, value in stats.state_dict().items():
        assert value.dtype == before[name].dtype, name
        assert torch.equal(value, before[name]), name
    phi, u = stats.ib_step(torch.randn(2, DIM).half(), 49)
    assert phi.dtype == u.dtype == torch.float16
    stats.float()
    assert stats.ib_step(torch.randn(2, DIM), 49)[1].dtype == torch.float32
    stats.to(torch.bfloat16)
    assert stats.centroids.dtype == torch.float32
    assert stats.ib_step(torch.randn(2, DIM), 49)[1].dtype == torch.bfloat16
    stats.double()
    assert stats.centroids.dtype == torch.float64


def test_update_rejects_bad_statistics():
    stats = ClassStatistics(K, DIM, DIM)
    good = dict(centroids=torch.zeros(K, DIM), log_q=torch.zeros(K, K),
                input_centroids=torch.zeros(K, DIM), beta=1.0)
    with pytest.raises(ValueError, match='at least one class'):
        stats.update(**good, seen=torch.zeros(K, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'seen.*\(3,\).*\(5,\)'):
        stats.update(**good, seen=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match='beta must be > 0'):
        stats.update(**dict(good, beta=0.0))
    with pytest.raises(ValueError, match='reference_num_merged'):
        stats.update(**good, reference_num_merged=-1)
    assert not stats.is_valid()


def test_loading_seen_of_another_shape_names_both():
    stats = ClassStatistics(K, DIM, DIM)
    state = _statistics().state_dict()
    state['seen'] = torch.ones(7, dtype=torch.bool)
    with pytest.raises(ValueError, match=r'\(7,\).*\(5,\)'):
        stats.load_state_dict(state)


def test_statistics_methods_trace_without_graph_breaks():
    stats = _statistics(seen=torch.tensor([1, 0, 1, 1, 1]).bool())
    x = torch.randn(3, DIM)

    def forward_part(token_mean):
        if stats.is_valid() and stats.merged_when_collected():
            phi, u = stats.ib_step(token_mean, 36, merging=True)
            return u * stats.beta + phi.sum()
        return token_mean

    torch._dynamo.reset()
    for fn, args in ((forward_part, (x, )),
                     (stats.ib_step, (x, 36)),
                     (stats.phi_scale_tokens, (36, ))):
        explanation = torch._dynamo.explain(fn)(*args)
        assert explanation.graph_break_count == 0, explanation.break_reasons


def test_warns_once_naming_a_layer_that_merges_only_now():
    mask = LearnableMergeMask(DIM, 0.5, num_classes=K).eval()
    mask.statistics.load_state_dict(_statistics(merged=False).state_dict())
    mask.statistics.layer_name = 'backbone.layers.4.1.merge_mask'
    tokens = torch.randn(2, 64, DIM)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        mask.merging_enabled = False  # not merging: nothing to say
        mask.recording = True
        mask(tokens, (8, 8))
        assert not caught
        mask.merging_enabled = True
        mask(tokens, (8, 8))
        mask(tokens, (8, 8))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert 'backbone.layers.4.1.merge_mask' in messages[0]
    assert 'never merged' in messages[0]
    # statistics collected while merging: silent
    other = LearnableMergeMask(DIM, 0.5, num_classes=K).eval()
    other.statistics.load_state_dict(_statistics(merged=True).state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        other(tokens, (8, 8))


def test_layer_name_comes_from_the_checkpoint_key():
    mask = LearnableMergeMask(DIM, 0.5, num_classes=K)
    holder = torch.nn.ModuleDict(dict(block=mask))
    state = holder.state_dict()
    holder.load_state_dict(state)
    assert mask.statistics.layer_name == 'block'


def test_prior_token_mean_is_float32_under_autocast():
    stats = ClassStatistics(K, DIM, DIM)
    gen = torch.Generator().manual_seed(0)
    tokens = 300 + torch.randn(2, 64, DIM, generator=gen)  # ||x||^2 ~ 6e5
    weights = torch.rand(64, generator=gen)
    weights /= weights.sum()
    expected = torch.einsum('n,bnd->bd', weights.double(), tokens.double())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = stats.prior_token_mean(weights, tokens)
        rounded = torch.einsum('n,bnd->bd', weights, tokens)
    assert got.dtype == torch.float32 and rounded.dtype == torch.bfloat16
    assert float((got.double() - expected).abs().max()) < 1e-3
    # what a bfloat16 token mean loses at this magnitude
    assert float((rounded.double() - expected).abs().max()) > 0.1
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(stats.prior_token_mean)(weights,
                                                                tokens)
    assert explanation.graph_break_count == 0

"""ClassStatisticsAccumulator.finalize against float64 formulas: seen
classes, Q over seen classes, the beta floor, P_ref and the merged flag."""
import math

import pytest
import torch

from ltm_mm.statistics import ClassStatisticsAccumulator

K, DIM = 5, 4


def _batch(labels, seed=0, spread=1.0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(labels)
    means = 10 + 3 * torch.randn(K, DIM, generator=gen, dtype=torch.float64)
    x = means[labels] + spread * torch.randn(len(labels), DIM, generator=gen,
                                             dtype=torch.float64)
    one_hot = torch.nn.functional.one_hot(labels, K).double()
    phi = torch.rand(len(labels), K, generator=gen,
                     dtype=torch.float64).softmax(-1)
    return x, one_hot, phi


def test_seen_classes_and_q_over_seen_classes():
    labels = [0, 1, 3, 0, 3, 3]
    x, one_hot, phi = _batch(labels)
    acc = ClassStatisticsAccumulator(K, DIM, DIM, smoothing=0.1)
    acc.add(x, x, one_hot, phi, num_merged=49)
    stats = acc.finalize()
    seen = torch.tensor([True, True, False, True, False])
    assert torch.equal(stats['seen'], seen)
    q = stats['log_q'].double().exp().t()  # q[y, a] = Q(a | y)
    assert torch.isfinite(stats['log_q']).all()
    # Q(. | y) is a distribution over the seen classes
    torch.testing.assert_close(q[:, seen].sum(1), torch.ones(K,
                                                             dtype=q.dtype))
    for y in (0, 3):
        rows = torch.tensor(labels) == y
        numerator = phi[rows][:, seen].sum(0) + 0.1
        expected = numerator / numerator.sum()
        torch.testing.assert_close(q[y, seen], expected, rtol=1e-6, atol=0)
    # unseen labels y: uniform over the seen classes
    torch.testing.assert_close(q[2, seen], torch.full((3, ), 1 / 3,
                                                      dtype=q.dtype))
    # unseen centroids: the overall mean (placeholders)
    torch.testing.assert_close(stats['centroids'][2].double(), x.mean(0),
                               rtol=1e-6, atol=1e-5)


def test_identity_prior_over_seen_classes_without_phi():
    x, one_hot, _ = _batch([0, 4, 4])
    acc = ClassStatisticsAccumulator(K, DIM, DIM, smoothing=0.01)
    acc.add(x, x, one_hot, None, num_merged=9)
    stats = acc.finalize()
    q = stats['log_q'].double().exp().t()
    assert q[0, 0] == pytest.approx(1.01 / 1.02, rel=1e-6)
    assert q[0, 4] == pytest.approx(0.01 / 1.02, rel=1e-6)
    assert not stats['summary']['from_phi']


def test_beta_from_within_class_distance_and_reference_token_count():
    labels = [0, 0, 1, 1, 2, 2, 2]
    x, one_hot, _ = _batch(labels, spread=2.0)
    acc = ClassStatisticsAccumulator(K, DIM, DIM)
    acc.add(x[:4], x[:4], one_hot[:4], None, num_merged=196)
    acc.add(x[4:], x[4:], one_hot[4:], None, num_merged=49)
    stats = acc.finalize()
    labels = torch.tensor(labels)
    centroids = torch.stack([x[labels == a].mean(0) for a in range(3)])
    within = (x - centroids[labels]).square().sum(-1).mean()
    reference = (4 * 196 + 3 * 49) / 7
    assert stats['reference_num_merged'] == pytest.approx(reference)
    assert not stats['summary']['beta_floored']
    assert float(stats['beta']) == pytest.approx(
        1 / (reference * float(within)), rel=1e-6)


def test_one_sample_per_class_floors_beta_and_warns():
    x, one_hot, _ = _batch([0, 1, 2, 3, 4])
    acc = ClassStatisticsAccumulator(K, DIM, DIM, min_within_fraction=0.02)
    acc.add(x, x, one_hot, None, num_merged=16)
    with pytest.warns(UserWarning, match='below 0.02 of the total variance'):
        stats = acc.finalize()
    variance = (x - x.mean(0)).square().sum(-1).mean()
    assert stats['summary']['beta_floored']
    assert float(stats['beta']) == pytest.approx(
        1 / (16 * 0.02 * float(variance)), rel=1e-6)
    assert math.isfinite(float(stats['beta'].half()))
    # identical samples: no variance at all, beta still finite
    same = ClassStatisticsAccumulator(K, DIM, DIM)
    same.add(torch.ones(2, DIM), torch.ones(2, DIM), one_hot[:2], None, 4)
    with pytest.warns(UserWarning, match='floor'):
        assert math.isfinite(float(same.finalize()['beta']))


def test_merged_at_collection_is_any_merged_sample():
    x, one_hot, _ = _batch([0, 1, 2])
    acc = ClassStatisticsAccumulator(K, DIM, DIM)
    acc.add(x, x, one_hot, None, 16, merging=False)
    assert acc.finalize()['merged_at_collection'] is False
    acc.add(x, x, one_hot, None, 16, merging=True)
    assert acc.finalize()['merged_at_collection'] is True


def test_bad_input_is_named():
    acc = ClassStatisticsAccumulator(K, DIM, DIM)
    with pytest.raises(ValueError, match=r'labels must be \(3, 5\)'):
        acc.add(torch.zeros(3, DIM), torch.zeros(3, DIM), torch.zeros(3, 4))
    with pytest.raises(ValueError, match='min_within_fraction'):
        ClassStatisticsAccumulator(K, DIM, DIM, min_within_fraction=0)
    with pytest.raises(RuntimeError, match='no training samples'):
        acc.finalize()

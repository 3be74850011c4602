import math

import pytest
import torch

from ltm_mm.ops import (check_ratio, merge_tokens, merged_grid_size,
                        unmerge_tokens, window_table)

GRIDS = [(h, w) for h in (1, 2, 3, 5, 8, 17, 64) for w in (1, 2, 4, 7, 37)]


@pytest.mark.parametrize('ratio', [0.25, 0.5, 0.7, 0.9, 1.0])
def test_merged_grid_size_matches_formula(ratio):
    for h, w in GRIDS:
        mh, mw = merged_grid_size(h, w, ratio)
        assert mh == min(h, math.ceil(round(h * math.sqrt(ratio), 9)))
        assert mw == min(w, math.ceil(round(w * math.sqrt(ratio), 9)))
        assert 1 <= mh <= h and 1 <= mw <= w


def test_known_grids():
    assert merged_grid_size(20, 20, 0.7) == (17, 17)
    assert merged_grid_size(5, 5, 0.7) == (5, 5)  # ceil keeps small grids
    assert merged_grid_size(20, 20, 0.25) == (10, 10)  # exact, not 11
    assert merged_grid_size(64, 37, 1.0) == (64, 37)


@pytest.mark.parametrize('bad', [0, -0.5, 1.01, float('nan'), 'a', None])
def test_bad_ratio_raises_naming_value(bad):
    with pytest.raises(ValueError, match=repr(bad).replace('(', r'\(')):
        check_ratio(bad)
    with pytest.raises(ValueError):
        merged_grid_size(8, 8, bad)


@pytest.mark.parametrize('ratio', [0.25, 0.5, 0.7, 0.9])
@pytest.mark.parametrize('hw', GRIDS)
def test_windows_cover_every_source_and_stay_inside(hw, ratio):
    merged = merged_grid_size(*hw, ratio)
    table = window_table(hw, merged, 3)
    num_sources = hw[0] * hw[1]
    P, K = table.source_index.shape
    assert P == merged[0] * merged[1]
    assert K == min(3, hw[0]) * min(3, hw[1])
    assert table.source_index.min() >= 0
    assert table.source_index.max() < num_sources
    # no token twice in a window
    for row in table.source_index:
        assert len(set(row.tolist())) == K
    covered = torch.zeros(num_sources, dtype=torch.bool)
    covered[table.source_index.reshape(-1)] = True
    assert covered.all()
    assert table.theta_index.max() < 9


def test_window_is_centred_in_the_interior():
    table = window_table((9, 9), (3, 3), 3)
    # target (1, 1) maps to source centre (4, 4): rows 3..5, cols 3..5
    expected = sorted(r * 9 + c for r in (3, 4, 5) for c in (3, 4, 5))
    assert sorted(table.source_index[4].tolist()) == expected
    assert table.theta_index[4].tolist() == list(range(9))


def test_uncoverable_ratio_raises():
    with pytest.raises(ValueError, match='outside every window'):
        window_table((64, 64), (6, 6), 3)


def _random_weights(batch, table, generator=None, dtype=torch.float32):
    P, K = table.source_index.shape
    return torch.rand(batch, P, K, generator=generator,
                      dtype=dtype).softmax(-1)


def _dense_g(weights, table, num_sources):
    batch, P, _ = weights.shape
    dense = torch.zeros(batch, P, num_sources, dtype=weights.dtype)
    dense.scatter_(2, table.source_index.expand(batch, -1, -1), weights)
    return dense.transpose(1, 2)  # (B, N, P)


@pytest.mark.parametrize('hw,ratio', [((20, 20), 0.7), ((17, 9), 0.5),
                                      ((64, 37), 0.3), ((3, 1), 0.25)])
def test_merge_equals_dense_product(hw, ratio):
    table = window_table(hw, merged_grid_size(*hw, ratio), 3)
    N = hw[0] * hw[1]
    tokens = torch.randn(2, N, 6, dtype=torch.float64)
    # softmax in float64, so the columns sum to 1 to float64 precision
    weights = _random_weights(2, table, dtype=torch.float64)
    G = _dense_g(weights, table, N)
    # columns of G sum to 1
    torch.testing.assert_close(G.sum(1), torch.ones(2, G.shape[2],
                                                    dtype=torch.float64))
    merged = merge_tokens(tokens, weights, table)
    torch.testing.assert_close(merged, G.transpose(1, 2) @ tokens)
    # unmerge is the row-normalised G applied to the merged tokens
    restored = unmerge_tokens(merged, weights, table)
    expected = (G @ merged) / G.sum(2, keepdim=True)
    torch.testing.assert_close(restored, expected)


@pytest.mark.parametrize('hw', [(1, 1), (2, 3), (20, 20), (64, 37)])
def test_unmerge_of_merge_keeps_constant_map(hw):
    table = window_table(hw, merged_grid_size(*hw, 0.5), 3)
    tokens = torch.full((3, hw[0] * hw[1], 4), 2.5)
    weights = _random_weights(3, table)
    merged = merge_tokens(tokens, weights, table)
    torch.testing.assert_close(merged, torch.full_like(merged, 2.5))
    torch.testing.assert_close(unmerge_tokens(merged, weights, table), tokens)


def test_merge_rejects_mismatched_shapes():
    table = window_table((8, 8), (6, 6), 3)
    with pytest.raises(ValueError, match='N=63'):
        merge_tokens(torch.zeros(1, 63, 4), torch.zeros(1, 36, 9), table)
    with pytest.raises(ValueError, match=r'\(B, P, K\)'):
        merge_tokens(torch.zeros(1, 64, 4), torch.zeros(1, 36, 8), table)


def test_merge_gradients_match_dense_autograd():
    hw = (7, 6)
    table = window_table(hw, merged_grid_size(*hw, 0.5), 3)
    tokens = torch.randn(2, 42, 3, dtype=torch.float64, requires_grad=True)
    weights = _random_weights(2, table).double().requires_grad_()
    torch.autograd.gradcheck(
        lambda t, w: unmerge_tokens(merge_tokens(t, w, table), w, table),
        (tokens, weights))

import math

import pytest
import torch

from ltm_mm.ops.mask_weights import initial_theta
from ltm_mm.ops import (area_pool_tokens, check_ratio, merge_tokens,
                        merged_grid_size,
                        unmerge_cover_weights, unmerge_tokens, window_table)

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


def _axis_slots(size, merged):
    return 1 if merged == size else min(3, size)


@pytest.mark.parametrize('ratio', [0.25, 0.5, 0.7, 0.9])
@pytest.mark.parametrize('hw', GRIDS)
def test_windows_cover_every_source_and_stay_inside(hw, ratio):
    merged = merged_grid_size(*hw, ratio)
    table = window_table(hw, merged, 3)
    num_sources = hw[0] * hw[1]
    P, K = table.source_index.shape
    assert P == merged[0] * merged[1]
    assert K == _axis_slots(hw[0], merged[0]) * _axis_slots(hw[1], merged[1])
    assert table.source_index.min() >= 0
    assert table.source_index.max() < num_sources
    valid = torch.isfinite(table.prior_logits)
    assert valid.any(1).all()
    # no token twice among a window's valid slots
    for row, ok in zip(table.source_index, valid):
        assert len(set(row[ok].tolist())) == int(ok.sum())
    covered = torch.zeros(num_sources, dtype=torch.bool)
    covered[table.source_index[valid]] = True
    assert covered.all()
    assert table.theta_index.shape == (K, )
    assert table.theta_index.max() < 9


def test_window_is_centred_in_the_interior():
    table = window_table((9, 9), (3, 3), 3)
    # target (1, 1) maps to source centre (4, 4): rows 3..5, cols 3..5
    expected = sorted(r * 9 + c for r in (3, 4, 5) for c in (3, 4, 5))
    assert sorted(table.source_index[4].tolist()) == expected
    assert table.theta_index.tolist() == list(range(9))
    assert torch.isfinite(table.prior_logits[4]).all()


def test_border_windows_mask_outside_slots_instead_of_shifting():
    # 10 -> 9 rows: merged row 0 ideally sits at 0.056, nearest window
    # rows -1..1; row -1 is masked, not replaced by row 2
    table = window_table((10, 1), (9, 1), 3)
    assert table.num_slots == 3
    assert table.source_index[0].tolist() == [0, 0, 1]
    assert torch.isinf(table.prior_logits[0, 0])
    assert torch.isfinite(table.prior_logits[0, 1:]).all()


RAMP_CASES = [((10, 10), (9, 9)), ((20, 20), (17, 17)), ((40, 40), (34, 34)),
              ((16, 16), (8, 8)), ((13, 7), (11, 5)), ((9, 31), (5, 17))]


def _initial_weights(table):
    """``(1, P, K)`` window softmax of the initial theta and the prior."""
    logits = initial_theta(3).view(-1)[table.theta_index][None] + \
        table.prior_logits
    return torch.softmax(logits.double(), -1)[None]


def _ramps(hw):
    """``(1, N, 2)``: each token's row and column."""
    rows, cols = torch.meshgrid(torch.arange(hw[0]), torch.arange(hw[1]),
                                indexing='ij')
    return torch.stack([rows, cols], -1).reshape(1, -1, 2).double()


@pytest.mark.parametrize('hw,merged', RAMP_CASES)
def test_initial_merged_tokens_sit_where_area_pooling_puts_them(hw, merged):
    """theta at init merges as area pooling: merged positions are pooling's,
    within 0.09 token of the uniform merged grid's (j + 0.5) h / h' - 0.5
    (an area average of token centres is not the cell's centre when the
    cell cuts a token)."""
    table = window_table(hw, merged, 3)
    merged_pos = merge_tokens(_ramps(hw), _initial_weights(table), table)[0]
    pooled = area_pool_tokens(_ramps(hw), hw, merged)[0]
    torch.testing.assert_close(merged_pos, pooled, atol=1e-6, rtol=0)
    ideal = [(torch.arange(m).double() + 0.5) * n / m - 0.5
             for n, m in zip(hw, merged)]
    rows, cols = torch.meshgrid(*ideal, indexing='ij')
    error = (merged_pos - torch.stack([rows, cols], -1).reshape(-1, 2)).abs()
    assert error.max() <= 0.09


@pytest.mark.parametrize('hw,merged', RAMP_CASES)
def test_no_two_windows_are_identical(hw, merged):
    table = window_table(hw, merged, 3)
    valid = torch.isfinite(table.prior_logits)
    windows = {tuple(sorted(row[ok].tolist()))
               for row, ok in zip(table.source_index, valid)}
    assert len(windows) == table.num_merged


@pytest.mark.parametrize('hw,merged,bound', [
    ((10, 10), (9, 9), 0.11), ((20, 20), (17, 17), 0.16),
    ((40, 40), (34, 34), 0.16), ((13, 7), (11, 5), 0.29)])
def test_merge_then_unmerge_of_a_ramp(hw, merged, bound):
    """Round trip of a ramp through G and its transpose, theta at init
    (area pooling and its unmerge): within a third of a token everywhere
    (floor-centred, shifted windows were 1.0 token off at the borders)."""
    table = window_table(hw, merged, 3)
    weights = _initial_weights(table)
    ramps = _ramps(hw)
    restored = unmerge_tokens(merge_tokens(ramps, weights, table), weights,
                              table)
    assert (restored - ramps).abs().max() <= bound


def test_uncoverable_ratio_raises():
    with pytest.raises(ValueError, match='outside every window'):
        window_table((64, 64), (6, 6), 3)


def _random_weights(batch, table, generator=None, dtype=torch.float32):
    """Random window weights, 0 on invalid slots, summing to 1."""
    P, K = table.source_index.shape
    logits = torch.rand(batch, P, K, generator=generator, dtype=dtype)
    invalid = torch.isinf(table.prior_logits)
    return logits.masked_fill(invalid, float('-inf')).softmax(-1)


def _dense_g(weights, table, num_sources):
    batch, P, _ = weights.shape
    dense = torch.zeros(batch, P, num_sources, dtype=weights.dtype)
    # add: invalid slots (weight 0) repeat a valid token
    dense.scatter_add_(2, table.source_index.expand(batch, -1, -1), weights)
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
    # the same from cover weights computed beforehand (a CUDA graph's)
    cover = unmerge_cover_weights(weights, table)
    torch.testing.assert_close(cover.sum(-1), torch.ones(
        2, N, dtype=torch.float64))
    torch.testing.assert_close(
        unmerge_tokens(merged, weights, table, cover_weights=cover),
        expected)


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
    weights = torch.full((2, 36, 9), 1 / 9)
    cover = unmerge_cover_weights(weights, table)  # (2, 64, C)
    with pytest.raises(ValueError, match=r'cover_weights must be \(B, N, C\)'):
        unmerge_tokens(torch.zeros(2, 36, 4), weights, table,
                       cover_weights=cover[:, :63])


def test_merge_gradients_match_dense_autograd():
    hw = (7, 6)
    table = window_table(hw, merged_grid_size(*hw, 0.5), 3)
    tokens = torch.randn(2, 42, 3, dtype=torch.float64, requires_grad=True)
    weights = _random_weights(2, table).double().requires_grad_()
    torch.autograd.gradcheck(
        lambda t, w: unmerge_tokens(merge_tokens(t, w, table), w, table),
        (tokens, weights))


@pytest.mark.parametrize('batch', [1, 2])
def test_merge_and_unmerge_of_channel_first_views(batch):
    """Token-major views of ``(B, C, H, W)`` maps (strided rows, as an
    EfficientViT block passes them) give the contiguous results exactly."""
    hw, dim = (9, 14), 5
    table = window_table(hw, merged_grid_size(*hw, 0.5), 3)
    weights = _random_weights(batch, table)
    maps = torch.randn(batch, dim, *hw)
    view = maps.flatten(2).transpose(1, 2)  # (B, C, N) -> (B, N, C) view
    assert not view.is_contiguous()
    merged = merge_tokens(view, weights, table)
    assert torch.equal(merged, merge_tokens(view.contiguous(), weights,
                                            table))
    merged_view = merged.transpose(1, 2).contiguous().transpose(1, 2)
    assert torch.equal(unmerge_tokens(merged_view, weights, table),
                       unmerge_tokens(merged, weights, table))


def test_merge_primitives_agree_in_value_and_gradient():
    """The fused gathers that compiled GPU code uses (untraced here) and
    ``embedding_bag``: same sums, same gradients for rows and weights, on
    rows given as a strided view."""
    from ltm_mm.ops.merge import (bagged_row_sum, fused_gather_row_sum,
                                  gathered_row_sum)
    gen = torch.Generator().manual_seed(0)
    rows = torch.randn(5, 30, generator=gen, dtype=torch.float64).t()
    index = torch.randint(0, 30, (12, 9), generator=gen)
    weights = torch.rand(12, 9, generator=gen, dtype=torch.float64)
    inputs = (rows.requires_grad_(), weights.requires_grad_())
    results = []
    for primitive in (gathered_row_sum, fused_gather_row_sum,
                      bagged_row_sum):
        out = primitive(rows, index, weights)  # (12, 5)
        results.append((out, *torch.autograd.grad(out.square().sum(),
                                                  inputs)))
    for gathered, fused, bagged in zip(*results):
        torch.testing.assert_close(gathered, bagged)
        torch.testing.assert_close(fused, bagged)
    assert results[0][0].shape == (12, 5)

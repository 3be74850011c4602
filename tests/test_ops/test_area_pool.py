"""The ``pool`` merger's area resampling against torch's area pooling."""
import pytest
import torch
import torch.nn.functional as F

from ltm_mm.ops import (area_pool_tokens, area_unpool_tokens, area_weights,
                        merged_grid_size)
from ltm_mm.models.layers.token_maps import map_to_tokens, tokens_to_map


def _pool(x, merged_hw):
    """``(B, C, H, W)`` map through the token functions."""
    tokens = area_pool_tokens(map_to_tokens(x), x.shape[-2:], merged_hw)
    return tokens_to_map(tokens, merged_hw)


@pytest.mark.parametrize('source_hw,merged_hw', [((8, 8), (4, 4)),
                                                 ((12, 6), (6, 3)),
                                                 ((9, 12), (3, 4))])
def test_integer_factors_equal_adaptive_avg_pool_and_area_interpolate(
        source_hw, merged_hw):
    x = torch.randn(2, 5, *source_hw, dtype=torch.float64)
    pooled = _pool(x, merged_hw)
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, merged_hw))
    torch.testing.assert_close(pooled,
                               F.interpolate(x, size=merged_hw, mode='area'))


@pytest.mark.parametrize('source_hw,ratio', [((10, 10), 0.7), ((20, 13), 0.5),
                                             ((8, 8), 0.25), ((7, 5), 0.3)])
def test_constant_comes_back_unchanged_both_ways(source_hw, ratio):
    merged_hw = merged_grid_size(*source_hw, ratio)
    tokens = torch.full((2, source_hw[0] * source_hw[1], 3), 2.5,
                        dtype=torch.float64)
    merged = area_pool_tokens(tokens, source_hw, merged_hw)
    assert merged.shape == (2, merged_hw[0] * merged_hw[1], 3)
    torch.testing.assert_close(merged, torch.full_like(merged, 2.5))
    restored = area_unpool_tokens(merged, source_hw, merged_hw)
    torch.testing.assert_close(restored, tokens)


def _exact_area_reference(x, merged_hw):
    """Fractional area average by torch alone: nearest-upsample by the
    target size (every cell then spans whole pixels), then average."""
    fine = F.interpolate(x, scale_factor=merged_hw, mode='nearest')
    return F.adaptive_avg_pool2d(fine, merged_hw)


@pytest.mark.parametrize('source_hw,merged_hw', [((10, 10), (9, 9)),
                                                 ((8, 8), (4, 4)),
                                                 ((20, 14), (15, 11))])
def test_ramp_and_noise_equal_the_exact_area_average(source_hw, merged_hw):
    rows = torch.arange(source_hw[0], dtype=torch.float64)
    cols = torch.arange(source_hw[1], dtype=torch.float64)
    ramp = (3 * rows[:, None] - 2 * cols[None])[None, None]  # 3 i - 2 j
    noise = torch.randn(2, 3, *source_hw, dtype=torch.float64)
    for x in (ramp, noise):
        torch.testing.assert_close(_pool(x, merged_hw),
                                   _exact_area_reference(x, merged_hw))
    if source_hw[0] % merged_hw[0] == 0 and source_hw[1] % merged_hw[1] == 0:
        # integer factors: the ramp at the cell centres, as area pooling
        centre_r = rows.view(-1, source_hw[0] // merged_hw[0]).mean(1)
        centre_c = cols.view(-1, source_hw[1] // merged_hw[1]).mean(1)
        torch.testing.assert_close(
            _pool(ramp, merged_hw)[0, 0],
            3 * centre_r[:, None] - 2 * centre_c[None])
        torch.testing.assert_close(_pool(ramp, merged_hw),
                                   F.adaptive_avg_pool2d(ramp, merged_hw))


def test_unmerge_at_integer_factors_is_nearest_upsampling():
    merged = torch.randn(1, 4, 3, 5, dtype=torch.float64)
    restored = tokens_to_map(
        area_unpool_tokens(map_to_tokens(merged), (6, 10), (3, 5)), (6, 10))
    torch.testing.assert_close(
        restored, F.interpolate(merged, size=(6, 10), mode='nearest'))


def test_weights_rows_sum_to_one_and_bad_sizes_raise():
    weights = area_weights(10, 7)
    assert weights.shape == (7, 10)
    torch.testing.assert_close(weights.sum(1), torch.ones(7,
                                                          dtype=torch.float64))
    # every source token is covered with its full area: h' / h per token
    torch.testing.assert_close(weights.sum(0),
                               torch.full((10, ), 0.7, dtype=torch.float64))
    with pytest.raises(ValueError, match='shrinks an axis'):
        area_weights(4, 5)
    with pytest.raises(ValueError, match='grid is 4x4'):
        area_pool_tokens(torch.zeros(1, 15, 2), (4, 4), (2, 2))

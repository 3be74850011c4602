"""MACs of the baseline mergers are counted, ToMe's matching included."""
import warnings

import pytest
import torch
from torch import nn

from ltm_mm.analysis.flops import count_complexity
from ltm_mm.models.backbones import LTMEfficientViT, LTMMobileViT
from ltm_mm.models.layers import build_merger


class _MergeOnly(nn.Module):
    def __init__(self, merger, source_hw):
        super().__init__()
        self.merger, self.source_hw = merger, source_hw

    def forward(self, tokens):
        return self.merger(tokens, self.source_hw).merge(tokens)


def test_tome_counts_every_matching_round_and_the_weighted_merge():
    # 64 tokens -> 16 (r = 0.25): rounds 64 -> 32 -> 16
    count = count_complexity(_MergeOnly(build_merger('tome', 16, 0.25),
                                        (8, 8)), torch.randn(2, 64, 16))
    similarity = 2 * 32 * 32 * 16 + 2 * 16 * 16 * 16  # (B, N_a, N_b, C)
    # metric merged for round 2, sizes per round, then the merge itself
    added = 2 * 64 * 16 + 2 * 64 + 2 * 32 + 2 * 64 * 16
    assert count.by_operator == dict(bmm=similarity, scatter_add=added)
    assert count.macs == similarity + added


def test_pool_counts_both_separable_products():
    count = count_complexity(_MergeOnly(build_merger('pool', 16, 0.25),
                                        (8, 8)), torch.randn(2, 64, 16))
    # (4, 8) x (2, 8, 8, 16), then (4, 8) x (2, 4, 8, 16)
    assert count.by_operator == dict(bmm=count.macs)
    assert count.macs == 2 * 4 * 8 * 8 * 16 + 2 * 4 * 4 * 8 * 16


@pytest.mark.parametrize('cls,arch', [(LTMMobileViT, 'xx_small'),
                                      (LTMEfficientViT, 'b0')])
def test_every_merger_costs_less_than_plain_and_nothing_is_uncounted(
        cls, arch):
    x = torch.randn(1, 3, 128, 128)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plain = count_complexity(cls(arch, merge_ratios=1.0).eval(), x)
        for merger in ('ltm', 'pool', 'tome'):
            merged = count_complexity(
                cls(arch, merge_ratios=0.5, merger=merger).eval(), x)
            assert merged.macs < 0.97 * plain.macs, merger
            assert not {'aten::scatter_add', 'aten::bmm',
                        'aten::gather'} & set(merged.uncounted), merger

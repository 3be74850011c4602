"""The contract every merger keeps (merger_contract.py), the merged-branch
step both blocks share (merged_branch.py) and the one merger finder."""
import pytest
import torch
from torch import nn

from ltm_mm.models.backbones import LTMEfficientViT, LTMMobileViT
from ltm_mm.models.layers import (MERGERS, LearnableMergeMask, MapPlans,
                                  MergeInputs, Merger, MergerPlan,
                                  add_merged_branch, build_merger,
                                  find_merge_masks, find_mergers)
from ltm_mm.ops import area_pool_tokens


@pytest.mark.parametrize('name', sorted(MERGERS))
def test_every_merger_takes_the_same_call_and_returns_a_plan(name):
    merger = build_merger(name, 8, 0.7).eval()
    assert isinstance(merger, Merger)
    tokens = torch.randn(2, 100, 8)
    inputs = MergeInputs(input_tokens=torch.randn(2, 100, 8),
                         attention_keys=torch.randn(2, 100, 4))
    with torch.no_grad():
        plan = merger(tokens, (10, 10), inputs)
        assert merger(torch.randn(2, 4, 8), (2, 2), inputs) is None
    assert isinstance(plan, MergerPlan)
    assert plan.source_hw == (10, 10) and plan.merged_hw == (9, 9)
    assert plan.keeps_grid == merger.keeps_grid
    merged = plan.merge(tokens)
    assert merged.shape == (2, 81, 8)
    assert plan.unmerge(merged).shape == (2, 100, 8)
    dense = plan.dense()  # (B or 1, N, P), unit columns
    torch.testing.assert_close(dense.sum(1), torch.ones(dense.shape[0], 81))
    if plan.keeps_grid:
        assert plan.merged_sizes is None
    else:
        assert plan.merged_sizes.shape == (2, 81)


def test_tome_matches_on_the_keys_it_is_given():
    merger = build_merger('tome', 8, 0.25)  # 1x16 -> 1x8: 8 pairs merge
    tokens = torch.randn(1, 16, 8)
    # keys that pair token 2i with 2i + 1 exactly
    keys = torch.randn(1, 8, 4).repeat_interleave(2, dim=1)
    plan = merger(tokens, (1, 16), MergeInputs(attention_keys=keys))
    assert plan.merged_hw == (1, 8)
    assert torch.equal(plan.assignment[0, 0::2], plan.assignment[0, 1::2])
    other = merger(tokens, (1, 16))  # matched on the tokens instead
    assert not torch.equal(other.assignment, plan.assignment)


def test_ltm_records_the_input_tokens_it_is_given():
    mask = LearnableMergeMask(8, 0.7, num_classes=3)
    mask.recording = True
    inputs = torch.randn(2, 100, 8)
    with pytest.warns(UserWarning, match='no valid'):
        mask(torch.randn(2, 100, 8), (10, 10),
             MergeInputs(input_tokens=inputs))
    torch.testing.assert_close(mask.record.input_mean, inputs.mean(1))


def test_map_plans_follow_the_token_plans_on_both_layouts():
    pool = build_merger('pool', 4, 0.5)
    x = torch.randn(2, 4, 8, 12)  # (B, C, H, W)
    # one sequence per image: (B, N, C) tokens in row-major order
    tokens = x.flatten(2).transpose(1, 2)
    plan = pool(tokens, (8, 12))
    merged = MapPlans([plan]).merge(x)
    assert merged.shape == (2, 4, 6, 9)
    expected = area_pool_tokens(tokens, (8, 12), (6, 9))
    torch.testing.assert_close(merged.flatten(2).transpose(1, 2), expected)
    # MobileViT: 2x2 patches, one sequence per pixel position of a patch
    patch_plan = pool(torch.zeros(8, 24, 4), (4, 6))
    plans = MapPlans([patch_plan], patch_size=(2, 2))
    merged = plans.merge(x)
    assert patch_plan.merged_hw == (3, 5)
    assert merged.shape == (2, 4, 6, 10)  # (3, 5) grid of 2x2 patches
    constant = torch.full((2, 4, 6, 10), 0.5)
    torch.testing.assert_close(plans.unmerge(constant),
                               torch.full((2, 4, 8, 12), 0.5))
    # resized to an unpadded output size
    assert plans.unmerge(constant, (7, 11)).shape == (2, 4, 7, 11)
    with pytest.raises(ValueError, match='at least one plan'):
        MapPlans([])


def test_merged_branch_adds_the_unmerged_branch_to_the_residual():
    plan = build_merger('pool', 4, 0.5)(torch.zeros(1, 64, 4), (8, 8))
    plans = MapPlans([plan])
    residual, x = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    branch = nn.Conv2d(4, 4, 1)
    with torch.no_grad():
        got = add_merged_branch(residual, plans.merge(x), branch, plans)
        want = residual + plans.unmerge(branch(plans.merge(x)))
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize('backbone', [LTMMobileViT, LTMEfficientViT])
@pytest.mark.parametrize('merger', sorted(MERGERS))
def test_one_finder_for_every_merger(backbone, merger):
    arch = 'xx_small' if backbone is LTMMobileViT else 'b0'
    model = nn.ModuleDict(dict(backbone=backbone(arch, merge_ratios=0.5,
                                                 merger=merger)))
    found = find_mergers(model)
    assert found and all(isinstance(m, MERGERS[merger]) for _, m in found)
    names = [name for name, _ in model.named_modules()]
    assert [name for name, _ in found] == [
        n for n in names if n in dict(found)]  # network order
    masks = find_merge_masks(model)
    if merger == 'ltm':
        assert masks == [m for _, m in found]
        assert [m.statistics.layer_name for m in masks] == \
            [name for name, _ in found]
        assert model['backbone'].merge_mask_modules() == masks
    else:
        assert masks == [] and model['backbone'].merge_mask_modules() == []

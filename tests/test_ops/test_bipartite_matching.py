"""ToMe's bipartite soft matching (the ``tome`` merger)."""
import pytest
import torch
import torch.nn.functional as F

from ltm_mm.ops import (bipartite_soft_matching, merge_by_assignment,
                        unmerge_by_assignment)


@pytest.mark.parametrize('num_tokens,num_merged', [(100, 81), (100, 50),
                                                   (64, 16), (63, 7), (5, 1),
                                                   (9, 9)])
def test_merges_exactly_the_requested_number_of_tokens(num_tokens,
                                                       num_merged):
    metric = torch.randn(3, num_tokens, 8)
    assignment, sizes, merged_sizes = bipartite_soft_matching(
        metric, num_merged)
    assert assignment.shape == (3, num_tokens)
    assert merged_sizes.shape == (3, num_merged)
    for row in assignment:  # every merged token holds at least one source
        assert torch.equal(row.unique(), torch.arange(num_merged))
    torch.testing.assert_close(merged_sizes.sum(1),
                               torch.full((3, ), float(num_tokens)))
    assert torch.equal(merged_sizes,
                       F.one_hot(assignment, num_merged).sum(1).float())


def test_merges_the_most_similar_pairs():
    # tokens 2i and 2i + 1 share a direction; directions are orthogonal
    directions = torch.eye(8)
    metric = directions.repeat_interleave(2, dim=0)[None]  # (1, 16, 8)
    metric = metric * torch.linspace(1, 2, 16)[None, :, None]  # cosine: 1
    assignment, _, _ = bipartite_soft_matching(metric, 8)
    assert torch.equal(assignment[0, 0::2], assignment[0, 1::2])
    assert torch.equal(assignment[0, 0::2], torch.arange(8))


def test_merge_is_the_size_weighted_average_and_unmerge_copies_back():
    torch.manual_seed(0)
    metric = torch.randn(2, 30, 4)
    sizes = torch.randint(1, 5, (2, 30)).float()
    assignment, used, merged_sizes = bipartite_soft_matching(metric, 12,
                                                             sizes)
    assert torch.equal(used, sizes)
    tokens = torch.randn(2, 30, 6, dtype=torch.float64)
    merged = merge_by_assignment(tokens, assignment, sizes, merged_sizes)
    one_hot = F.one_hot(assignment, 12).double() * sizes[..., None].double()
    expected = one_hot.transpose(1, 2) @ tokens / one_hot.sum(1)[..., None]
    torch.testing.assert_close(merged, expected)
    restored = unmerge_by_assignment(merged, assignment)
    assert restored.shape == tokens.shape
    assert torch.equal(restored, merged.gather(
        1, assignment[..., None].expand(-1, -1, 6)))
    constant = torch.full_like(tokens, -1.5)
    torch.testing.assert_close(
        unmerge_by_assignment(
            merge_by_assignment(constant, assignment, sizes, merged_sizes),
            assignment), constant)


def test_each_sample_is_matched_on_its_own():
    torch.manual_seed(1)
    metric = torch.randn(4, 50, 8)
    together = bipartite_soft_matching(metric, 20)[0]
    for i in range(4):
        alone = bipartite_soft_matching(metric[i:i + 1], 20)[0]
        assert torch.equal(together[i:i + 1], alone)


def test_bad_counts_raise():
    with pytest.raises(ValueError, match='cannot merge 10 tokens into 11'):
        bipartite_soft_matching(torch.randn(1, 10, 2), 11)
    with pytest.raises(ValueError, match='cannot merge 10 tokens into 0'):
        bipartite_soft_matching(torch.randn(1, 10, 2), 0)

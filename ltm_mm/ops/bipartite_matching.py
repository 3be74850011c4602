"""Bipartite soft matching: the ``tome`` baseline merger.

Written from the description in Bolya et al., *Token Merging: Your ViT but
Faster* (ICLR 2023), Sec. 3, and the unmerge of Bolya & Hoffman, *Token
Merging for Fast Stable Diffusion* (CVPRW 2023); no code of theirs is used.

One round on ``N`` tokens with a similarity metric (the attention keys):

1. split the tokens into alternating sets A (even positions) and B (odd);
2. link every A token to its most similar B token (cosine similarity);
3. keep the ``r`` most similar links, merge each linked A token into its B
   token by a size-weighted average, and add up the sizes
   (a token's size = how many source tokens it holds);
4. the result has ``N - r`` tokens: the unlinked A tokens, then B.

A round removes at most ``ceil(N / 2)`` tokens, so merging to
``P < N / 2`` tokens (``r < 0.25`` of a grid) runs several rounds, each on
the previous round's merged metric; their composition is one assignment of
every source token to a merged token.  Merging by the assignment is the
size-weighted average of all sources of a merged token (weighted averages
compose); unmerging copies each merged token back to all its sources.

The assignment is discrete: no gradient flows through the matching, only
through the merged values.  Every step is per sample (batch-invariant).
"""
import torch
import torch.nn.functional as F


def _matching_round(metric: torch.Tensor, num_remove: int) -> torch.Tensor:
    """One round: ``(B, N)`` assignment of the ``N`` tokens of ``metric``
    ``(B, N, C)`` to ``N - num_remove`` merged tokens."""
    batch, num_tokens, _ = metric.shape
    num_a, num_b = (num_tokens + 1) // 2, num_tokens // 2
    if not 0 <= num_remove <= num_a or num_b < 1:
        raise ValueError(f'one round can remove 0..{num_a} of {num_tokens} '
                         f'tokens, asked {num_remove}')
    metric = F.normalize(metric, dim=-1)
    set_a, set_b = metric[:, 0::2], metric[:, 1::2]  # (B, N_a, C), (B, N_b, C)
    # (B, N_a, C) @ (B, C, N_b) -> (B, N_a, N_b) cosine similarities
    scores = torch.bmm(set_a, set_b.transpose(1, 2))
    best_score, best_b = scores.max(dim=-1)  # (B, N_a)
    # A tokens by decreasing similarity; the first num_remove merge
    order = best_score.argsort(dim=-1, descending=True, stable=True)
    num_kept = num_a - num_remove
    kept = order[:, num_remove:].sort(dim=-1).values  # (B, N_a - r)
    # merged A tokens go to their B token, after the kept A tokens
    target_a = best_b + num_kept  # (B, N_a)
    rank = torch.arange(num_kept, device=metric.device).expand(batch, -1)
    target_a = target_a.scatter(1, kept, rank)  # kept A keep their order
    target_b = torch.arange(num_b, device=metric.device) + num_kept  # (N_b,)
    assignment = metric.new_empty(batch, num_tokens, dtype=torch.long)
    assignment[:, 0::2] = target_a
    assignment[:, 1::2] = target_b
    return assignment


def merge_by_assignment(tokens: torch.Tensor, assignment: torch.Tensor,
                        sizes: torch.Tensor,
                        merged_sizes: torch.Tensor) -> torch.Tensor:
    """``(B, N, C) -> (B, P, C)``: size-weighted average of each merged
    token's sources.

    Args:
        assignment: ``(B, N)`` merged index of every source token.
        sizes: ``(B, N)`` sizes of the source tokens.
        merged_sizes: ``(B, P)`` sums of ``sizes`` per merged token.
    """
    batch, _, channels = tokens.shape
    weighted = tokens * sizes[..., None].to(tokens.dtype)  # (B, N, C)
    index = assignment[..., None].expand(-1, -1, channels)  # (B, N, C)
    merged = tokens.new_zeros(batch, merged_sizes.shape[1], channels)
    merged = merged.scatter_add(1, index, weighted)  # (B, P, C)
    return merged / merged_sizes[..., None].to(tokens.dtype)


def unmerge_by_assignment(merged: torch.Tensor,
                          assignment: torch.Tensor) -> torch.Tensor:
    """``(B, P, C) -> (B, N, C)``: every source token gets a copy of its
    merged token."""
    index = assignment[..., None].expand(-1, -1, merged.shape[-1])
    return merged.gather(1, index)


def bipartite_soft_matching(metric: torch.Tensor, num_merged: int,
                            sizes: torch.Tensor = None) -> tuple:
    """Match ``(B, N, C)`` tokens down to ``num_merged`` merged tokens.

    Args:
        metric: ``(B, N, C)`` what similarity is measured on (keys).
        num_merged: P, ``1 <= P <= N``.
        sizes: ``(B, N)`` sizes of the tokens (how many sources each
            holds); all 1 when None.

    Returns:
        ``(assignment, sizes, merged_sizes)``: ``(B, N)`` long merged index
        of each token, the ``(B, N)`` sizes used and the ``(B, P)`` sizes of
        the merged tokens.
    """
    batch, num_tokens, _ = metric.shape
    if not 1 <= num_merged <= num_tokens:
        raise ValueError(f'cannot merge {num_tokens} tokens into '
                         f'{num_merged}')
    metric = metric.detach()  # the matching is discrete: no gradient
    if sizes is None:
        sizes = metric.new_ones(batch, num_tokens)
    sizes = sizes.detach().to(metric.dtype)
    assignment = torch.arange(num_tokens, device=metric.device).expand(
        batch, -1)
    round_metric, round_sizes, count = metric, sizes, num_tokens
    while count > num_merged:
        num_remove = min(count - num_merged, (count + 1) // 2)
        step = _matching_round(round_metric, num_remove)  # (B, count)
        count -= num_remove
        merged_sizes = round_sizes.new_zeros(batch, count)
        merged_sizes = merged_sizes.scatter_add(1, step, round_sizes)
        if count > num_merged:  # another round follows
            round_metric = merge_by_assignment(round_metric, step,
                                               round_sizes, merged_sizes)
        round_sizes = merged_sizes
        assignment = step.gather(1, assignment)  # compose: (B, N)
    return assignment, sizes, round_sizes

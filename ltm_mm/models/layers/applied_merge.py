"""Token mean of the merge a layer actually applies (for the IB analysis).

The mask module's record keeps ``merged_mean``, the token mean under the
prior weights ``G0`` (theta only): the class centroids are defined on it
(docs/design.md, section 4).  What the layer hands on is the merge with the
final weights ``G`` (IB step, hard mask, renormalisation):

    applied_mean_i = 1/P sum_p (G_i^T Z_i)_p = sum_n a_in z_in,
    a_in = 1/P sum_{p, k : source_index[p, k] = n} weights[i, p, k].

Without a merge (identity grid or merging disabled) the layer applies none:
the applied mean is the plain token mean and ``P = N``.

:func:`record_applied_merge` adds ``applied_mean`` (B, D) and
``applied_num_merged`` to the mask module's record after each forward (a
forward hook reading the returned :class:`MergePlan`).
"""
from typing import Optional

import torch

from ltm_mm.ops.information_bottleneck import compute_dtype
from .merge_record import MergeRecord


def applied_token_mean(weights: torch.Tensor, source_index: torch.Tensor,
                       tokens: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` mean over merged tokens of ``G^T Z``, in float32 or wider.

    Args:
        weights: ``(B, P, K)`` final window weights (``MergePlan.weights``).
        source_index: ``(P, K)`` source token of each window slot.
        tokens: ``(B, N, D)`` the tokens ``Z`` that were merged.
    """
    batch, num_merged, num_slots = weights.shape
    if source_index.shape != (num_merged, num_slots):
        raise ValueError(f'source_index {tuple(source_index.shape)} does not '
                         f'match the weights {tuple(weights.shape)}')
    if tokens.shape[0] != batch:
        raise ValueError(f'tokens {tuple(tokens.shape)} and weights '
                         f'{tuple(weights.shape)} differ in batch size')
    dtype = compute_dtype(tokens.dtype)
    with torch.autocast(tokens.device.type, enabled=False):
        flat = weights.detach().to(dtype).reshape(batch, -1)  # (B, P*K)
        # (B, N): a_in, every source token's total weight over all windows
        token_weights = flat.new_zeros(batch, tokens.shape[1]).index_add(
            1, source_index.reshape(-1), flat) / num_merged
        return torch.einsum('bn,bnd->bd', token_weights, tokens.to(dtype))


def _on_forward(module, args, kwargs, plan) -> None:
    record: Optional[MergeRecord] = getattr(module, 'record', None)
    if record is None:
        return
    tokens = args[0] if args else kwargs['tokens']
    with torch.no_grad():
        if plan is None:
            record.applied_mean = tokens.detach().to(
                compute_dtype(tokens.dtype)).mean(1)
            record.applied_num_merged = tokens.shape[1]
        else:
            record.applied_mean = applied_token_mean(
                plan.weights, plan.table.source_index, tokens.detach())
            record.applied_num_merged = plan.weights.shape[1]


def record_applied_merge(mask: torch.nn.Module):
    """Make ``mask`` (a :class:`LearnableMergeMask`) record its applied
    merge while it records; returns the hook handle (``.remove()``)."""
    return mask.register_forward_hook(_on_forward, with_kwargs=True)

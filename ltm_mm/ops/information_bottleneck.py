"""The IB-gradient step of the mask module (paper Eq. 3-4; docs/design.md,
section 4).

Notation per sample ``i``: ``x_i`` (D) is the mean over tokens of the merged
tokens ``X~0 = G0^T Z`` under the prior weights ``G0``; ``c_a`` (K x D) are
class centroids of that mean; ``log_q[a, y] = log Q(a | y)`` (K x K);
``S`` is the set of classes seen while the statistics were collected.

    phi_ia = softmax_{a in S}(-beta * P_ref * ||x_i - c_a||^2),  0 for a not in S
    psi_ia = -sum_y q_i(y) log Q(a | y)     (q_i = phi_i held constant, or a
                                             one-hot label when given)
    u_i    = sum_a psi_ia phi_ia (c_a - sum_b phi_ib c_b)

``P_ref`` is the number of merged tokens the statistics were collected at
(``beta = 1 / (P_ref * m)`` with ``m`` the mean within-class squared
distance, so ``beta * P_ref = 1 / m``): ``phi`` and ``u`` depend on ``x_i``
only, not on how many tokens the current input has (see
:mod:`ltm_mm.models.layers.class_statistics` for the gradient this implies).

With ``P_ref = P`` the gradient of the variational IB bound
``IBB_i(G) = sum_a phi_ia(G) psi_ia`` at ``G0`` is ``2 beta Z_i u_i 1_P^T``:
one descent step of size ``eta / beta`` (``eta`` in units of ``phi``'s
temperature) adds ``s_n = -2 eta <z_n, u_i>`` to every column.  (The mask
module applies its MLP to ``z_n`` first.)

Numerics: the step always runs in float32 (float64 when given float64),
with autocast disabled, whatever the caller's dtype.  Distances are taken on
vectors centred at the mean seen centroid ``r``, and the ``||x_i - r||^2``
term, constant over ``a``, is dropped before the softmax:

    -beta P_ref ||x_i - c_a||^2 = beta P_ref (2 <x'_i, c'_a> - ||c'_a||^2) + const_i,
    x' = x - r,  c' = c - r,

so nothing of the size ``||x||^2`` is ever subtracted (in half precision
``||c||^2`` alone can exceed the float16 range).
"""
from typing import NamedTuple, Optional, Tuple, Union

import torch


def check_statistics_shapes(token_mean: torch.Tensor, centroids: torch.Tensor,
                            log_q: torch.Tensor) -> None:
    """Raise ValueError naming both shapes when the statistics do not fit."""
    num_classes, dim = centroids.shape
    if token_mean.shape[-1] != dim:
        raise ValueError(
            f'token width D={token_mean.shape[-1]} (tokens '
            f'{tuple(token_mean.shape)}) does not match the centroids '
            f'{tuple(centroids.shape)}; the statistics belong to another '
            f'layer or model')
    if log_q.shape != (num_classes, num_classes):
        raise ValueError(
            f'log_q has shape {tuple(log_q.shape)} but centroids '
            f'{tuple(centroids.shape)} need ({num_classes}, {num_classes})')


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def ib_step(token_mean: torch.Tensor,
            centroids: torch.Tensor,
            log_q: torch.Tensor,
            beta: torch.Tensor,
            num_merged: Union[int, torch.Tensor],
            labels: Optional[torch.Tensor] = None,
            seen: Optional[torch.Tensor] = None
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``phi`` and the gradient direction ``u`` of the IB bound.

    Args:
        token_mean: ``(B, D)`` token means ``x_i`` of the prior-merged tokens.
        centroids: ``(K, D)`` class centroids ``c_a``.
        log_q: ``(K, K)``, ``log_q[a, y] = log Q(a | y)``.
        beta: scalar tensor, the inverse temperature.
        num_merged: the token count ``beta`` is multiplied with in ``phi``:
            ``P_ref`` (the count at collection) for resolution-independent
            statistics, or the current ``P``.  An int or a scalar tensor.
        labels: optional ``(B,)`` class indices; by default the step is
            label-free (``q_i = phi_i``).
        seen: optional ``(K,)`` bools, classes seen at collection; the others
            get ``phi = 0`` (all seen when None).

    Returns:
        phi ``(B, K)`` and u ``(B, D)`` in float32 (float64 for float64
        input), whatever the input dtype or autocast state.  Gradients flow
        to ``token_mean`` through ``phi`` (``q`` is held constant, as a
        label would be); the statistics are buffers and receive none.
    """
    check_statistics_shapes(token_mean, centroids, log_q)
    if labels is not None and labels.shape != token_mean.shape[:1]:
        raise ValueError(f'labels must be ({token_mean.shape[0]},), got '
                         f'{tuple(labels.shape)}')
    if seen is not None and seen.shape != centroids.shape[:1]:
        raise ValueError(f'seen must be ({centroids.shape[0]},) like the '
                         f'centroids, got {tuple(seen.shape)}')
    prepared = prepare_statistics(centroids, log_q, beta, num_merged, seen,
                                  compute_dtype(token_mean.dtype))
    return ib_step_prepared(token_mean, prepared, labels)


class PreparedStatistics(NamedTuple):
    """What the IB step needs of the statistics, computed once per change
    of the statistics (not per forward).

    Attributes:
        reference: ``(D,)`` centring point (mean of the seen centroids).
        negative_centred: ``(K, D)`` the centred centroids negated,
            ``-c'_a`` (``u`` is one product with them).
        logit_weight: ``(D, K)`` ``2 beta P_ref c'^T``.
        logit_bias: ``(K,)`` ``-beta P_ref ||c'_a||^2``, ``-inf`` for unseen
            classes.
        log_q: ``(K, K)``, ``log Q(a | y)``.
    """
    reference: torch.Tensor
    negative_centred: torch.Tensor
    logit_weight: torch.Tensor
    logit_bias: torch.Tensor
    log_q: torch.Tensor


def prepare_statistics(centroids: torch.Tensor, log_q: torch.Tensor,
                       beta: torch.Tensor,
                       num_merged: Union[int, torch.Tensor],
                       seen: Optional[torch.Tensor] = None,
                       dtype: torch.dtype = torch.float32
                       ) -> PreparedStatistics:
    """:class:`PreparedStatistics` in ``dtype`` (autocast off)."""
    with torch.autocast(centroids.device.type, enabled=False):
        c = centroids.to(dtype)
        scale = beta.to(dtype) * num_merged  # beta * P_ref = 1 / m
        if seen is None:
            reference = c.mean(0)  # (D,)
        else:
            weight = seen.to(dtype)  # (K,)
            reference = (weight @ c) / weight.sum().clamp_min(1.0)
        c = c - reference  # (K, D) centred
        bias = -scale * c.square().sum(-1)  # (K,)
        if seen is not None:
            bias = bias.masked_fill(~seen.bool(), float('-inf'))
        return PreparedStatistics(reference, -c, (2.0 * scale) * c.t(), bias,
                                  log_q.to(dtype))


def ib_step_prepared(token_mean: torch.Tensor, prepared: PreparedStatistics,
                     labels: Optional[torch.Tensor] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`ib_step` from :class:`PreparedStatistics` (same results).

    ``u_i = sum_a w_ia (c_a - sum_b phi_ib c_b)`` with ``w = psi phi`` is
    computed as ``sum_a (w_ia - W_i phi_ia) c'_a``, ``W_i = sum_a w_ia``:
    one product with the centroids instead of two (their rows are the
    step's largest read after ``log_q``).
    """
    dtype = prepared.negative_centred.dtype
    with torch.autocast(token_mean.device.type, enabled=False):
        x = token_mean.to(dtype) - prepared.reference  # (B, D) centred
        # (B, K): beta P_ref (2 <x', c'_a> - ||c'_a||^2), equal to
        # -beta P_ref ||x - c_a||^2 up to a per-sample constant
        logits = torch.addmm(prepared.logit_bias, x, prepared.logit_weight)
        phi = torch.softmax(logits, dim=-1)
        if labels is None:
            # (B, K): -psi_ia = sum_y phi_iy log Q(a|y), phi held constant
            negative_psi = phi.detach() @ prepared.log_q.t()
        else:
            negative_psi = prepared.log_q[:, labels].t()
        negative_weights = negative_psi * phi  # (B, K): -w, 0 if unseen
        # (B, K): -(w_ia - W_i phi_ia); its sum over a is 0, so u does not
        # depend on where the centroids are centred
        coefficients = torch.addcmul(
            negative_weights, negative_weights.sum(-1, keepdim=True), phi,
            value=-1)
        u = coefficients @ prepared.negative_centred  # (B, D)
    return phi, u


def ib_bound(weights_dense: torch.Tensor, tokens: torch.Tensor,
             centroids: torch.Tensor, psi: torch.Tensor,
             beta: torch.Tensor) -> torch.Tensor:
    """Reference ``IBB_i(G) = sum_a phi_ia(G) psi_ia`` with dense ``G``.

    ``phi_ia(G) = softmax_a(-beta ||G^T Z_i - 1_P c_a^T||_F^2)``; ``psi`` is
    held constant.  Used to check :func:`ib_step` against autograd and by the
    analysis tools; costs ``O(K P D)`` per sample.

    Args:
        weights_dense: ``(B, N, P)`` merging matrices ``G``.
        tokens: ``(B, N, D)`` tokens ``Z``.
        centroids: ``(K, D)``.
        psi: ``(B, K)``.
        beta: scalar tensor.

    Returns:
        ``(B,)`` bound values.
    """
    merged = weights_dense.transpose(1, 2) @ tokens  # (B, P, D)
    # (B, 1, P, D) - (1, K, 1, D) -> (B, K): squared Frobenius distances
    diff = merged[:, None] - centroids[None, :, None, :]
    sq_dist = diff.square().sum(dim=(-1, -2))
    phi = torch.softmax(-beta * sq_dist, dim=-1)
    return (phi * psi).sum(-1)

"""The IB-gradient step of the mask module (paper Eq. 3-4; DESIGN section 2).

Notation per sample ``i``: ``x_i`` (D) is the mean over tokens of the merged
tokens ``X~0 = G0^T Z`` under the prior weights ``G0``; ``c_a`` (K x D) are
class centroids of that mean; ``log_q[a, y] = log Q(a | y)`` (K x K).

    phi_ia = softmax_a(-beta * P * ||x_i - c_a||^2)
    psi_ia = -sum_y q_i(y) log Q(a | y)     (q_i = phi_i held constant, or a
                                             one-hot label when given)
    u_i    = sum_a psi_ia phi_ia (c_a - sum_b phi_ib c_b)

and the gradient of the variational IB bound
``IBB_i(G) = sum_a phi_ia(G) psi_ia`` at ``G0`` is ``2 beta Z_i u_i 1_P^T``:
one descent step of size ``eta`` adds ``s_n = -2 eta beta <z_n, u_i>`` to
every column.  (The mask module applies its MLP to ``z_n`` first.)
"""
from typing import Optional, Tuple

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


def ib_step(token_mean: torch.Tensor,
            centroids: torch.Tensor,
            log_q: torch.Tensor,
            beta: torch.Tensor,
            num_merged: int,
            labels: Optional[torch.Tensor] = None
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``phi`` and the gradient direction ``u`` of the IB bound.

    Args:
        token_mean: ``(B, D)`` token means ``x_i`` of the prior-merged tokens.
        centroids: ``(K, D)`` class centroids ``c_a``.
        log_q: ``(K, K)``, ``log_q[a, y] = log Q(a | y)``.
        beta: scalar tensor, the inverse temperature.
        num_merged: ``P``, the number of merged tokens.
        labels: optional ``(B,)`` class indices; by default the step is
            label-free (``q_i = phi_i``).

    Returns:
        phi ``(B, K)`` and u ``(B, D)``.  Gradients flow to ``token_mean``
        through ``phi`` (``q`` is held constant, as a label would be); the
        statistics are buffers and receive none.
    """
    check_statistics_shapes(token_mean, centroids, log_q)
    centroids = centroids.to(token_mean.dtype)
    # (B, K): squared distances ||x_i||^2 - 2 <x_i, c_a> + ||c_a||^2 as one
    # addmm (3-5x faster than cdist(...)**2 for a few rows and K = 1000)
    sq_dist = torch.addmm(centroids.square().sum(-1), token_mean,
                          centroids.t(), alpha=-2.0)
    sq_dist = (sq_dist + token_mean.square().sum(-1, keepdim=True)).clamp_min(0)
    phi = torch.softmax(-beta * num_merged * sq_dist, dim=-1)
    log_q = log_q.to(token_mean.dtype)
    if labels is None:
        # psi_ia = -sum_y phi_iy log Q(a|y), phi held constant: (B, K)
        psi = -phi.detach() @ log_q.t()
    else:
        if labels.shape != token_mean.shape[:1]:
            raise ValueError(f'labels must be ({token_mean.shape[0]},), got '
                             f'{tuple(labels.shape)}')
        psi = -log_q[:, labels].t()
    # (B, D): phi-weighted mean centroid c̄_i
    mean_centroid = phi @ centroids
    weights = psi * phi  # (B, K)
    u = weights @ centroids - weights.sum(-1, keepdim=True) * mean_centroid
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

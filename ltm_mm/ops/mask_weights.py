"""The mask module's maths as pure functions (docs/design.md, sections 2-4).

One LTM layer turns window logits into the merging weights ``G``:

* :func:`window_priors`: what depends on ``theta`` and the grid alone, the
  logits ``theta[offset] + log area weight`` of every window slot, the keep
  floors and the prior token weights ``a`` of ``mean_p (G0^T Z)_p``;
* :func:`score_projection` and :func:`informativeness`: the IB step's
  score ``s_n = -2 eta <MLP(z_n), u_i>`` of every source token, capped at
  ``+-SCORE_BOUND``;
* :func:`hard_masked_softmax` (eval) and :func:`sampled_mask_weights`
  (training): the binary keep mask applied to the window softmax;
  :func:`merge_weights` puts logits, softmax and mask together.

``KEEP_MARGIN`` separates the keep decision from the weights: a slot's keep
logit is ``theta + s + KEEP_MARGIN``, without the geometry prior, so a small
area weight never drops a slot and at ``theta = 0`` every window keeps all
its tokens.
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from .windows import WindowTable

# Added to a slot's keep logit ``theta + s``: sigmoid(4) = 0.98, so a slot
# is dropped only once its learned logit has fallen by about 4 (and under
# Gumbel noise at init, 1.8% of the time).
KEEP_MARGIN = 4.0

# The IB step's scores are soft-capped, ``s -> SCORE_BOUND tanh(s /
# SCORE_BOUND)`` (the identity for small scores).  An uncapped score MLP grew
# to scores of several hundred in fine-tuning: the window softmax then
# underflowed to exact zeros, a source token lost every weight of the
# unmerge, and the unmerge's normalisation sent inf back (NaN losses).  At
# 8 a score can still drop a slot (past KEEP_MARGIN) and favour one slot
# e^16 times over another, and no weight underflows.
SCORE_BOUND = 2 * KEEP_MARGIN


def initial_theta(window_size: int) -> torch.Tensor:
    """``(k, k)`` zeros: with the window table's log area priors the initial
    merge is exactly area pooling, and every keep logit is ``KEEP_MARGIN``.
    """
    return torch.zeros(window_size, window_size)


class WindowPriors(NamedTuple):
    """What a merge's logits take from theta and the grid alone.

    Attributes:
        logits: ``(P, K)`` theta by window slot plus the geometry prior.
        keep_floor: ``(P, K)`` geometry prior minus ``KEEP_MARGIN``: a slot
            is kept at eval when its logit reaches it
            (:func:`hard_masked_softmax`).
        keep_logits: ``(K,)`` ``theta + KEEP_MARGIN`` by window slot, the
            keep logits before the IB step's scores.
        token_weights: ``(N,)`` ``a`` with ``mean_p (G0^T Z)_p = sum_n a_n
            z_n``.
    """
    logits: torch.Tensor
    keep_floor: torch.Tensor
    keep_logits: torch.Tensor
    token_weights: torch.Tensor


def window_priors(theta: torch.Tensor, table: WindowTable,
                  dtype: torch.dtype) -> WindowPriors:
    """:class:`WindowPriors` of ``theta`` ``(k, k)`` on ``table``'s grid."""
    slot_theta = theta.view(-1).to(dtype)[table.theta_index]  # (K,)
    geometry = table.prior_logits.to(dtype)  # (P, K)
    # (1, K) + (P, K): theta by window slot plus the geometry
    logits = slot_theta[None] + geometry
    prior = torch.softmax(logits, dim=-1)  # G0, (P, K)
    num_sources = table.source_hw[0] * table.source_hw[1]
    # (P, K) -> (N,): each source token's total prior weight
    # (scatter_add rather than index_add: the TorchScript ONNX exporter
    # refuses index_add with repeated indices)
    token_weights = prior.new_zeros(num_sources).scatter_add(
        0, table.source_index.reshape(-1), prior.reshape(-1))
    return WindowPriors(logits, geometry - KEEP_MARGIN,
                        slot_theta + KEEP_MARGIN,
                        token_weights / table.source_index.shape[0])


def hard_masked_softmax(logits: torch.Tensor,
                        keep_floor: torch.Tensor) -> torch.Tensor:
    """Eval mask and renormalisation in one pass: the softmax of the window
    logits ``(..., K)`` over the kept slots of each window.

    A slot's keep logit ``theta + s + KEEP_MARGIN`` is its window logit
    minus the geometry prior plus ``KEEP_MARGIN``, so it is not negative
    exactly when the logit reaches ``keep_floor = prior - KEEP_MARGIN``
    (broadcast against ``logits``).  A slot is kept when it does, or when it
    holds the window's largest logit (ties at the maximum are all kept):
    ``logits >= min(max, keep_floor)``, which equals masking the window
    softmax with ``(keep >= 0) | argmax`` and renormalising.
    """
    threshold = torch.minimum(logits.amax(-1, keepdim=True), keep_floor)
    dropped = logits < threshold
    return torch.softmax(logits.masked_fill(dropped, float('-inf')), dim=-1)


def score_projection(out_weight: torch.Tensor, out_bias: torch.Tensor,
                     eta: float, dtype: torch.dtype) -> torch.Tensor:
    """``(D, H + 1)``: ``-2 eta [W2 | b2] / SCORE_BOUND`` of the MLP's
    output layer ``W2`` ``(D, H)``, ``b2`` ``(D,)``, so that one product with
    ``u`` gives both ``W2^T u`` and ``<b2, u>``, scaled for the cap."""
    # (D, H) and (D,) -> (D, H + 1)
    return torch.cat([out_weight, out_bias[:, None]], dim=1).to(dtype) * (
        -2.0 * eta / SCORE_BOUND)


def informativeness(hidden: torch.Tensor, u: torch.Tensor,
                    projection: torch.Tensor) -> torch.Tensor:
    """``s_n = SCORE_BOUND tanh(-2 eta <MLP(z_n), u_i> / SCORE_BOUND)`` as
    ``(B, N)``.

    Args:
        hidden: ``(B, N, H)`` the MLP's hidden activations ``h_n``.
        u: ``(B, D)`` the IB step's direction per sample.
        projection: ``(D, H + 1)`` of :func:`score_projection`.

    ``<W2 h + b2, u> = <h, W2^T u> + <b2, u>``: projecting ``u`` once per
    sample avoids the MLP's output layer on every token.
    """
    num_hidden = hidden.shape[-1]
    # (B, D) @ (D, H + 1) -> (B, H + 1): W2^T u and <b2, u>, with the
    # step's constant and the cap's scale
    projected = u.to(hidden.dtype) @ projection
    # (B, 1, 1) + (B, N, H) @ (B, H, 1) -> (B, N, 1) -> (B, N)
    scaled = torch.baddbmm(projected[:, num_hidden, None, None], hidden,
                           projected[:, :num_hidden, None])[:, :, 0]
    return torch.tanh(scaled) * SCORE_BOUND


def logistic_noise(like: torch.Tensor) -> torch.Tensor:
    """Logistic noise shaped like ``like`` (the difference of two Gumbels):
    added to a logit, it samples a Gumbel-sigmoid."""
    uniform = torch.rand_like(like).clamp_(1e-6, 1 - 1e-6)
    return uniform.log() - (-uniform).log1p()


def training_noise(noise: Optional[torch.Tensor], logits: torch.Tensor,
                   sample: bool) -> Optional[torch.Tensor]:
    """The training mask's noise: ``noise`` when given (checked against
    ``logits`` ``(B, P, K)``), else sampled when ``sample`` (the IB step ran:
    a layer without statistics has nothing to explore), else None."""
    if noise is None:
        return logistic_noise(logits) if sample else None
    if noise.shape != logits.shape:
        raise ValueError(f'gumbel_noise must have shape '
                         f'{tuple(logits.shape)}, got {tuple(noise.shape)}')
    return noise


def sampled_mask_weights(soft_weights: torch.Tensor, logits: torch.Tensor,
                         keep_logits: torch.Tensor, tau: float,
                         noise: Optional[torch.Tensor] = None
                         ) -> torch.Tensor:
    """Training mask: ``(B, P, K)`` window softmax times a binary keep mask,
    renormalised.

    A slot is kept when ``sigmoid((keep_logits + noise) / tau) > 0.5`` or
    when it holds the window's largest logit.  The hard mask is forwarded
    and the sigmoid's gradient passed back (straight-through).
    """
    keep_best = F.one_hot(logits.argmax(-1), logits.shape[-1]).bool()
    if noise is not None:
        keep_logits = keep_logits + noise
    soft = torch.sigmoid(keep_logits / tau)
    hard = (soft > 0.5) | keep_best
    # straight-through: forward the hard mask, backward the soft one
    mask = hard.to(soft.dtype) + soft - soft.detach()
    weights = soft_weights * mask
    return weights / weights.sum(-1, keepdim=True)


def merge_weights(priors: WindowPriors, slot_score: Optional[torch.Tensor],
                  batch: int, training: bool, tau: float = 1.0,
                  noise: Optional[torch.Tensor] = None
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(weights, soft_weights)``, both ``(B, P, K)``, of one merge.

    The window logits are ``priors.logits`` plus ``slot_score`` ``(B, P,
    K)``, each slot's source token's IB score (None without statistics:
    every sample then has the same weights).  ``soft_weights`` is their
    window softmax (the unmerge's weights); ``weights`` applies the keep
    mask, thresholded at eval and sampled while ``training``
    (:func:`training_noise` gives the noise).
    """
    if slot_score is None:  # (P, K) -> (B, P, K)
        logits = priors.logits.expand(batch, -1, -1)
    else:
        logits = slot_score + priors.logits
    soft_weights = torch.softmax(logits, dim=-1)
    if not training:
        return hard_masked_softmax(logits, priors.keep_floor), soft_weights
    # (K,) -> (B, P, K), plus the scores when the IB step ran
    keep_logits = priors.keep_logits.expand_as(logits) \
        if slot_score is None else slot_score + priors.keep_logits
    weights = sampled_mask_weights(
        soft_weights, logits, keep_logits, tau,
        training_noise(noise, logits, sample=slot_score is not None))
    return weights, soft_weights

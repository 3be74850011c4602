"""IB loss and variational IB bound per LTM layer (paper Sec. 3.2, Thm 3.1).

With the soft cluster assignments of a layer's statistics,

* ``phi(X~_i, a)``: merged-token mean ``x_i`` against ``centroids`` (K x D),
* ``phi(X_i, b)``: input-token mean against ``input_centroids`` (K x D_in),

the mutual informations are estimated through the clusters (so each is at
most ``log K``):

    I(X~; X) = I(A; B),  p(a, b) = 1/n sum_i phi(X~_i, a) phi(X_i, b)
    I(X~; Y) = I(A; Y),  p(a, y) = 1/n sum_i phi(X~_i, a) 1{y_i = y}
    IB  = I(X~; X) - I(X~; Y)
    IBB = 1/n sum_i sum_a phi(X~_i, a) [sum_b phi(X_i, b) log phi(X_i, b)
                                        - log Q(a | y_i)]

The accumulator sums per-batch quantities, so any number of batches (and
ranks) can be combined.
"""
import math
from typing import Optional

import torch


def soft_assignments(means: torch.Tensor, centroids: torch.Tensor,
                     beta: torch.Tensor, num_tokens,
                     seen: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(S, K)`` ``softmax_a(-beta * P * ||x_i - c_a||^2)`` in float64.

    ``num_tokens`` is the ``P`` that ``beta`` is calibrated for (``P_ref`` of
    collected statistics); classes with ``seen`` False get 0.
    """
    sq_dist = torch.cdist(means.double(), centroids.double()).square()
    logits = -float(beta) * float(num_tokens) * sq_dist
    if seen is not None:
        logits = logits.masked_fill(~seen.bool().cpu(), float('-inf'))
    return torch.softmax(logits, dim=-1)


def mutual_information(joint: torch.Tensor) -> float:
    """``I`` (nats) of a non-negative joint table (normalised here)."""
    joint = joint.double() / joint.sum()
    marginal_rows = joint.sum(1, keepdim=True)
    marginal_cols = joint.sum(0, keepdim=True)
    ratio = joint / (marginal_rows @ marginal_cols).clamp_min(1e-300)
    terms = torch.where(joint > 0, joint * ratio.clamp_min(1e-300).log(),
                        torch.zeros_like(joint))
    return float(terms.sum().clamp_min(0.0))


class IBEstimator:
    """Sums over a data set for one layer; :meth:`result` gives the table
    row ``dict(ib_loss, i_x, i_y, ibb)`` in nats."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        f64 = dict(dtype=torch.float64)
        self.joint_ab = torch.zeros(num_classes, num_classes, **f64)
        self.joint_ay = torch.zeros(num_classes, num_classes, **f64)
        self.ibb_sum = torch.zeros((), **f64)
        self.count = 0

    def add(self, phi_merged: torch.Tensor, phi_input: torch.Tensor,
            labels: torch.Tensor, log_q: torch.Tensor) -> None:
        """phi_merged, phi_input: (S, K); labels: (S,) ints; log_q: (K, K)
        with ``log_q[a, y] = log Q(a | y)``."""
        phi_merged = phi_merged.double().cpu()
        phi_input = phi_input.double().cpu()
        labels = labels.long().cpu()
        if labels.numel() and (labels.min() < 0
                               or labels.max() >= self.num_classes):
            raise ValueError(f'labels must lie in [0, {self.num_classes}), '
                             f'got {labels.min().item()}..'
                             f'{labels.max().item()}')
        one_hot = torch.nn.functional.one_hot(labels, self.num_classes)
        self.joint_ab += phi_merged.t() @ phi_input
        self.joint_ay += phi_merged.t() @ one_hot.double()
        neg_entropy = (phi_input * phi_input.clamp_min(1e-300).log()).sum(-1)
        log_q_of_label = log_q.double().cpu()[:, labels].t()  # (S, K)
        self.ibb_sum += (phi_merged * (neg_entropy[:, None] -
                                       log_q_of_label)).sum()
        self.count += labels.numel()

    def result(self) -> dict:
        if self.count == 0:
            raise RuntimeError('no samples were added')
        i_x = mutual_information(self.joint_ab)
        i_y = mutual_information(self.joint_ay)
        return dict(i_x=i_x, i_y=i_y, ib_loss=i_x - i_y,
                    ibb=float(self.ibb_sum) / self.count,
                    log_k=math.log(self.num_classes), samples=self.count)

"""Per-class sums for one LTM layer's statistics (docs/design.md, section 6).

Accumulation is a sum over samples (float64), so splitting the data across
ranks and all-reducing gives the same result as one process on all of it.

From the sums, :meth:`ClassStatisticsAccumulator.finalize` derives, with
``S`` the classes seen (positive label mass):

* ``seen[a] = a in S``;
* ``centroids[a]``: mean prior-merged token mean of class ``a``; classes not
  in ``S`` hold the overall mean as a placeholder, and the IB step ignores
  them (``phi = 0``);
* ``input_centroids[a]``: the same for the input-token mean;
* ``log_q[a, y] = log Q(a | y)``, ``Q(. | y)`` a distribution over ``S``:
  ``Q(a | y) = (sum_i q_iy phi_ia + alpha) / sum_{b in S} (...)`` for
  ``a in S`` (Laplace-smoothed), the average ``phi_a`` over samples of class
  ``y``; before any statistics exist there is no ``phi`` and ``Q`` starts as
  a smoothed identity over ``S``.  Rows ``y`` not in ``S`` are uniform over
  ``S``; entries ``a`` not in ``S`` hold ``alpha / sum(...)`` only so that
  ``log_q`` stays finite (they are never used);
* ``m = max(m_within, f * V)``: the mean within-class squared distance
  ``m_within = sum_i sum_y q_iy ||x_i - c_y||^2 / sum_i sum_y q_iy``,
  floored at a fraction ``f`` (``min_within_fraction``, default 1e-2) of the
  total variance ``V = mean_i ||x_i - x_bar||^2``: with one sample per class
  ``m_within = 0`` would make ``beta`` infinite.  A floor that binds is
  reported (``summary['beta_floored']`` and a warning);
* ``P_ref``: the mean number of merged tokens per sequence, and
  ``beta = 1 / (P_ref * m)``, so that ``phi_ia = softmax_a(-||x_i - c_a||^2
  / m)`` (the IB step multiplies ``beta`` by ``P_ref``, not the current
  ``P``): a sample is on average ``1`` from its own centroid at any input
  size;
* ``merged_at_collection``: whether any sample was recorded while the layer
  merged (its grid shrank and merging was enabled).

Soft labels (mixup / cutmix scores) weight a sample's contribution to each
class by its label mass.
"""
import warnings
from typing import Optional, Sequence

import torch
from mmengine import dist


def soft_labels_from_samples(data_samples: Sequence,
                             num_classes: int) -> torch.Tensor:
    """``(B, K)`` label weights from mmpretrain ``DataSample`` objects.

    Uses ``gt_score`` (set by mixup / cutmix) when present, else a one-hot
    ``gt_label``.  Raises ValueError naming the label when it does not fit K.
    """
    rows = []
    for sample in data_samples:
        if 'gt_score' in sample:
            score = sample.gt_score.detach().float().cpu()
            if score.numel() != num_classes:
                raise ValueError(
                    f'gt_score has {score.numel()} classes but the LTM '
                    f'statistics are built for num_classes={num_classes}')
            rows.append(score.reshape(-1))
            continue
        if 'gt_label' not in sample:
            raise ValueError('LTM statistics need class labels: the data '
                             'sample has neither gt_label nor gt_score')
        label = torch.as_tensor(sample.gt_label).reshape(-1)[0].item()
        if not 0 <= label < num_classes:
            raise ValueError(f'class label {label} is outside the LTM '
                             f'statistics num_classes={num_classes}')
        row = torch.zeros(num_classes)
        row[int(label)] = 1.0
        rows.append(row)
    return torch.stack(rows)


class ClassStatisticsAccumulator:
    """Sums of one LTM layer over an epoch.

    Args:
        num_classes (int): K.
        dim (int): D of the merged tokens.
        input_dim (int): D_in of the input tokens.
        smoothing (float): Laplace pseudo-count of ``Q(a | y)``.
    """

    def __init__(self, num_classes: int, dim: int, input_dim: int,
                 smoothing: float = 1e-2, min_within_fraction: float = 1e-2):
        if not 0 < min_within_fraction < 1:
            raise ValueError(f'min_within_fraction must be in (0, 1), got '
                             f'{min_within_fraction}')
        self.num_classes = num_classes
        self.smoothing = smoothing
        self.min_within_fraction = min_within_fraction
        f64 = dict(dtype=torch.float64)
        self.count = torch.zeros(num_classes, **f64)
        self.sum_merged = torch.zeros(num_classes, dim, **f64)
        self.sum_sq_merged = torch.zeros(num_classes, **f64)
        self.sum_input = torch.zeros(num_classes, input_dim, **f64)
        self.sum_phi = torch.zeros(num_classes, num_classes, **f64)
        self.phi_mass = torch.zeros(num_classes, **f64)
        self.sum_num_merged = torch.zeros((), **f64)
        self.num_samples = torch.zeros((), **f64)
        self.merged_samples = torch.zeros((), **f64)

    def add(self, merged_mean: torch.Tensor, input_mean: torch.Tensor,
            labels: torch.Tensor, phi: Optional[torch.Tensor] = None,
            num_merged: int = 1, merging: bool = True) -> None:
        """Add a batch: ``merged_mean`` (S, D), ``input_mean`` (S, D_in),
        ``labels`` (S, K) label weights, ``phi`` (S, K) or None;
        ``merging``: whether the layer merged these samples."""
        if labels.shape != (merged_mean.shape[0], self.num_classes):
            raise ValueError(f'labels must be ({merged_mean.shape[0]}, '
                             f'{self.num_classes}) label weights, got '
                             f'{tuple(labels.shape)}')
        weights = labels.to(torch.float64)  # (S, K)
        merged = merged_mean.to(torch.float64).cpu()
        weights = weights.cpu()
        self.count += weights.sum(0)
        self.sum_merged += weights.t() @ merged
        self.sum_sq_merged += weights.t() @ merged.square().sum(-1)
        self.sum_input += weights.t() @ input_mean.to(torch.float64).cpu()
        if phi is not None:
            # sum_phi[y, a] = sum_i q_iy phi_ia
            self.sum_phi += weights.t() @ phi.to(torch.float64).cpu()
            self.phi_mass += weights.sum(0)
        self.sum_num_merged += num_merged * merged.shape[0]
        self.num_samples += merged.shape[0]
        if merging:
            self.merged_samples += merged.shape[0]

    def _tensors(self):
        return [self.count, self.sum_merged, self.sum_sq_merged,
                self.sum_input, self.sum_phi, self.phi_mass,
                self.sum_num_merged, self.num_samples, self.merged_samples]

    def all_reduce(self) -> None:
        """Sum over ranks (no-op without an initialised process group)."""
        for tensor in self._tensors():
            dist.all_reduce(tensor, op='sum')

    def _log_q(self, seen: torch.Tensor) -> torch.Tensor:
        """``(K, K)`` ``log_q[a, y] = log Q(a | y)``, Q over seen classes."""
        alpha = self.smoothing
        seen_a = seen[None, :]  # (1, K): columns a of q[y, a]
        if self.phi_mass.sum() > 0:
            base = self.sum_phi  # (y, a)
        else:
            base = torch.diag(seen.to(torch.float64))
        numerator = (base + alpha) * seen_a
        denominator = numerator.sum(1, keepdim=True)  # (K, 1) per y
        q = torch.where(seen_a, numerator / denominator, alpha / denominator)
        return q.log().t()

    def finalize(self) -> dict:
        """Statistics as float32 tensors plus a summary for the log."""
        total = self.count.sum()
        if self.num_samples.item() == 0 or total.item() <= 0:
            raise RuntimeError('no training samples were recorded for the '
                               'LTM statistics in this epoch')
        seen = self.count > 0
        count = self.count.clamp_min(1e-12)[:, None]
        overall = self.sum_merged.sum(0) / total
        centroids = torch.where(seen[:, None], self.sum_merged / count,
                                overall)
        overall_in = self.sum_input.sum(0) / total
        input_centroids = torch.where(seen[:, None], self.sum_input / count,
                                      overall_in)
        # within-class scatter: sum_i q_iy ||x_i - c_y||^2
        scatter = self.sum_sq_merged - self.count * centroids.square().sum(-1)
        within = float(scatter.clamp_min(0).sum() / total)
        mean_sq_norm = float(self.sum_sq_merged.sum() / total)
        variance = max(mean_sq_norm - float(overall.square().sum()), 0.0)
        floor = max(self.min_within_fraction * variance,
                    1e-12 * mean_sq_norm, 1e-30)
        floored = within < floor
        mean_sq_dist = max(within, floor)
        mean_num_merged = float(self.sum_num_merged / self.num_samples)
        beta = 1.0 / (mean_num_merged * mean_sq_dist)
        if floored:
            warnings.warn(
                f'LTM statistics: the mean within-class squared distance '
                f'{within:.4g} is below {self.min_within_fraction:g} of the '
                f'total variance {variance:.4g} (too few samples per class?); '
                f'beta is computed from the floor {floor:.4g}.')
        merged = bool(self.merged_samples.item() > 0)
        summary = dict(
            classes_seen=int(seen.sum()), num_classes=self.num_classes,
            samples=int(self.num_samples.item()), beta=beta,
            mean_sq_dist=mean_sq_dist, within_sq_dist=within,
            beta_floored=floored, reference_num_merged=mean_num_merged,
            merged=merged, from_phi=bool(self.phi_mass.sum() > 0))
        log_q = self._log_q(seen)
        summary['q_diagonal'] = float(
            log_q.diagonal()[seen].exp().mean())
        return dict(
            centroids=centroids.float(), input_centroids=input_centroids.float(),
            log_q=log_q.float(), beta=torch.tensor(beta), seen=seen,
            reference_num_merged=mean_num_merged,
            merged_at_collection=merged, summary=summary)


def describe(layer_name: str, summary: dict) -> str:
    """One log line per layer."""
    source = 'phi' if summary['from_phi'] else 'identity prior'
    return (f'LTM statistics {layer_name}: {summary["samples"]} sequences, '
            f'{summary["classes_seen"]}/{summary["num_classes"]} classes '
            f'seen, beta={summary["beta"]:.4g}, mean within-class '
            f'sq. distance={summary["mean_sq_dist"]:.4g}, mean Q(y|y)='
            f'{summary["q_diagonal"]:.3f} (from {source}), P_ref='
            f'{summary["reference_num_merged"]:.4g}'
            + (', beta from the floor' if summary['beta_floored'] else '')
            + ('' if summary['merged'] else ', collected without merging'))


__all__ = ['ClassStatisticsAccumulator', 'soft_labels_from_samples',
           'describe']

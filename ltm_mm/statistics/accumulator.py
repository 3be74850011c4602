"""Per-class sums for one LTM layer's statistics (DESIGN section 4).

Accumulation is a sum over samples (float64), so splitting the data across
ranks and all-reducing gives the same result as one process on all of it.

From the sums, :meth:`ClassStatisticsAccumulator.finalize` derives

* ``centroids[a]``: mean prior-merged token mean of class ``a`` (classes never
  seen get the overall mean, so they attract nothing in particular);
* ``input_centroids[a]``: the same for the input-token mean;
* ``log_q[a, y] = log Q(a | y)`` with ``Q(a | y)`` the average ``phi_a`` over
  samples of class ``y`` (Laplace-smoothed, so never ``-inf``).  Before any
  statistics exist there is no ``phi``; ``Q`` then starts as a smoothed
  identity (each class maps to its own centroid);
* ``beta = 1 / (P * mean within-class squared distance)``, so that
  ``beta * P * ||x - c_y||^2`` is 1 on average for a sample's own class.

Soft labels (mixup / cutmix scores) weight a sample's contribution to each
class by its label mass.
"""
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
                 smoothing: float = 1e-2):
        self.num_classes = num_classes
        self.smoothing = smoothing
        f64 = dict(dtype=torch.float64)
        self.count = torch.zeros(num_classes, **f64)
        self.sum_merged = torch.zeros(num_classes, dim, **f64)
        self.sum_sq_merged = torch.zeros(num_classes, **f64)
        self.sum_input = torch.zeros(num_classes, input_dim, **f64)
        self.sum_phi = torch.zeros(num_classes, num_classes, **f64)
        self.phi_mass = torch.zeros(num_classes, **f64)
        self.sum_num_merged = torch.zeros((), **f64)
        self.num_samples = torch.zeros((), **f64)

    def add(self, merged_mean: torch.Tensor, input_mean: torch.Tensor,
            labels: torch.Tensor, phi: Optional[torch.Tensor] = None,
            num_merged: int = 1) -> None:
        """Add a batch: ``merged_mean`` (S, D), ``input_mean`` (S, D_in),
        ``labels`` (S, K) label weights, ``phi`` (S, K) or None."""
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

    def _tensors(self):
        return [self.count, self.sum_merged, self.sum_sq_merged,
                self.sum_input, self.sum_phi, self.phi_mass,
                self.sum_num_merged, self.num_samples]

    def all_reduce(self) -> None:
        """Sum over ranks (no-op without an initialised process group)."""
        for tensor in self._tensors():
            dist.all_reduce(tensor, op='sum')

    def finalize(self) -> dict:
        """Statistics as float32 tensors plus a summary for the log."""
        if self.num_samples.item() == 0:
            raise RuntimeError('no training samples were recorded for the '
                               'LTM statistics in this epoch')
        seen = self.count > 0
        count = self.count.clamp_min(1e-12)[:, None]
        overall = self.sum_merged.sum(0) / self.count.sum()
        centroids = torch.where(seen[:, None], self.sum_merged / count,
                                overall)
        overall_in = self.sum_input.sum(0) / self.count.sum()
        input_centroids = torch.where(seen[:, None], self.sum_input / count,
                                      overall_in)
        # within-class scatter: sum_i q_iy ||x_i - c_y||^2
        scatter = self.sum_sq_merged - self.count * centroids.square().sum(-1)
        mean_sq_dist = scatter.clamp_min(0).sum() / self.count.sum()
        mean_num_merged = self.sum_num_merged / self.num_samples
        beta = 1.0 / (mean_num_merged * mean_sq_dist.clamp_min(1e-12))

        num_classes, alpha = self.num_classes, self.smoothing
        if self.phi_mass.sum() > 0:
            # Q(a|y) = (sum_i q_iy phi_ia + alpha) / (sum_i q_iy + alpha K)
            q = (self.sum_phi + alpha) / (self.phi_mass[:, None] +
                                          alpha * num_classes)
        else:
            q = torch.eye(num_classes, dtype=torch.float64) + alpha
            q = q / q.sum(1, keepdim=True)
        # stored as log_q[a, y] = log Q(a | y)
        log_q = q.log().t()
        summary = dict(
            classes_seen=int(seen.sum()), num_classes=num_classes,
            samples=int(self.num_samples.item()), beta=float(beta),
            mean_sq_dist=float(mean_sq_dist),
            q_diagonal=float(q.diagonal().mean()),
            from_phi=bool(self.phi_mass.sum() > 0))
        return dict(
            centroids=centroids.float(), input_centroids=input_centroids.float(),
            log_q=log_q.float(), beta=torch.tensor(float(beta)),
            summary=summary)


def describe(layer_name: str, summary: dict) -> str:
    """One log line per layer."""
    source = 'phi' if summary['from_phi'] else 'identity prior'
    return (f'LTM statistics {layer_name}: {summary["samples"]} sequences, '
            f'{summary["classes_seen"]}/{summary["num_classes"]} classes '
            f'seen, beta={summary["beta"]:.4g}, mean within-class '
            f'sq. distance={summary["mean_sq_dist"]:.4g}, mean Q(y|y)='
            f'{summary["q_diagonal"]:.3f} (from {source})')


__all__ = ['ClassStatisticsAccumulator', 'soft_labels_from_samples',
           'describe']

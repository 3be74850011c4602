"""Per-layer class statistics used by the IB step (DESIGN sections 2 and 4).

Persistent buffers, so they travel in every checkpoint:

* ``centroids`` (K, D): class centroids of the prior-merged token mean;
* ``log_q`` (K, K): ``log Q(a | y)``, smoothed, never ``-inf``;
* ``input_centroids`` (K, D_in): class centroids of the input-token mean
  (only needed to *measure* the IB loss, not to merge);
* ``beta``: inverse temperature of ``phi``;
* ``valid``: whether the statistics were ever collected.

Loading statistics of another shape (e.g. K=1000 into a model built for
K=10) raises a ValueError naming both shapes instead of being skipped.
"""
import math

import torch
from torch import nn

STATISTIC_NAMES = ('centroids', 'log_q', 'input_centroids', 'beta', 'valid')


class ClassStatistics(nn.Module):
    """Class-statistics buffers of one LTM layer (no parameters).

    Args:
        num_classes (int): K, classes of the pre-training data set.
        dim (int): D, width of the merged tokens.
        input_dim (int): D_in, width of the layer's input tokens.
    """

    def __init__(self, num_classes: int = 1000, dim: int = 0,
                 input_dim: int = 0):
        super().__init__()
        if num_classes < 1 or dim < 1 or input_dim < 1:
            raise ValueError(f'num_classes, dim and input_dim must be >= 1, '
                             f'got {num_classes}, {dim}, {input_dim}')
        # not `num_classes`: mmdet's NumClassCheckHook compares every
        # module's `num_classes` with the detection data set's classes
        self.num_pretrain_classes = num_classes
        self.register_buffer('centroids', torch.zeros(num_classes, dim))
        self.register_buffer(
            'log_q',
            torch.full((num_classes, num_classes), -math.log(num_classes)))
        self.register_buffer('input_centroids',
                             torch.zeros(num_classes, input_dim))
        self.register_buffer('beta', torch.tensor(1.0))
        self.register_buffer('valid', torch.tensor(False))

    def is_valid(self) -> bool:
        return bool(self.valid)

    @torch.no_grad()
    def update(self, centroids: torch.Tensor, log_q: torch.Tensor,
               input_centroids: torch.Tensor, beta) -> None:
        """Write new statistics (shapes checked, values must be finite)."""
        new = dict(centroids=centroids, log_q=log_q,
                   input_centroids=input_centroids,
                   beta=torch.as_tensor(beta, dtype=self.beta.dtype))
        for name, value in new.items():
            current = getattr(self, name)
            if value.shape != current.shape:
                raise ValueError(
                    f'{name}: new statistics have shape {tuple(value.shape)} '
                    f'but this layer holds {tuple(current.shape)}')
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f'{name}: statistics must be finite')
        for name, value in new.items():
            getattr(self, name).copy_(value)
        self.valid.fill_(True)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in ('centroids', 'log_q', 'input_centroids'):
            key = prefix + name
            if key not in state_dict:
                continue
            loaded, own = state_dict[key].shape, getattr(self, name).shape
            if loaded != own:
                raise ValueError(
                    f'{key}: the checkpoint holds class statistics of shape '
                    f'{tuple(loaded)} but the model is built for '
                    f'{tuple(own)} '
                    f'(num_classes={self.num_pretrain_classes}). Build '
                    f'the backbone with num_classes={loaded[0]} to use these '
                    f'statistics, or drop the statistics keys to start '
                    f'without them.')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_pretrain_classes}, '
                f'dim={self.centroids.shape[1]}, '
                f'input_dim={self.input_centroids.shape[1]}')

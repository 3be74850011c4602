"""Argument checks shared by the backbones (OpenMMLab contract)."""
from typing import Sequence, Tuple, Union

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def normalize_out_indices(out_indices: Union[int, Sequence[int]],
                          num_stages: int) -> Tuple[int, ...]:
    """Sorted, non-negative, unique stage indices; ValueError otherwise."""
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    if not isinstance(out_indices, (list, tuple)) or not out_indices:
        raise ValueError(f'out_indices must be an int or a non-empty '
                         f'sequence of ints, got {out_indices!r}')
    normalized = []
    for index in out_indices:
        if not isinstance(index, int) or not -num_stages <= index < \
                num_stages:
            raise ValueError(f'out_indices entry {index!r} is out of range '
                             f'for {num_stages} stages (valid: '
                             f'{-num_stages}..{num_stages - 1})')
        normalized.append(index % num_stages)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f'out_indices {out_indices!r} repeats a stage')
    return tuple(sorted(normalized))


def check_frozen_stages(frozen_stages: int, num_stages: int) -> int:
    if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= \
            num_stages:
        raise ValueError(f'frozen_stages must be an int in [-1, '
                         f'{num_stages}], got {frozen_stages!r}')
    return frozen_stages


def batchnorms_to_eval(module: nn.Module) -> None:
    """``norm_eval``: put every BatchNorm of ``module`` in eval mode."""
    for child in module.modules():
        if isinstance(child, _BatchNorm):
            child.eval()

"""timm ``efficientvit_b0..b3`` state dicts -> :class:`EfficientViT` keys.

:class:`~ltm_mm.models.backbones.EfficientViT` keeps the authors' (and
timm's) parameter names, so the mapping is the identity on ``stem.*`` and
``stages.*``; timm's classifier (``head.*``) is dropped.  The arch is read
from the stem width, and the result is checked key by key and shape by
shape against that arch, so a wrong or damaged file fails here rather than
loading partially (mmengine's ``Pretrained`` init loads with
``strict=False``).
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from .efficientvit import EfficientViT

#: Keys under these prefixes are timm's classifier; the backbone has none.
DROPPED_PREFIXES = ('head.', )


class ConversionError(ValueError):
    """The state dict does not fit the EfficientViT key layout."""


def unwrap_state_dict(obj) -> Mapping[str, torch.Tensor]:
    """The state dict inside a loaded file: itself, or its ``state_dict``
    or ``model`` entry (mmengine / timm training checkpoints)."""
    for key in ('state_dict', 'model'):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            return obj[key]
    if isinstance(obj, Mapping) and all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise ConversionError(
        'expected a state dict (name -> tensor) or a dict holding one under '
        f"'state_dict' or 'model'; got {type(obj).__name__} with keys "
        f'{sorted(obj)[:10] if isinstance(obj, Mapping) else "n/a"}')


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> str:
    """'b0'..'b3' from the width of ``stem.in_conv.conv.weight``."""
    key = 'stem.in_conv.conv.weight'
    if key not in state_dict:
        raise ConversionError(f'no {key!r} in the state dict: not a timm '
                              f'EfficientViT-B checkpoint (first keys: '
                              f'{list(state_dict)[:5]})')
    width = state_dict[key].shape[0]
    for arch, settings in EfficientViT.arch_settings.items():
        if settings['widths'][0] == width:
            return arch
    raise ConversionError(f'stem width {width} matches no EfficientViT arch '
                          f'({sorted(EfficientViT.arch_settings)})')


def _expected_shapes(arch: str) -> Dict[str, torch.Size]:
    with torch.device('meta'):  # shapes only, no memory, no init
        model = EfficientViT(arch, init_cfg=None)
    return {k: v.shape for k, v in model.state_dict().items()}


def convert_timm_efficientvit(
        state_dict: Mapping[str, torch.Tensor],
        arch: Optional[str] = None,
        prefix: str = 'backbone.') -> Tuple['OrderedDict', List[str], str]:
    """Map a timm ``efficientvit_b*`` state dict onto our keys.

    Args:
        state_dict: timm's state dict (``model.state_dict()``).
        arch: 'b0'..'b3'; inferred from the stem width when None.
        prefix: put before every key; ``'backbone.'`` matches
            ``init_cfg=dict(type='Pretrained', prefix='backbone.')``.

    Returns:
        (converted state dict, dropped timm keys, arch).

    Raises:
        ConversionError: naming every unexpected key, missing key or shape
            mismatch.
    """
    arch = arch or infer_arch(state_dict)
    if arch not in EfficientViT.arch_settings:
        raise ConversionError(f'unknown arch {arch!r}; choose from '
                              f'{sorted(EfficientViT.arch_settings)}')
    dropped = sorted(k for k in state_dict
                     if k.startswith(DROPPED_PREFIXES))
    kept = {k: v for k, v in state_dict.items() if k not in dropped}
    expected = _expected_shapes(arch)
    problems = []
    unexpected = sorted(set(kept) - set(expected))
    if unexpected:
        problems.append(f'unexpected keys (no place in EfficientViT-{arch}): '
                        f'{unexpected}')
    missing = sorted(set(expected) - set(kept))
    if missing:
        problems.append(f'missing keys for EfficientViT-{arch}: {missing}')
    mismatched = [
        f'{k}: {tuple(kept[k].shape)} vs {tuple(expected[k])}'
        for k in sorted(set(kept) & set(expected))
        if kept[k].shape != expected[k]
    ]
    if mismatched:
        problems.append(f'shape mismatches (checkpoint vs EfficientViT-'
                        f'{arch}): {mismatched}')
    if problems:
        raise ConversionError('; '.join(problems))
    converted = OrderedDict(
        (prefix + k, kept[k].detach().clone()) for k in expected)
    return converted, dropped, arch

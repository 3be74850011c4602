"""The one way to find a model's merging layers (any merger, or the LTM
mask modules only)."""
from typing import List, Optional, Sequence, Tuple, Type

from mmengine.model import is_model_wrapper
from torch import nn

from .merge_mask import LearnableMergeMask
from .mergers import MERGERS


def find_mergers(model: nn.Module,
                 kinds: Optional[Sequence[Type[nn.Module]]] = None
                 ) -> List[Tuple[str, nn.Module]]:
    """``(name, module)`` of every merging layer of ``model`` in network
    order (a DDP or other model wrapper is unwrapped).

    Args:
        kinds: the merger classes to keep; every merger of
            :data:`~.mergers.MERGERS` when None.
    """
    if is_model_wrapper(model):
        model = model.module
    kinds = tuple(MERGERS.values()) if kinds is None else tuple(kinds)
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, kinds)]


def find_merge_masks(model: nn.Module) -> List[LearnableMergeMask]:
    """Mask modules of every LTM layer of ``model``, in network order.  Each
    one's statistics learn their layer's name, which their warnings and the
    hook's log lines use.  Baseline mergers (``pool``, ``tome``) have
    none."""
    masks = []
    for name, mask in find_mergers(model, [LearnableMergeMask]):
        mask.statistics.layer_name = name
        masks.append(mask)
    return masks


def baseline_merger_names(model: nn.Module) -> List[str]:
    """Names of the modules of ``model`` that merge without learning
    (``pool``, ``tome``): those have no class statistics."""
    baselines = [cls for name, cls in MERGERS.items() if name != 'ltm']
    return [name for name, _ in find_mergers(model, baselines)]


def refuse_baseline_mergers(model: nn.Module, user: str) -> None:
    """Raise if ``model`` merges with a baseline merger: ``user`` (a hook or
    tool) needs LTM mask modules and their class statistics."""
    baselines = [cls for name, cls in MERGERS.items() if name != 'ltm']
    found = find_mergers(model, baselines)
    if found:
        kinds = sorted({type(module).__name__ for _, module in found})
        raise ValueError(
            f'{user} works on LTM layers and their class statistics, which '
            f"only merger='ltm' has; this model merges with {kinds} "
            f'({len(found)} layers, e.g. {found[0][0]}). Use it with an LTM '
            f'model, or leave it out for the pool/tome baselines.')

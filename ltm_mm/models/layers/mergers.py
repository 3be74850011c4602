"""Choosing how a layer's merge ``G`` is made: the backbones' ``merger``.

Every merger shares the merged grid ``(ceil(h sqrt r), ceil(w sqrt r))``,
the per-layer ``merge_ratios``, ``restore_resolution`` and the unmerge, so
that the only difference is how ``G`` is chosen:

* ``ltm``: the learned mask with the IB step
  (:class:`~ltm_mm.models.layers.LearnableMergeMask`, the default);
* ``pool``: fixed area downsampling, no parameters
  (:class:`~ltm_mm.models.layers.pool_merger.AreaPoolMerger`);
* ``tome``: ToMe's bipartite soft matching on the attention keys, no
  parameters (:class:`~ltm_mm.models.layers.tome_merger.ToMeMerger`); its
  merged tokens are a set, so it needs ``restore_resolution=True``.

Each is a :class:`~.merger_contract.Merger` whose plans are
:class:`~.merger_contract.MergerPlan`s; :mod:`.mask_finder` finds them in a
model.
"""
from torch import nn

from .merge_mask import LearnableMergeMask
from .pool_merger import AreaPoolMerger
from .tome_merger import ToMeMerger

#: merger name -> module class of one merging layer
MERGERS = {'ltm': LearnableMergeMask, 'pool': AreaPoolMerger,
           'tome': ToMeMerger}


def check_merger(merger: str, restore_resolution: bool = True,
                 train_merging_only: bool = False) -> str:
    """Return ``merger`` after checking it exists and fits the options.

    Raises:
        ValueError: an unknown name (the valid ones are listed), ``tome``
            without ``restore_resolution``, or ``train_merging_only`` with a
            merger that has nothing to train.
    """
    if merger not in MERGERS:
        raise ValueError(f'unknown merger {merger!r}; choose from '
                         f'{sorted(MERGERS)}')
    if merger == 'tome' and not restore_resolution:
        raise ValueError(
            "merger='tome' needs restore_resolution=True: ToMe's merged "
            'tokens are a set without a grid, so the merged map cannot flow '
            "on into the next convolutions; use merger='ltm' or 'pool' for "
            'restore_resolution=False')
    if merger != 'ltm' and train_merging_only:
        raise ValueError(
            f'train_merging_only trains only the LTM mask modules, but '
            f'merger={merger!r} has no parameters; use merger=\'ltm\' or '
            f'train_merging_only=False')
    return merger


def build_merger(merger: str, dim: int, ratio: float, window_size: int = 3,
                 num_classes: int = 1000) -> nn.Module:
    """The merging module of one layer with ``dim`` channels at ``ratio``."""
    check_merger(merger)
    if merger == 'ltm':
        return LearnableMergeMask(dim, ratio, window_size, num_classes)
    return MERGERS[merger](ratio)

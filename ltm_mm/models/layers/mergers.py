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

Building a merger leaves the global random generator where it was
(:func:`build_merger`): a model with ``ltm`` layers draws every other
initial weight, its detection or segmentation head included, exactly as
the same model with ``pool``, ``tome`` or no merging does under the same
seed, so that seeded comparisons differ in the merger alone.
"""
import hashlib

import torch
from torch import nn

from .merge_mask import LearnableMergeMask
from .pool_merger import AreaPoolMerger
from .tome_merger import ToMeMerger

#: merger name -> module class of one merging layer
MERGERS = {'ltm': LearnableMergeMask, 'pool': AreaPoolMerger,
           'tome': ToMeMerger}


def check_merger(merger: str, restore_resolution: bool = True,
                 train_merging_only: bool = False,
                 detach_score_inputs: bool = False) -> str:
    """Return ``merger`` after checking it exists and fits the options.

    Raises:
        ValueError: an unknown name (the valid ones are listed), ``tome``
            without ``restore_resolution``, or ``train_merging_only`` or
            ``detach_score_inputs`` with a merger that has no IB step.
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
    if merger != 'ltm' and detach_score_inputs:
        raise ValueError(
            f'detach_score_inputs detaches the inputs of the LTM IB step\'s '
            f'scores, but merger={merger!r} has no IB step; use '
            f"merger='ltm' or detach_score_inputs=False")
    return merger


def independent_seed(index: int = 0) -> int:
    """A seed derived from the global CPU generator's state and ``index``,
    without advancing the generator: the same under the same seed, and
    different for different ``index``es built from one state."""
    state = torch.random.get_rng_state().numpy().tobytes()
    digest = hashlib.blake2b(state + index.to_bytes(8, 'little'),
                             digest_size=8).digest()
    return int.from_bytes(digest, 'little') >> 1  # manual_seed takes < 2**63


def build_merger(merger: str, dim: int, ratio: float, window_size: int = 3,
                 num_classes: int = 1000, index: int = 0) -> nn.Module:
    """The merging module of one layer with ``dim`` channels at ``ratio``.

    ``ltm``'s mask parameters are drawn from a stream of their own, seeded
    by :func:`independent_seed` of ``index`` (the layer's place in its
    block); the global generator is left untouched.
    """
    check_merger(merger)
    if merger != 'ltm':
        return MERGERS[merger](ratio)
    with torch.random.fork_rng(devices=[]):
        # the CPU generator only (torch.manual_seed would reseed CUDA's too,
        # which fork_rng(devices=[]) does not restore); modules are built on
        # the CPU
        torch.random.default_generator.manual_seed(independent_seed(index))
        return LearnableMergeMask(dim, ratio, window_size, num_classes)

"""One round of class-statistics collection over a model's LTM layers.

Used by :class:`~ltm_mm.hooks.LTMStatisticsHook` (one round per training
epoch) and by ``tools/collect_statistics.py`` (rounds over a data set with
a pre-trained model, no training).  A round switches every mask module to
recording, adds each forward's records with that batch's labels, and at the
end all-reduces the sums across ranks and writes the statistics into the
modules' buffers.
"""
from typing import Callable, List, Optional, Sequence

import torch

from .accumulator import ClassStatisticsAccumulator, describe


class StatisticsRound:
    """Collect statistics for ``masks`` over the forwards that follow.

    Args:
        masks: the :class:`~ltm_mm.models.layers.LearnableMergeMask`
            modules of a model.
        num_classes (int): K of their statistics.
        smoothing (float): Laplace pseudo-count of ``Q(a | y)``.
        merging (bool): whether the layers merge during the round (False in
            warm-up epochs).
    """

    def __init__(self, masks: Sequence, num_classes: int, smoothing: float,
                 merging: bool = True):
        self.masks = list(masks)
        for mask in self.masks:
            mask.merging_enabled = merging
            mask.recording = True
            mask.record = None
        self.accumulators = [
            ClassStatisticsAccumulator(
                num_classes, m.statistics.centroids.shape[1],
                m.statistics.input_centroids.shape[1], smoothing)
            for m in self.masks
        ]

    def add(self, labels: torch.Tensor) -> None:
        """Add the records of the forward just run; ``labels`` ``(B, K)``
        label weights of its ``B`` images."""
        for mask, accumulator in zip(self.masks, self.accumulators):
            record = mask.record
            if record is None:
                continue
            # S sequences per batch, consecutive per image: repeat labels
            group = record.merged_mean.shape[0] // labels.shape[0]
            accumulator.add(record.merged_mean, record.input_mean,
                            labels.repeat_interleave(group, dim=0),
                            record.phi, record.num_merged,
                            record.merging)
            mask.record = None

    def write(self, log: Optional[Callable[[str], None]] = None) -> List[dict]:
        """All-reduce the sums, write the statistics into every mask module
        and return each layer's summary (``log`` gets one line per layer)."""
        summaries = []
        for index, (mask, accumulator) in enumerate(
                zip(self.masks, self.accumulators)):
            accumulator.all_reduce()
            stats = accumulator.finalize()
            device = mask.statistics.centroids.device
            mask.statistics.update(
                stats['centroids'].to(device), stats['log_q'].to(device),
                stats['input_centroids'].to(device), stats['beta'],
                seen=stats['seen'].to(device),
                reference_num_merged=stats['reference_num_merged'],
                merged_at_collection=stats['merged_at_collection'])
            name = mask.statistics.layer_name or f'layer {index}'
            if log is not None:
                log(describe(name, stats['summary']))
            summaries.append(stats['summary'])
        return summaries

    def close(self) -> None:
        """Stop recording; every layer merges again."""
        for mask in self.masks:
            mask.recording = False
            mask.record = None
            mask.merging_enabled = True

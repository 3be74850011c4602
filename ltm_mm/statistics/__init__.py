from .accumulator import ClassStatisticsAccumulator, soft_labels_from_samples
from .collection import StatisticsRound

__all__ = [
    'ClassStatisticsAccumulator', 'soft_labels_from_samples',
    'StatisticsRound'
]

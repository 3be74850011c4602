from .accumulator import ClassStatisticsAccumulator, soft_labels_from_samples

__all__ = ['ClassStatisticsAccumulator', 'soft_labels_from_samples']

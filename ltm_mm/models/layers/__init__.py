from .class_statistics import ClassStatistics
from .merge_mask import LearnableMergeMask
from .merge_plan import MergePlan

__all__ = ['ClassStatistics', 'LearnableMergeMask', 'MergePlan']

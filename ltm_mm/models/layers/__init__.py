from .applied_merge import applied_token_mean, record_applied_merge
from .class_statistics import ClassStatistics
from .efficientvit_blocks import (ConvLayer, DSConv, EfficientViTBlock, LiteMLA,
                                 MBConv, ResidualBlock)
from .mask_finder import find_merge_masks
from .merge_mask import LearnableMergeMask
from .merge_record import MergeRecord
from .merge_plan import MergePlan
from .mergers import (MERGERS, baseline_merger_names, build_merger,
                      check_merger, keeps_grid, refuse_baseline_mergers)
from .pool_merger import AreaPoolMerger, AreaPoolPlan
from .tome_merger import ToMeMerger, ToMePlan

__all__ = ['ClassStatistics', 'LearnableMergeMask', 'MergePlan', 'ConvLayer',
           'DSConv', 'MBConv', 'LiteMLA', 'ResidualBlock', 'EfficientViTBlock',
           'applied_token_mean', 'record_applied_merge', 'MERGERS',
           'build_merger', 'check_merger', 'keeps_grid',
           'baseline_merger_names', 'refuse_baseline_mergers',
           'AreaPoolMerger', 'AreaPoolPlan', 'ToMeMerger', 'ToMePlan',
           'find_merge_masks', 'MergeRecord']

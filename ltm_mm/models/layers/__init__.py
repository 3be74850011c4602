from .applied_merge import applied_token_mean, record_applied_merge
from .class_statistics import ClassStatistics
from .efficientvit_blocks import (ConvLayer, DSConv, EfficientViTBlock, LiteMLA,
                                 MBConv, ResidualBlock)
from .mask_finder import (baseline_merger_names, find_merge_masks,
                          find_mergers, refuse_baseline_mergers)
from .merge_mask import LearnableMergeMask
from .merge_record import MergeRecord
from .merge_plan import MergePlan
from .merged_branch import MapPlans, add_merged_branch
from .merger_contract import MergeInputs, Merger, MergerPlan
from .mergers import MERGERS, build_merger, check_merger
from .pool_merger import AreaPoolMerger, AreaPoolPlan
from .tome_merger import ToMeMerger, ToMePlan

__all__ = ['ClassStatistics', 'LearnableMergeMask', 'MergePlan', 'ConvLayer',
           'DSConv', 'MBConv', 'LiteMLA', 'ResidualBlock', 'EfficientViTBlock',
           'applied_token_mean', 'record_applied_merge', 'MERGERS',
           'build_merger', 'check_merger', 'find_mergers', 'MergeInputs',
           'Merger', 'MergerPlan', 'MapPlans', 'add_merged_branch',
           'baseline_merger_names', 'refuse_baseline_mergers',
           'AreaPoolMerger', 'AreaPoolPlan', 'ToMeMerger', 'ToMePlan',
           'find_merge_masks', 'MergeRecord']

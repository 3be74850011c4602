from .applied_merge import applied_token_mean, record_applied_merge
from .class_statistics import ClassStatistics
from .efficientvit_blocks import (ConvLayer, DSConv, EfficientViTBlock, LiteMLA,
                                 MBConv, ResidualBlock)
from .merge_mask import LearnableMergeMask
from .merge_plan import MergePlan

__all__ = ['ClassStatistics', 'LearnableMergeMask', 'MergePlan', 'ConvLayer',
           'DSConv', 'MBConv', 'LiteMLA', 'ResidualBlock', 'EfficientViTBlock',
           'applied_token_mean', 'record_applied_merge']

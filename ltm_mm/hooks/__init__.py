from .ddp_check import watch_idle_mask_parameters
from .ltm_statistics_hook import LTMStatisticsHook

__all__ = ['LTMStatisticsHook', 'watch_idle_mask_parameters']

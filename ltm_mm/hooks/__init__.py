from .ltm_statistics_hook import LTMStatisticsHook

__all__ = ['LTMStatisticsHook']

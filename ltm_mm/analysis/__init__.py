"""Analysis: IB estimates, FLOPs and latency."""
from .flops import (Complexity, config_complexity, count_complexity,
                    load_config_model)
from .latency import (LatencyStats, RatioStats, compare_latency,
                      paired_ratio, time_alternating)

__all__ = [
    'Complexity', 'count_complexity', 'config_complexity',
    'load_config_model', 'LatencyStats', 'RatioStats', 'compare_latency',
    'paired_ratio', 'time_alternating'
]

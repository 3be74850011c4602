"""Pure tensor functions of Learnable Token Merging (no modules, no state)."""
from .area_pool import area_pool_tokens, area_unpool_tokens, area_weights
from .bipartite_matching import (bipartite_soft_matching,
                                 merge_by_assignment, unmerge_by_assignment)
from .grid import check_ratio, merge_grids, merged_grid_size
from .information_bottleneck import (check_statistics_shapes, ib_bound,
                                     ib_step)
from .merge import merge_tokens, unmerge_cover_weights, unmerge_tokens
from .windows import WindowTable, build_window_table, window_table

__all__ = [
    'check_ratio', 'merge_grids', 'merged_grid_size', 'WindowTable',
    'window_table', 'build_window_table',
    'merge_tokens', 'unmerge_tokens', 'unmerge_cover_weights', 'ib_step',
    'ib_bound',
    'check_statistics_shapes', 'area_weights', 'area_pool_tokens',
    'area_unpool_tokens', 'bipartite_soft_matching', 'merge_by_assignment',
    'unmerge_by_assignment'
]

"""Merge weights of one LTM layer over its source grid (paper Fig. 4)."""
from typing import List

import torch
import torch.nn.functional as F

from ltm_mm.models.layers import (MergePlan, find_merge_masks,
                                  refuse_baseline_mergers)


@torch.no_grad()
def capture_plans(model, inputs: torch.Tensor) -> List[MergePlan]:
    """Run ``model(inputs)`` and return the merge plan of every LTM layer
    that merged, in network order (forward hooks on the mask modules)."""
    refuse_baseline_mergers(model, 'the merge-weight visualisation')
    plans = []
    masks = find_merge_masks(model)
    if not masks:
        raise ValueError('the model has no LTM layer to visualise')
    handles = [m.register_forward_hook(
        lambda module, args, output: plans.append(output)
        if output is not None else None) for m in masks]
    try:
        model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return plans


def target_heatmaps(plan: MergePlan, targets: List[int],
                    sequence: int = 0) -> torch.Tensor:
    """``(T, h, w)`` weights ``G[:, p]`` of each target ``p`` over the
    source grid of sequence ``sequence``."""
    num_merged = plan.weights.shape[1]
    bad = [t for t in targets if not 0 <= t < num_merged]
    if bad:
        raise ValueError(f'target tokens {bad} are outside this layer\'s '
                         f'{num_merged} merged tokens')
    dense = plan.dense()[sequence]  # (N, P)
    height, width = plan.source_hw
    return dense[:, targets].t().reshape(len(targets), height, width)


def target_positions(plan: MergePlan, targets: List[int]) -> List[tuple]:
    """Centre of each target token in source-grid coordinates (y, x)."""
    merged_h, merged_w = plan.merged_hw
    height, width = plan.source_hw
    return [((t // merged_w + 0.5) * height / merged_h - 0.5,
             (t % merged_w + 0.5) * width / merged_w - 0.5) for t in targets]


def upsample(heatmaps: torch.Tensor, size) -> torch.Tensor:
    """``(T, h, w) -> (T, H, W)``, nearest, for overlaying on an image."""
    return F.interpolate(heatmaps[:, None].float(), size=size,
                         mode='nearest')[:, 0]

"""A backbone's merging blocks timed on their real inputs, part by part.

:func:`merging_blocks` lists the blocks of an LTM backbone that can merge
and :func:`capture_inputs` records what each receives in a forward, so a
block can be timed alone on its input.  :func:`part_calls` splits an
LTM-EfficientViT block (restore mode) into the calls of :data:`PARTS`
(context module, mask module, merge, MBConv on the full and the merged
grid, unmerge, and the plain and LTM blocks whole) and :func:`best_ms`
times calls alternately, keeping each one's least mean time.  The logic
behind ``benchmarks/merge_payoff.py`` and
``benchmarks/efficientvit_block_parts.py``.
"""
import time

import torch

from ltm_mm.models.backbones import LTMMobileViT
from ltm_mm.models.layers import MergeInputs
from ltm_mm.models.layers.token_maps import map_to_tokens, tokens_to_map

PARTS = ('plain block', 'LTM block', 'context', 'MBConv full',
         'MBConv merged', 'mask', 'context + mask', 'merge', 'unmerge')
#: columns of the table: the parts, with ``context + mask`` shown as the
#: mask module's time after the context module
COLUMNS = tuple('mask after context' if part == 'context + mask' else part
                for part in PARTS)


def merging_blocks(model):
    """``[(name, block, layers)]``: blocks that can merge, in order."""
    if isinstance(model, LTMMobileViT):
        return [(f'layers.{i}.1', layer[1], len(layer[1].merge_ratios))
                for i, layer in enumerate(model.layers)
                if len(layer) > 1 and hasattr(layer[1], 'merge_ratios')]
    return [(f'stages.{s}.blocks.{b}', block, 1)
            for s, stage in enumerate(model.stages)
            for b, block in enumerate(stage.blocks)
            if hasattr(block, 'merge_ratio')]


def capture_inputs(model, blocks, image):
    """``{name: input}`` of each of ``blocks`` (as :func:`merging_blocks`
    lists them) in one forward of ``model`` on ``image``."""
    inputs = {}
    handles = [block.register_forward_pre_hook(
        lambda module, args, name=name: inputs.__setitem__(name, args[0]))
        for name, block, _ in blocks]
    with torch.inference_mode():
        model(image)
    for handle in handles:
        handle.remove()
    return inputs


def best_ms(fns, reps: int, calls: int):
    """Per function, the least mean time (ms) of ``calls`` calls over
    ``reps`` rounds in which every function runs in turn."""
    best = [float('inf')] * len(fns)
    for _ in range(reps):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[index] = min(best[index],
                              (time.perf_counter() - start) / calls * 1e3)
    return best


def part_calls(block, x):
    """The calls of :data:`PARTS` for one LTM block (restore mode) and its
    input ``x`` (B, C, H, W); None when the grid is too small to merge."""
    z = block.context_module(x)  # (B, C, H, W)
    hw = tuple(z.shape[-2:])
    tokens = map_to_tokens(z)  # (B, N, C)
    inputs = MergeInputs(input_tokens=map_to_tokens(x))  # (B, N, C)
    plan = block.merge_mask(tokens, hw, inputs)
    if plan is None:
        return None
    # (B, P, C) -> (B, C, h', w')
    merged = tokens_to_map(plan.merge(tokens), plan.merged_hw)
    update = block.local_module.main(merged)  # (B, C, h', w')
    mbconv = block.local_module.main
    return [
        lambda: super(type(block), block).forward(x),
        lambda: block(x),
        lambda: block.context_module(x),
        lambda: mbconv(z),
        lambda: mbconv(merged),
        lambda: block.merge_mask(tokens, hw, inputs),
        lambda: block.merge_mask(map_to_tokens(block.context_module(x)), hw,
                                 inputs),
        lambda: plan.merge(tokens),
        # (B, C, h', w') -> (B, P, C) -> (B, N, C) -> (B, C, H, W)
        lambda: tokens_to_map(plan.unmerge(map_to_tokens(update)), hw),
    ]

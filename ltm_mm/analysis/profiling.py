"""Helpers for profiling an LTM model's forward.

:func:`label_modules` puts a ``## ClassName`` profiler range around the
forwards of the LTM and transformer modules (:data:`LABELLED`), so the
profiler's table says which module an operator ran in;
:func:`merge_primitive` swaps the primitive that merge and unmerge use
(:mod:`ltm_mm.ops.merge`) for as long as it is entered, so the primitives
can be profiled against each other.  Used by ``benchmarks/gpu_profile.py``.
"""
import contextlib

import torch
from torch.profiler import record_function

import ltm_mm.ops.merge as merge_ops

#: modules whose eager forwards get a profiler range of their class name
LABELLED = ('LearnableMergeMask', 'LTMMobileVitBlock', 'MobileVitBlock',
            'LTMEfficientViTBlock', 'EfficientViTBlock',
            'TransformerEncoderLayer', 'MBConv', 'LiteMLA')


def label_modules(model: torch.nn.Module) -> None:
    """A ``## ClassName`` profiler range around every labelled module's
    forward (eager only: dynamo does not trace ranges opened in one hook
    and closed in another)."""
    for module in model.modules():
        kind = type(module).__name__
        if kind not in LABELLED:
            continue
        ranges = []

        def enter(mod, args, kind=kind, ranges=ranges):
            ranges.append(record_function(f'## {kind}'))
            ranges[-1].__enter__()

        def leave(mod, args, out, ranges=ranges):
            ranges.pop().__exit__(None, None, None)

        module.register_forward_pre_hook(enter)
        module.register_forward_hook(leave)


@contextlib.contextmanager
def merge_primitive(name: str):
    """Within it, merge and unmerge use ``name``: 'auto', the module's own
    choice; 'embedding_bag', ``F.embedding_bag`` everywhere;
    'inlined_gather', the traced GPU gather without ``computed_once`` (as
    first measured, with its inputs inlined into it)."""
    saved = (merge_ops._weighted_row_sum, merge_ops.computed_once)
    if name == 'embedding_bag':
        merge_ops._weighted_row_sum = merge_ops.bagged_row_sum
    elif name == 'inlined_gather':
        merge_ops.computed_once = lambda tensor: tensor
    try:
        yield
    finally:
        merge_ops._weighted_row_sum, merge_ops.computed_once = saved

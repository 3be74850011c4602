"""Timing compiled models without silently timing eager ones.

``torch.compile`` keeps the graphs it built per code object, and a model's
``forward`` code is shared by every instance of its class.  Once a code
object holds ``torch._dynamo.config.recompile_limit`` graphs (8), dynamo
warns once and runs every later call of it **eagerly**: a benchmark that
compiles model after model in one process (several configs, batch sizes,
precisions) then times eager code under a "compiled" label.  Seen on a
GPU: after two compiled steps of ``benchmarks/gpu_targets.py``, the third
step's kernel counts equalled the eager ones.

:func:`fresh_compilation` forgets earlier graphs; :func:`strict_compilation`
turns the silent fallback into an error.

:func:`frozen_weights` compiles inference graphs with the model's
parameters and buffers as constants (inductor's ``freezing``): what depends
on them alone (an LTM layer's prepared class statistics, window priors and
score projection) is computed once, at compile time, instead of in every
forward.  Eager eval forwards keep the same values as inference constants
(``ltm_mm/models/layers/inference_constants.py``), which a traced forward
does not read.
"""
import contextlib

import torch


def fresh_compilation() -> None:
    """Forget every graph compiled so far in this process, so the next
    compiled model starts with the whole recompile budget."""
    torch._dynamo.reset()


@contextlib.contextmanager
def strict_compilation():
    """Within it, a compiled call that would fall back to eager because
    the recompile limit is reached raises instead
    (``torch._dynamo.config.fail_on_recompile_limit_hit``)."""
    config = torch._dynamo.config
    if not hasattr(config, 'fail_on_recompile_limit_hit'):
        raise RuntimeError(
            f'torch {torch.__version__} has no '
            f'torch._dynamo.config.fail_on_recompile_limit_hit: cannot '
            f'guarantee that compiled timings are not eager; use a newer '
            f'torch')
    with config.patch(fail_on_recompile_limit_hit=True):
        yield


@contextlib.contextmanager
def frozen_weights():
    """Within it, inductor compiles inference graphs (no autograd) with
    parameters and buffers folded in as constants
    (``torch._inductor.config.freezing``).

    Compilation happens at a compiled model's first call, so that call must
    be made within.  The graphs keep the values of that moment: weights or
    class statistics changed later are not seen by them (compile again,
    e.g. after :func:`fresh_compilation`).
    """
    from torch._inductor import config
    with config.patch(freezing=True):
        yield

"""Compiled timings are never eager ones (ltm_mm/analysis/compiled.py)."""
import contextlib
import re

import pytest
import torch
import torch._dynamo

from ltm_mm.analysis import config_benchmark
from ltm_mm.analysis.compiled import (fresh_compilation, frozen_weights,
                                      strict_compilation)
from ltm_mm.analysis.config_benchmark import BenchmarkOptions
from cpu_compiler import NEEDS_CXX
from small_ltm_layer import DIM, merge_and_unmerge, small_ltm_layer


class CountingBackend:
    """A dynamo backend that counts the graphs it is given and runs them
    as traced (no code generation)."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


def _double(x):
    return x * 2


def test_past_the_recompile_limit_dynamo_runs_eager_unless_strict():
    backend = CountingBackend()
    compiled = torch.compile(_double, backend=backend, dynamic=False)
    fresh_compilation()
    with torch._dynamo.config.patch(recompile_limit=1):
        assert torch.equal(compiled(torch.ones(2)), torch.full((2, ), 2.))
        # a new shape needs a second graph: over the limit, it runs eager,
        # right but uncompiled
        assert torch.equal(compiled(torch.ones(3)), torch.full((3, ), 2.))
        assert backend.graphs == 1
        fresh_compilation()
        compiled(torch.ones(2))
        with strict_compilation(), pytest.raises(
                torch._dynamo.exc.FailOnRecompileLimitHit):
            compiled(torch.ones(4))
    assert backend.graphs == 2  # fresh_compilation: the budget again


def test_benchmark_fails_rather_than_time_eager_models(tiny_configs,
                                                      monkeypatch):
    """Both models share ``TensorForward.forward``: with a recompile limit
    of 1 the second one cannot compile.  The benchmark raises; without its
    check it would have timed the second model eagerly."""
    ltm, plain = tiny_configs(64)
    compile_ = torch.compile
    # trace only (no code generation): the limit is dynamo's, whatever
    # the backend
    monkeypatch.setattr(torch, 'compile',
                        lambda model, mode=None: compile_(model,
                                                          backend='eager'))
    options = BenchmarkOptions(str(ltm), str(plain), batch_sizes=(1, ),
                               iters=1, warmup=0, threads=1,
                               compile='default')
    fresh_compilation()
    with torch._dynamo.config.patch(recompile_limit=1):
        with pytest.raises(torch._dynamo.exc.FailOnRecompileLimitHit):
            config_benchmark.benchmark_configs(options)
        # the check is what raises: without it the run "succeeds"
        fresh_compilation()
        monkeypatch.setattr(config_benchmark, 'strict_compilation',
                            contextlib.nullcontext)
        assert set(config_benchmark.benchmark_configs(options)) == {1}
    fresh_compilation()


def _launches(code: str) -> list:
    """Kernels and library calls of inductor's generated ``call``."""
    body = code[code.index('def call('):]
    return re.findall(
        r'^\s+(?:buf\w+ = )?(cpp_fused_\w+|extern_kernels\.\w+|'
        r'torch\.ops\.[\w.]+)\(', body, re.M)


@NEEDS_CXX
def test_frozen_weights_compute_what_depends_on_them_once():
    """Compiled with frozen weights, an LTM layer's forward no longer
    prepares its class statistics (centring, logit weights) and window
    priors: fewer launches, same values."""
    from torch._inductor.utils import run_and_get_code
    mask = small_ltm_layer()
    tokens = torch.randn(2, 400, DIM)
    launches = {}
    with torch.inference_mode():
        eager = merge_and_unmerge(mask, tokens)
        for frozen in (False, True):
            fresh_compilation()
            freezing = frozen_weights() if frozen else contextlib.nullcontext()
            with freezing:
                out, code = run_and_get_code(
                    torch.compile(merge_and_unmerge), mask, tokens)
            torch.testing.assert_close(out, eager)
            launches[frozen] = _launches('\n'.join(code))
    fresh_compilation()
    # the statistics' centre, the mean of the centroids, is one of them
    assert any('sum' in name for name in launches[False]), launches[False]
    assert len(launches[True]) < len(launches[False]), launches


def test_benchmark_compiles_with_frozen_weights(tiny_configs, monkeypatch):
    """``freeze``: the models compile (at their first call) with
    inductor's freezing on, and only with ``compile``."""
    from torch._inductor import config
    ltm, plain = tiny_configs(64)
    common = dict(batch_sizes=(1, ), iters=1, warmup=0, threads=1)
    refused = BenchmarkOptions(str(ltm), str(plain), freeze=True, **common)
    assert refused.problems() == [
        '--freeze folds weights into compiled graphs: it needs --compile']
    seen = []
    compile_ = torch.compile

    class Recorded(torch.nn.Module):
        """A compiled model that notes the freezing setting of each call."""

        def __init__(self, model):
            super().__init__()
            self.compiled = compile_(model, backend='eager')

        def forward(self, *args, **kwargs):
            seen.append(config.freezing)
            return self.compiled(*args, **kwargs)

    def recording_compile(model, mode=None):
        return Recorded(model)

    monkeypatch.setattr(torch, 'compile', recording_compile)
    fresh_compilation()
    assert not config.freezing
    config_benchmark.benchmark_configs(BenchmarkOptions(
        str(ltm), str(plain), compile='default', freeze=True, **common))
    assert seen and set(seen) == {True}
    assert not config.freezing  # left as it was
    fresh_compilation()

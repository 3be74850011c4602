"""Compiled timings are never eager ones (ltm_mm/analysis/compiled.py)."""
import contextlib

import pytest
import torch
import torch._dynamo

from ltm_mm.analysis.compiled import fresh_compilation, strict_compilation
from project_scripts import load_script


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


def test_benchmark_tool_fails_rather_than_time_eager_models(
        tiny_configs, monkeypatch):
    """Both models share ``TensorForward.forward``: with a recompile limit
    of 1 the second one cannot compile.  The tool raises; without its check
    it would have timed the second model eagerly."""
    tool = load_script('tools/benchmark.py')
    ltm, plain = tiny_configs(64)
    compile_ = torch.compile
    # trace only (no code generation): the limit is dynamo's, whatever
    # the backend
    monkeypatch.setattr(torch, 'compile',
                        lambda model, mode=None: compile_(model,
                                                          backend='eager'))
    args = tool.parse_args([str(ltm), '--compare', str(plain),
                            '--batch-sizes', '1', '--iters', '1',
                            '--warmup', '0', '--threads', '1',
                            '--compile', 'default'])
    fresh_compilation()
    with torch._dynamo.config.patch(recompile_limit=1):
        with pytest.raises(torch._dynamo.exc.FailOnRecompileLimitHit):
            tool.run(args)
        # the check is what raises: without it the run "succeeds"
        fresh_compilation()
        monkeypatch.setattr(tool, 'strict_compilation',
                            contextlib.nullcontext)
        assert set(tool.run(args)) == {1}
    fresh_compilation()

"""Alternating latency measurement and tools/benchmark.py."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ltm_mm.analysis.latency import (LatencyStats, compare_latency,
                                     paired_ratio, summarize,
                                     time_alternating)
from ltm_mm.engine.cpu_memory import uses_glibc

ROOT = Path(__file__).resolve().parents[2]


def test_calls_alternate_after_the_warmup():
    calls = []
    fns = [lambda: calls.append('A'), lambda: calls.append('B')]
    times = time_alternating(fns, iters=3, warmup=2)
    assert calls == ['A', 'B'] * 5
    assert [len(t) for t in times] == [3, 3]
    assert all(t >= 0 for record in times for t in record)


@pytest.mark.parametrize('iters, warmup', [(0, 1), (1, -1)])
def test_bad_counts_are_rejected(iters, warmup):
    with pytest.raises(ValueError, match='iters >= 1'):
        time_alternating([lambda: None], iters=iters, warmup=warmup)
    with pytest.raises(ValueError, match='at least one'):
        time_alternating([])


def test_summary_of_known_times():
    stats = summarize([0.005, 0.001, 0.003, 0.002, 0.004], batch_size=8)
    assert stats == LatencyStats(batch_size=8, median_ms=pytest.approx(3.0),
                                 iqr_ms=pytest.approx(2.0),
                                 q1_ms=pytest.approx(2.0),
                                 q3_ms=pytest.approx(4.0),
                                 throughput=pytest.approx(8 / 0.003),
                                 iters=5)
    single = summarize([0.01], batch_size=1)
    assert single.iqr_ms == 0 and single.median_ms == pytest.approx(10.0)


def test_paired_ratio_is_taken_round_by_round():
    """A is 0.8 of B in every round but one; a burst of load slows rounds
    3-5, starting during A's call of round 3.  The medians' ratio then
    compares a slow A with a fast B; the per-round ratios do not."""
    first = summarize([0.008, 0.008, 0.024, 0.024, 0.024], batch_size=1)
    second = summarize([0.010, 0.010, 0.010, 0.030, 0.030], batch_size=1)
    assert first.median_ms / second.median_ms == pytest.approx(2.4)
    ratio = paired_ratio(first, second)
    assert ratio.median == pytest.approx(0.8)
    assert (ratio.q1, ratio.q3, ratio.iqr) == pytest.approx((0.8, 0.8, 0.0))
    ratio = paired_ratio(summarize([0.004, 0.006, 0.005], 1),
                         summarize([0.005, 0.005, 0.005], 1))
    assert (ratio.q1, ratio.median, ratio.q3) == pytest.approx((0.9, 1.0, 1.1))


def test_paired_ratio_needs_the_same_rounds():
    with pytest.raises(ValueError, match='same rounds'):
        paired_ratio(summarize([0.01, 0.02], 1), summarize([0.01], 1))


class Recorder(torch.nn.Module):
    """A conv that remembers the inputs it saw and its mode."""

    def __init__(self, width):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 3, padding=1)
        self.seen = []

    def forward(self, x):
        self.seen.append((tuple(x.shape), float(x.sum()), self.training,
                          torch.is_inference_mode_enabled()))
        return self.conv(x)


def test_compare_latency_structure_and_inputs():
    models = [Recorder(4), Recorder(32)]
    results = compare_latency(models, (16, 12), batch_sizes=(1, 3), iters=4,
                              warmup=1)
    assert list(results) == [1, 3]
    for batch_size, stats in results.items():
        assert len(stats) == 2
        for item in stats:
            assert item.batch_size == batch_size and item.iters == 4
            values = (item.median_ms, item.throughput, item.q1_ms,
                      item.q3_ms)
            assert all(math.isfinite(v) and v > 0 for v in values)
            assert item.q1_ms <= item.median_ms <= item.q3_ms
            assert item.iqr_ms == pytest.approx(item.q3_ms - item.q1_ms)
            assert item.throughput == pytest.approx(
                batch_size * 1e3 / item.median_ms)
    # both models saw the same inputs, in eval and inference mode
    assert models[0].seen == models[1].seen
    assert len(models[0].seen) == 2 * (1 + 4)
    assert {s[0] for s in models[0].seen} == {(1, 3, 16, 12), (3, 3, 16, 12)}
    assert all(not s[2] and s[3] for s in models[0].seen)


def _run(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'benchmark.py'),
         *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_benchmark_tool_prints_both_models_and_the_ratio(tmp_path, tiny_configs):
    ltm, plain = tiny_configs(64)
    result = _run(ltm, '--compare', plain, '--batch-sizes', 1, 2,
                  '--iters', 3, '--warmup', 1, '--threads', 1)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith('device cpu, torch ')
    assert ('threads 1, amp off, compile off, statistics synthetic, '
            'layout NCHW, CPU memory system, warm-up 1, 3 timed') in lines[0]
    assert f'A = {ltm}' in lines and f'B = {plain}' in lines
    assert 'input 64x64' in result.stdout
    header = next(i for i, line in enumerate(lines)
                  if line.split()[:1] == ['batch'])
    assert lines[header].split()[-6:] == ['latency', 'A/B', 'paired', 'A/B',
                                          'kernels', 'A/B']
    rows = [line.split() for line in lines[header + 1:]]
    assert [int(row[0]) for row in rows] == [1, 2]
    for row in rows:
        # batch, A median, (A IQR), A img/s, B median, (B IQR), B img/s, A/B,
        # paired A/B, (its IQR), kernels
        a_ms, a_ips, b_ms, b_ips, ratio, paired = (
            float(row[i]) for i in (1, 3, 4, 6, 7, 8))
        assert all(v > 0 and math.isfinite(v)
                   for v in (a_ms, a_ips, b_ms, b_ips, ratio, paired))
        assert ratio == pytest.approx(a_ms / b_ms, rel=0.02)
        assert a_ips == pytest.approx(int(row[0]) * 1e3 / a_ms, rel=0.02)
        assert row[9].startswith('(') and float(row[9].strip('()')) >= 0
        # operators per forward: the LTM layers add some
        a_kernels, b_kernels = (int(v) for v in row[10].split('/'))
        assert a_kernels > b_kernels > 0


def _kernels(stdout: str) -> tuple:
    """``(A, B)`` operators per forward from the tool's single row."""
    row = stdout.splitlines()[-1].split()
    return tuple(int(v) for v in row[-1].split('/'))


def test_benchmark_tool_times_ltm_without_statistics(tmp_path, tiny_configs):
    """Without statistics the IB step and the mask MLP do not run: fewer
    operators per LTM forward, the plain model's unchanged."""
    ltm, plain = tiny_configs(64)
    common = (ltm, '--compare', plain, '--batch-sizes', 1, '--iters', 1,
              '--warmup', 0, '--threads', 1)
    with_statistics = _run(*common)
    without = _run(*common, '--no-statistics')
    assert without.returncode == 0, without.stderr[-3000:]
    assert 'statistics none' in without.stdout.splitlines()[0]
    ltm_with, plain_with = _kernels(with_statistics.stdout)
    ltm_without, plain_without = _kernels(without.stdout)
    assert plain_without == plain_with
    assert plain_with < ltm_without < ltm_with


def test_benchmark_tool_runs_under_autocast(tmp_path, tiny_configs):
    ltm, plain = tiny_configs(64)
    result = _run(ltm, '--compare', plain, '--batch-sizes', 1, '--iters', 1,
                  '--warmup', 0, '--threads', 1, '--amp', 'bf16')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'amp bf16' in result.stdout.splitlines()[0]


def test_benchmark_tool_runs_channels_last_reusing_memory(tmp_path,
                                                         tiny_configs):
    ltm, plain = tiny_configs(64)
    result = _run(ltm, '--compare', plain, '--batch-sizes', 2, '--iters', 1,
                  '--warmup', 0, '--threads', 1, '--channels-last',
                  '--reuse-freed-memory')
    assert result.returncode == 0, result.stderr[-3000:]
    memory = 'reuse freed' if uses_glibc() else 'system (not glibc'
    assert f'layout channels-last, CPU memory {memory}' in \
        result.stdout.splitlines()[0]
    ltm_kernels, plain_kernels = _kernels(result.stdout)
    assert ltm_kernels > plain_kernels > 0


def test_compare_latency_feeds_inputs_in_the_memory_format():
    seen = []

    class Probe(nn.Module):

        def forward(self, x):
            seen.append(x.is_contiguous(memory_format=torch.channels_last))
            return x

    compare_latency([Probe()], (8, 6), batch_sizes=(2, ), iters=1, warmup=0,
                    memory_format=torch.channels_last)
    compare_latency([Probe()], (8, 6), batch_sizes=(2, ), iters=1, warmup=0)
    assert seen == [True, False]


def test_benchmark_tool_refuses_cuda_without_a_gpu(tmp_path, tiny_configs):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    ltm, plain = tiny_configs(64)
    result = _run(ltm, '--compare', plain, '--device', 'cuda')
    assert result.returncode == 2
    assert 'CUDA is not available' in result.stderr


def test_benchmark_tool_names_a_missing_config(tmp_path, tiny_configs):
    _, plain = tiny_configs(64)
    missing = tmp_path / 'absent.py'
    result = _run(plain, '--compare', missing)
    assert result.returncode == 2
    assert f'config file not found: {str(missing)!r}' in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('options', [('--device', 'cpu'),
                                     ('--compile', 'default')])
def test_benchmark_tool_refuses_eval_cuda_graphs_off_an_eager_gpu(
        tiny_configs, options):
    ltm, plain = tiny_configs(64)
    result = _run(ltm, '--compare', plain, '--eval-cuda-graphs', *options)
    assert result.returncode == 2
    assert '--eval-cuda-graphs replays eager mask modules from CUDA ' \
        'graphs: it needs --device cuda and no --compile' in result.stderr


def test_benchmark_turns_on_and_reports_mask_graphs(tiny_configs):
    from ltm_mm.analysis import config_benchmark as tool
    from ltm_mm.analysis.flops import load_config_model
    ltm, plain = (load_config_model(str(path), None).model
                  for path in tiny_configs(64))
    tool.use_eval_cuda_graphs(ltm)
    tool.use_eval_cuda_graphs(plain)
    from ltm_mm.models.layers import find_merge_masks
    from ltm_mm.models.layers.eval_graphs import installed_graphs
    wrappers = [installed_graphs(m) for m in find_merge_masks(ltm)]
    assert len(wrappers) == 3 and None not in wrappers
    assert tool.describe_eval_graphs(ltm) == \
        '3 LTM mask modules, 0 CUDA graphs kept'
    with pytest.warns(UserWarning, match='a reason'):
        wrappers[1].graphs().disable('a reason')
    assert tool.describe_eval_graphs(ltm).endswith('; off in some: a reason')
    assert tool.describe_eval_graphs(plain) == 'no LTM mask modules'

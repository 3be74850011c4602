"""Inference latency and throughput of two configs' models, timed alternately.

    python tools/benchmark.py CFG --compare CFG2 [--batch-sizes 1 8]
        [--shape H W] [--warmup 5] [--iters 20] [--threads T]
        [--device cpu|cuda] [--amp fp16|bf16]
        [--compile default|reduce-overhead [--freeze]] [--eval-cuda-graphs]
        [--no-statistics] [--channels-last] [--reuse-freed-memory]
        [--backend pytorch|onnxruntime [--exporter dynamo|torchscript]]

Both models run in one process, one forward each in turn (A, B, A, B, ...)
after a warm-up, in eval mode under ``torch.inference_mode()``, on the same
random (batch, 3, H, W) input; detectors run backbone, neck and head (no
box decoding or NMS).  Prints per batch size the median latency with its
interquartile range, throughput, the ratio A/B of the medians (A = CFG,
B = CFG2), the median of the per-round ratios A_i/B_i with its
interquartile range (robust to bursts of load on a shared machine: both
calls of a round see them) and the kernels of one forward of each (CUDA
kernels on a GPU; compute operators on the CPU, eager only).
``--compile`` times ``torch.compile``d models (``reduce-overhead``
replays CUDA graphs), and fails rather than time a model that dynamo has
stopped compiling (its recompile limit reached); ``--freeze`` compiles
both with their weights and buffers as constants, so what depends on them
alone (an LTM layer's prepared statistics and window priors) is computed
at compile time, not per forward (:mod:`ltm_mm.analysis.compiled`);
``--amp`` runs under autocast.  ``--eval-cuda-graphs`` (eager, on a GPU)
replays every LTM mask module's eval forward from a CUDA graph once its
input shape repeats (the backbones' ``eval_cuda_graphs``), and says after
the table how many graphs each model captured.
H, W come from --shape or CFG's test pipeline.  Weights are not loaded;
LTM layers get random valid class statistics so that they run their IB
step as a trained model does.  ``--no-statistics`` leaves them without:
the IB step and the mask MLP are skipped and each ``G`` is a constant of
the grid, so what remains is the cost of merge and unmerge against the
work they save (a bound on what any mask module could reach).
``--channels-last`` converts both models and the input to
``torch.channels_last``.  ``--reuse-freed-memory`` makes glibc keep freed
memory for reuse instead of mapping fresh, zero-filled pages for every
large tensor (:mod:`ltm_mm.engine.cpu_memory`); on a CPU at batch 8 those
page faults can be most of an eager forward.
``--backend onnxruntime`` exports both networks (as
``tools/export_onnx.py`` does, to a temporary folder) and times them in
ONNX Runtime on the CPU with ``--threads`` intra-op threads; the exported
part of a two-stage detector is backbone and neck only
(:mod:`ltm_mm.deploy`).  The logic is
:mod:`ltm_mm.analysis.config_benchmark`.
"""
import argparse
import sys

import ltm_mm  # noqa: F401
from ltm_mm.analysis.config_benchmark import (BenchmarkOptions, all_cores,
                                              benchmark_configs)
from ltm_mm.analysis.latency import AMP_DTYPES
from ltm_mm.apis import CLIError


def parse_args(argv=None) -> BenchmarkOptions:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config A')
    parser.add_argument('--compare', metavar='CFG2', required=True,
                        help='config B; ratios are A/B')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: CFG\'s test '
                        'pipeline)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed rounds per batch size')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed forwards per model and batch size')
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (default: all usable cores, '
                        f'{all_cores()} here)')
    parser.add_argument('--device', default='cpu',
                        help='cpu, cuda or cuda:N (default: cpu)')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES),
                        help='run under autocast in this dtype')
    parser.add_argument('--compile', choices=['default', 'reduce-overhead'],
                        help='time torch.compile(model, mode=...) models')
    parser.add_argument('--freeze', action='store_true',
                        help='with --compile: fold weights, buffers and '
                        'class statistics into the compiled graphs as '
                        'constants (inductor freezing, for inference)')
    parser.add_argument('--eval-cuda-graphs', action='store_true',
                        help='eager on a GPU: replay the LTM mask modules '
                        'from CUDA graphs (backbone eval_cuda_graphs)')
    parser.add_argument('--no-statistics', action='store_true',
                        help='leave LTM layers without class statistics '
                        '(no IB step: G is a constant of the grid)')
    parser.add_argument('--channels-last', action='store_true',
                        help='run both models and the input in '
                        'torch.channels_last memory format')
    parser.add_argument('--reuse-freed-memory', action='store_true',
                        help='keep freed CPU memory for reuse (glibc) '
                        'instead of faulting in fresh pages per tensor')
    parser.add_argument('--backend', choices=['pytorch', 'onnxruntime'],
                        default='pytorch',
                        help='time the PyTorch models (default) or their '
                        'ONNX exports in ONNX Runtime (CPU)')
    parser.add_argument('--exporter', choices=['dynamo', 'torchscript'],
                        default='dynamo',
                        help='--backend onnxruntime: the ONNX exporter')
    options = BenchmarkOptions(**vars(parser.parse_args(argv)))
    problems = options.problems()
    if problems:
        parser.error(problems[0])
    return options


def run(options: BenchmarkOptions) -> dict:
    """:func:`~ltm_mm.analysis.config_benchmark.benchmark_configs`,
    printing."""
    return benchmark_configs(options)


def main(argv=None):
    try:
        run(parse_args(argv))
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

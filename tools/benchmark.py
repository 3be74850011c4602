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
(:mod:`ltm_mm.deploy`).
"""
import argparse
import contextlib
import os
import sys

import torch

import ltm_mm  # noqa: F401
from ltm_mm.analysis.compiled import frozen_weights, strict_compilation
from ltm_mm.analysis.flops import load_config_model
from ltm_mm.analysis.kernel_count import count_kernels
from ltm_mm.analysis.latency import (AMP_DTYPES, compare_latency,
                                     paired_ratio)
from ltm_mm.apis import CLIError, check_file_exists
from ltm_mm.engine.cpu_memory import reuse_freed_memory
from ltm_mm.models.backbones.ltm_mixin import LTMBackboneMixin
from ltm_mm.models.layers import find_merge_masks
from ltm_mm.models.layers.eval_graphs import installed_graphs


def _all_cores() -> int:
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe_device(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return 'cpu'


def parse_args(argv=None):
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
    parser.add_argument('--threads', type=int, default=_all_cores(),
                        help='torch CPU threads (default: all usable cores)')
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
    args = parser.parse_args(argv)
    if args.backend == 'onnxruntime':
        torch_only = [flag for flag, on in (
            ('--compile', args.compile), ('--amp', args.amp),
            ('--eval-cuda-graphs', args.eval_cuda_graphs),
            ('--channels-last', args.channels_last),
            ('--device cuda', args.device != 'cpu')) if on]
        if torch_only:
            parser.error(f'--backend onnxruntime runs on the CPU without '
                         f'PyTorch options: drop {", ".join(torch_only)}')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available here')
    for name in ('threads', 'iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1')
    if args.freeze and not args.compile:
        parser.error('--freeze folds weights into compiled graphs: it '
                     'needs --compile')
    if args.eval_cuda_graphs and (args.compile or
                                  not args.device.startswith('cuda')):
        parser.error('--eval-cuda-graphs replays eager mask modules from '
                     'CUDA graphs: it needs --device cuda and no --compile '
                     '(reduce-overhead graphs the whole model)')
    if args.warmup < 0 or min(args.batch_sizes) < 1:
        parser.error('--warmup must be >= 0 and batch sizes >= 1')
    return args


def format_table(results, names, input_size) -> str:
    lines = [f'{label} = {name}' for label, name in zip('AB', names)]
    lines.append(f'input {input_size[0]}x{input_size[1]}, latency in ms: '
                 f'median (IQR)')
    header = (f'{"batch":>5}  {"A ms":>18}  {"A img/s":>9}  {"B ms":>18}  '
              f'{"B img/s":>9}  {"latency A/B":>11}  {"paired A/B":>16}  '
              f'{"kernels A/B":>11}')
    lines.append(header)
    for batch_size, (first, second) in results.items():
        cells = [f'{batch_size:>5}']
        for stats in (first, second):
            timing = f'{stats.median_ms:.2f} ({stats.iqr_ms:.2f})'
            cells += [f'{timing:>18}', f'{stats.throughput:>9.1f}']
        cells.append(f'{first.median_ms / second.median_ms:>11.3f}')
        paired = paired_ratio(first, second)
        cells.append(f'{f"{paired.median:.3f} ({paired.iqr:.3f})":>16}')
        kernels = '-' if first.kernels is None else \
            f'{first.kernels}/{second.kernels}'
        cells.append(f'{kernels:>11}')
        lines.append('  '.join(cells))
    return '\n'.join(lines)


def run(args) -> dict:
    """Times the two configs of parsed ``args`` and prints the table.

    Returns:
        ``{batch_size: (stats of CFG, stats of CFG2)}``
        (:func:`~ltm_mm.analysis.latency.compare_latency`).

    Raises:
        CLIError: a config is missing or gives no input size.
    """
    for path in (args.config, args.compare):
        check_file_exists(path, 'config file')
    statistics = not args.no_statistics
    first = load_config_model(args.config, args.shape, statistics)
    second = load_config_model(args.compare, first.input_size, statistics)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else \
        torch.contiguous_format
    models = [m.model.to(device, memory_format=memory_format)
              for m in (first, second)]
    if args.backend == 'onnxruntime':
        from ltm_mm.deploy import onnxruntime_modules
        try:
            models = onnxruntime_modules(models, first.input_size,
                                         args.exporter, args.threads)
        except (TypeError, ValueError) as error:  # not exportable
            raise CLIError(str(error)) from None
    allocator = 'system'
    if args.reuse_freed_memory:
        allocator = 'reuse freed' if reuse_freed_memory() else \
            'system (not glibc: --reuse-freed-memory does nothing here)'
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    # kernels of compiled CPU code (or ONNX Runtime's) do not pass the
    # dispatcher: not counted
    counter = None if ((args.compile and device.type == 'cpu')
                       or args.backend == 'onnxruntime') else count_kernels
    if args.eval_cuda_graphs:  # eager only (parse_args)
        for model in models:
            use_eval_cuda_graphs(model)
    if args.compile:
        models = [torch.compile(m.eval(), mode=args.compile) for m in models]
    backend = '' if args.backend == 'pytorch' else \
        f'backend {args.backend} ({args.exporter} export), '
    print(f'device {describe_device(device)}, torch {torch.__version__}, '
          f'threads {torch.get_num_threads()}, amp {args.amp or "off"}, '
          f'{backend}'
          f'compile {args.compile or "off"}'
          f'{" with frozen weights" if args.freeze else ""}'
          f'{", masks from CUDA graphs" if args.eval_cuda_graphs else ""}, '
          f'statistics {"none" if args.no_statistics else "synthetic"}, '
          f'layout {"channels-last" if args.channels_last else "NCHW"}, '
          f'CPU memory {allocator}, '
          f'warm-up {args.warmup}, '
          f'{args.iters} timed forwards per model, alternating A, B')
    checks = contextlib.ExitStack()
    if args.compile:
        # a compiled model past dynamo's recompile limit would run eager
        # (ltm_mm.analysis.compiled): fail rather than time that
        checks.enter_context(strict_compilation())
    if args.freeze:  # models compile at their first call, in the timing
        checks.enter_context(frozen_weights())
    with checks:
        results = compare_latency(
            models, first.input_size, batch_sizes=args.batch_sizes,
            iters=args.iters, warmup=args.warmup, device=device,
            amp=args.amp, kernel_counter=counter,
            memory_format=memory_format)
    print(format_table(results, [args.config, args.compare],
                       first.input_size))
    if args.eval_cuda_graphs:
        for label, model in zip('AB', models):
            print(f'{label}: {describe_eval_graphs(model)}')
    return results


def use_eval_cuda_graphs(model: torch.nn.Module) -> None:
    """Turn on the CUDA graphs of the mask modules of every LTM backbone in
    ``model`` (none in a plain model)."""
    for module in model.modules():
        if isinstance(module, LTMBackboneMixin):
            module.use_eval_cuda_graphs()


def describe_eval_graphs(model: torch.nn.Module) -> str:
    """How many CUDA graphs ``model``'s mask modules hold, and why any
    turned them off."""
    masks = find_merge_masks(model)
    if not masks:
        return 'no LTM mask modules'
    wrappers = [w for w in map(installed_graphs, masks) if w is not None]
    graphs = sum(len(w.graphs().graphs) for w in wrappers)
    off = sorted({w.graphs().disabled_because for w in wrappers
                  if w.graphs().disabled_because})
    return (f'{len(masks)} LTM mask modules, {graphs} CUDA graphs kept'
            + (f'; off in some: {"; ".join(off)}' if off else ''))


def main(argv=None):
    try:
        run(parse_args(argv))
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

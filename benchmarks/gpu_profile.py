"""Where an LTM detector's device time goes, against its plain config.

    python benchmarks/gpu_profile.py LTM_CFG PLAIN_CFG --out FILE
        [--batch 32] [--amp fp16|bf16] [--compile default [--freeze]]
        [--merge-primitive embedding_bag inlined_gather] [--device cuda]
        [--iters 10]
        [--rows 60]

Profiles each model's forward (eval, ``torch.inference_mode()``, random
weights with synthetic valid class statistics, as tools/benchmark.py) and
writes, per model, one line of totals (host wall per forward, device time
per forward summed over the kernels, kernels per forward) and the
profiler's table of the costliest operators and kernels.  Eager runs label
the LTM and transformer modules (``## LearnableMergeMask`` and so on);
compiled runs (``--compile default``: no CUDA graphs, so the profiler sees
every kernel) name inductor's fused kernels after the operators they hold,
which shows what the compiler fused with what; ``--freeze`` compiles with
weights and buffers as constants (tools/benchmark.py ``--freeze``).

``--merge-primitive`` adds runs of the LTM model with other merges than
a compiled GPU forward's fused gather of inputs computed once
(ltm_mm/ops/merge.py): ``embedding_bag`` (ATen kernels) and
``inlined_gather`` (the fused gather with its inputs' computation inlined
into it, as first measured), so the primitives can be compared on one
device.  ``--device cpu`` runs the same on the CPU (device time is then
0).
"""
import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltm_mm.analysis.compiled import (fresh_compilation,  # noqa: E402
                                      frozen_weights, strict_compilation)
from ltm_mm.analysis.flops import load_config_model  # noqa: E402
from ltm_mm.analysis.kernel_count import cuda_events  # noqa: E402
from ltm_mm.analysis.latency import AMP_DTYPES, timed_forward  # noqa: E402
from ltm_mm.analysis.profiling import (label_modules,  # noqa: E402
                                       merge_primitive)

def profile_model(path: str, args, input_size=None) -> tuple:
    """``(input size, summary line, table)`` of one config's model."""
    device = torch.device(args.device)
    built = load_config_model(path, input_size)
    model = built.model.to(device).eval()
    if args.compile:
        fresh_compilation()
        model = torch.compile(model, mode=args.compile)
    else:
        label_modules(model)
    inputs = torch.randn(args.batch, 3, *built.input_size, device=device)
    forward = timed_forward(model, inputs, args.amp)  # waits for the device
    freezing = frozen_weights() if args.freeze else contextlib.nullcontext()
    with torch.inference_mode(), strict_compilation(), freezing:
        started = time.perf_counter()
        forward()  # compiles, when compiled
        first_s = time.perf_counter() - started
        for _ in range(args.warmup):
            forward()
        started = time.perf_counter()
        for _ in range(args.iters):
            forward()
        wall_ms = (time.perf_counter() - started) / args.iters * 1e3
        activities = [ProfilerActivity.CPU]
        if device.type == 'cuda':
            activities.append(ProfilerActivity.CUDA)
        with profile(activities=activities) as prof:
            for _ in range(args.iters):
                forward()
    kernels = cuda_events(prof)
    busy_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1e3
    summary = (f'first call {first_s:.1f} s; wall {wall_ms:.2f} ms, device '
               f'{busy_ms / args.iters:.3f} ms and '
               f'{len(kernels) / args.iters:.0f} kernels per forward')
    sort = 'self_device_time_total' if device.type == 'cuda' else \
        'cpu_time_total'
    table = prof.key_averages().table(sort_by=sort, row_limit=args.rows,
                                      max_name_column_width=90)
    return built.input_size, summary, table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # one metavar: argparse cannot format a tuple one for a positional
    parser.add_argument('configs', nargs=2, metavar='CONFIG',
                        help='the LTM config, then its plain config')
    parser.add_argument('--out', required=True)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES))
    parser.add_argument('--compile', choices=['default'],
                        help='profile torch.compile(model) (no CUDA graphs)')
    parser.add_argument('--freeze', action='store_true',
                        help='with --compile: weights and buffers as '
                        'constants of the compiled graphs')
    parser.add_argument('--merge-primitive', nargs='+',
                        choices=['embedding_bag', 'inlined_gather'],
                        default=[],
                        help='also profile the LTM model with these merges')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--rows', type=int, default=60)
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available here '
                     f'(--device cpu profiles on the CPU)')
    if args.freeze and not args.compile:
        parser.error('--freeze needs --compile')
    if min(args.batch, args.iters) < 1 or args.warmup < 0:
        parser.error('--batch and --iters must be >= 1, --warmup >= 0')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    ltm, plain = args.configs
    runs = [(ltm, 'auto'), *((ltm, name) for name in args.merge_primitive),
            (plain, 'auto')]
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sections, input_size = [], None
    for path, primitive in runs:
        with merge_primitive(primitive):
            input_size, summary, table = profile_model(path, args,
                                                       input_size)
        merge = '' if primitive == 'auto' else f', merge {primitive}'
        heading = (f'== {path} (batch {args.batch}, amp {args.amp or "off"},'
                   f' compile {args.compile or "off"}'
                   f'{" with frozen weights" if args.freeze else ""}'
                   f'{merge}): {summary}')
        print(heading, flush=True)
        sections.append(f'{heading}\n{table}')
        out.write_text('\n\n'.join(sections) + '\n')  # kept if cut short
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""The GPU speed targets of docs/speed.md, measured in one run.

    python benchmarks/gpu_targets.py [--out docs/benchmarks/gpu_targets.md]
        [--steps NAME ...] [--iters 30] [--warmup 10] [--device cuda]
        [--max-batch N]

Made for a lent CUDA machine that has PyTorch but no OpenMMLab packages
(``../shared/gpu/make_bundle.sh`` packs them; see docs/speed.md, "On a GPU
machine"): one command, steps in order of importance, each step a
``tools/benchmark.py`` comparison (LTM config against its plain config,
alternating in one process) whose exact command line is written next to
its table, so that any figure can be rerun on its own.  One more step
checks that the compiled LTM detector computes what the eager one does.

The page is rewritten after every step, so a run cut short (a device
lease ends) keeps what it measured; a step that fails is reported with
its error and the next one runs.  It ends with the targets, measured
against their thresholds.  The timing is
:func:`ltm_mm.analysis.config_benchmark.benchmark_configs`, what
``tools/benchmark.py`` runs; the steps, targets and page are
:mod:`ltm_mm.analysis.gpu_targets`.  ``--device cpu --max-batch 1`` runs
the same steps on a CPU (for trying the script).
"""
import argparse
import contextlib
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltm_mm.analysis.compiled import fresh_compilation  # noqa: E402
from ltm_mm.analysis.gpu_targets import (  # noqa: E402
    EQUALITY_STEP, STEPS, compiled_equals_eager, describe_machine,
    run_timing_step, step_options, write_page)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='docs/benchmarks/gpu_targets.md')
    names = [*STEPS, EQUALITY_STEP]
    parser.add_argument('--steps', nargs='+', choices=names, default=names,
                        metavar='NAME', help=f'steps to run, of {names}')
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--max-batch', type=int,
                        help='skip batch sizes above this')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available here '
                     f'(--device cpu runs the steps on the CPU)')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    # the steps name configs relative to the project root
    with contextlib.chdir(ROOT):
        return _run_steps(args, argv, out)


def run_step(name: str, args) -> tuple:
    """``(command, output, exit code, {batch: ratios})`` of one step; an
    exception is reported as the step's output.

    Each step starts with no compiled graphs: those of earlier steps would
    count against dynamo's recompile limit, past which a "compiled" step
    runs eager (ltm_mm.analysis.compiled).
    """
    fresh_compilation()
    if name == EQUALITY_STEP:
        command = 'compiled vs eager outputs (benchmarks/gpu_targets.py)'
    else:
        options = step_options(name, args.device, args.iters, args.warmup,
                               args.max_batch)
        command = 'python tools/benchmark.py ' + ' '.join(
            options.command_line())
    try:
        if name == EQUALITY_STEP:
            output, equal = compiled_equals_eager(args.device)
            return command, output, 0 if equal else 1, {}
        output, code, ratios = run_timing_step(options)
        return command, output, code, ratios
    except Exception:  # noqa: BLE001 -- report it, run the next step
        return command, traceback.format_exc(limit=3), 1, {}


def _run_steps(args, argv, out: Path) -> int:
    header = '\n'.join([
        f'## GPU: {describe_machine(args.device)}', '',
        f'`python benchmarks/gpu_targets.py {" ".join(argv or sys.argv[1:])}`'
        f', {time.strftime("%Y-%m-%d")}. LTM/plain in one process, '
        f'alternating; random weights with synthetic valid statistics.'])
    sections, ratios, failures = [], {}, 0
    for name in args.steps:
        started = time.perf_counter()
        command, output, code, ratios[name] = run_step(name, args)
        failures += code != 0
        seconds = time.perf_counter() - started
        status = '' if code == 0 else f' (failed, exit {code})'
        sections.append('\n'.join([
            f'### {name}{status}', '', f'`{command}` ({seconds:.0f} s)', '',
            '```', output.strip(), '```']))
        write_page(out, header, sections, ratios)
        print(sections[-1], flush=True)
    print(f'wrote {out}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

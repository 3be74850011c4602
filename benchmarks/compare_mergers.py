"""Is learned merging worth it at equal MACs? Train every merger alike.

    python tools/make_demo_data.py data/demo
    python benchmarks/compare_mergers.py --backbone mobilevit-xs \\
        --ratios 0.7 0.5 --seeds 3
    python tools/make_demo_seg_data.py data/demo_seg
    python benchmarks/compare_mergers.py --task seg --ratios 0.7 0.5

Trains the plain backbone and each merger (``ltm``, ``pool``, ``tome``) at
each ratio (``merge_ratios = [r] * every layer``; ``--ratios 0.7 shipped``
adds the per-layer ratios of the task's shipped LTM config, e.g.
``configs/ltm_ssdlite_mobilevit_xs.py``'s ``[0.5, 1, 0.5, 1, ...]``) with a
demo recipe, seeds ``0 .. N-1`` (``--seeds N``), each run in its own
process, and tests it on the demo's val split; the table gives the mean and
the standard deviation over seeds:

* ``--task det`` (default): ``configs/demo/ssdlite_*_demo.py`` on the
  generated detection data (8 epochs), COCO bbox mAP; MobileViT-XS or
  EfficientViT-B1; MACs and latency at 320 x 320.
* ``--task seg``: ``configs/demo/deeplabv3_*-mobilevit-xxs-d8_demo-seg.py``
  on the generated segmentation data (16 epochs), mIoU; MACs and latency
  at 128 x 128.

**Two-stage mode** (the paper's pipeline; ``--stage1-plain CKPT
--stage1-ltm CKPT``, MobileViT-XS): every run fine-tunes SSDLite (or, with
``--task seg``, DeepLabv3 at output stride 8:
``configs/demo/deeplabv3_*mobilevit-xs-d8_demo-seg-pretrained.py``) from a
stage-1 classifier of ``make demo``
(``configs/demo/*mobilevit-xs_demo-pretrain.py``) instead of training from
scratch.  ``plain``, ``pool``, ``tome`` and ``ltm`` without statistics start
from the plain classifier's weights; ``ltm`` with ``stage-1`` statistics
from the LTM classifier (weights and statistics, frozen); ``ltm`` with
``one-pass`` statistics from the plain classifier's weights with statistics
collected in one pass over the stage-1 data by
``tools/collect_statistics.py`` (no training).

MACs come from :mod:`ltm_mm.analysis.flops` (rows with statistics: with the
IB step running); latency is timed at batch 1
with every model alternating in one process (CPU; add ``--device cuda``
for a GPU).  Writes ``OUT.md`` (table and the exact command) and
``OUT.png`` (accuracy against MACs); ``make bench`` puts ``OUT.md`` files
under ``docs/benchmarks/`` into docs/benchmarks.md.

``--input-size S`` (detection) trains, tests and times at S x S instead
of the demo's 320 x 320, the anchors scaled alike
(:func:`ltm_mm.analysis.input_size.set_ssdlite_input_size`): at 192 a run
costs about a third of one at 320, which makes several seeds affordable.

The rows, configs, training, cost and table are
:mod:`ltm_mm.analysis.merger_comparison`; this script parses the command
line and runs every seed of every row in its own process.

Finished runs are reused (``WORK/<run>/metrics.json``) and interrupted ones
resume from their last epoch, unless ``--force``.
One run of a demo recipe takes about 30 min (detection) or 15 min
(segmentation) on one CPU core, so lower ``--epochs`` to try the script.
"""
import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltm_mm.analysis.merger_comparison import (  # noqa: E402
    SHIPPED, STAGE1_LTM, TASKS, TWO_STAGE, Comparison, Row, cost,
    layer_count, merge_ratios, plot, ratio_name, run_config, run_name, runs,
    task_of, train_and_test, write_table)


def merge_ratio(text: str):
    """A ``--ratios`` entry: a float in (0, 1), or ``shipped``."""
    if text == SHIPPED:
        return SHIPPED
    try:
        ratio = float(text)
    except ValueError:
        ratio = None
    if ratio is None or not 0 < ratio < 1:
        raise argparse.ArgumentTypeError(
            f'a merge ratio is a number in (0, 1) or {SHIPPED!r} (the '
            f'shipped config\'s per-layer ratios), got {text!r}')
    return ratio


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=sorted(TASKS), default=None,
                        help='det (SSDLite) or seg (DeepLabv3); follows '
                        '--backbone when not given (default det)')
    parser.add_argument('--backbone', default=None,
                        help='det: mobilevit-xs (default) or '
                        'efficientvit-b1; seg: mobilevit-xxs; two-stage '
                        'mode: mobilevit-xs for both')
    parser.add_argument('--ratios', type=merge_ratio, nargs='+',
                        default=[0.7, 0.5],
                        help='r in (0, 1) (merge_ratios = [r] * every '
                        'layer) or shipped (the per-layer ratios of the '
                        'task\'s shipped LTM config)')
    parser.add_argument('--epochs', type=int, default=None,
                        help='training epochs per run (default: the demo '
                        'recipe\'s, det 8, seg 16)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='detection: train, test and time at this '
                        'square size instead of the demo\'s 320 (images '
                        'resized, anchors scaled alike)')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed forwards per model')
    parser.add_argument('--device', nargs='+', default=['cpu'],
                        help='devices to time on, e.g. cpu cuda')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch threads of the runs and the timing')
    parser.add_argument('--work-dir', default='work_dirs/compare_mergers')
    parser.add_argument('--out', default=None,
                        help='table and plot path without suffix '
                        '(default docs/benchmarks/mergers_<backbone>, '
                        'mergers_seg_<backbone> for seg; _two_stage '
                        'appended in two-stage mode)')
    parser.add_argument('--force', action='store_true',
                        help='retrain runs that already have metrics')
    parser.add_argument('--seeds', type=int, default=1,
                        help='runs per row, seeds 0 .. N-1')
    parser.add_argument('--stage1-plain', default=None, metavar='CKPT',
                        help='two-stage mode: the plain stage-1 classifier '
                        '(work_dirs/demo_plain/pretrain/latest_checkpoint.pth'
                        ' after `make demo-plain`)')
    parser.add_argument('--stage1-ltm', default=None, metavar='CKPT',
                        help='two-stage mode: the LTM stage-1 classifier '
                        'with its statistics (work_dirs/demo/pretrain/'
                        'latest_checkpoint.pth after `make demo`)')
    parser.add_argument('--rows', nargs='+', default=None,
                        help='train and report only these rows (folder '
                        'names, e.g. plain pool_r0.7 ltm_r0.7_one-pass)')
    # worker mode
    parser.add_argument('--run', help=argparse.SUPPRESS)
    parser.add_argument('--ratio', type=merge_ratio,
                        help=argparse.SUPPRESS)
    parser.add_argument('--start', default='scratch', help=argparse.SUPPRESS)
    parser.add_argument('--seed', type=int, default=0,
                        help=argparse.SUPPRESS)
    parser.add_argument('--checkpoint', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds must be >= 1, got {args.seeds}')
    args.two_stage = bool(args.stage1_plain or args.stage1_ltm)
    if args.two_stage:
        _check_two_stage(parser, args)
    elif not (args.run and args.start != 'scratch'):
        # a two-stage worker is handed its task and backbone by the parent
        _check_backbone(parser, args)
    if args.epochs is None:
        args.epochs = TASKS[args.task].demo_epochs
    if args.input_size is not None and args.task != 'det':
        parser.error('--input-size is for --task det')
    return args


def _check_two_stage(parser, args):
    """Two-stage mode: both classifiers exist; the backbone is theirs."""
    if not (args.stage1_plain and args.stage1_ltm):
        parser.error('two-stage mode needs both --stage1-plain and '
                     '--stage1-ltm')
    args.task = args.task or 'det'
    backbone = TWO_STAGE[args.task].backbone
    if args.backbone not in (None, backbone):
        parser.error(f'two-stage mode exists for --backbone {backbone} '
                     f'only (the stage-1 classifiers\' backbone)')
    args.backbone = backbone
    for path in (args.stage1_plain, args.stage1_ltm):
        if not Path(path).is_file():
            parser.error(f'stage-1 checkpoint not found: {path!r}')


def _check_backbone(parser, args):
    """From scratch: the backbone belongs to the task (each follows the
    other when only one is given)."""
    if args.backbone is None:
        args.task = args.task or 'det'
        args.backbone = next(iter(TASKS[args.task].backbones))
    known = {name: task for task in TASKS.values() for name in task.backbones}
    if args.backbone not in known:
        parser.error(f'unknown --backbone {args.backbone!r}; choose from '
                     f'{", ".join(sorted(known))}')
    args.task = args.task or task_of(args.backbone)
    if args.backbone not in TASKS[args.task].backbones:
        parser.error(f'--task {args.task} has no backbone '
                     f'{args.backbone!r}; choose from '
                     f'{", ".join(TASKS[args.task].backbones)}')


def comparison_of(args) -> Comparison:
    """The library's settings from the parsed command line."""
    return Comparison(task=args.task, backbone=args.backbone,
                      epochs=args.epochs, seeds=args.seeds,
                      input_size=args.input_size, two_stage=args.two_stage,
                      iters=args.iters, threads=args.threads,
                      devices=tuple(args.device), root=ROOT)


def run_worker(args) -> dict:
    """Worker (``--run``): train one run's config, test it, write its
    metrics."""
    cfg = run_config(args.backbone, args.run, args.ratio, args.epochs,
                     args.start, args.seed, args.checkpoint,
                     args.input_size, ROOT, args.task)
    return train_and_test(cfg, args.work_dir, args.threads, args.force)


def stage1_checkpoint(args, work: Path, row: Row) -> Optional[str]:
    """The stage-1 checkpoint a two-stage row starts from (one-pass
    statistics are collected here, once per ratio)."""
    if row.start == 'scratch':
        return None
    if row.start == 'plain':
        return args.stage1_plain
    if row.start == 'stage-1':
        return args.stage1_ltm
    out = work / f'one_pass_{ratio_name(row.ratio)}.pth'
    if args.force or not out.exists():
        layers = layer_count(args.task, args.backbone, two_stage=True)
        ratios = merge_ratios(args.task, args.backbone, row.ratio, layers,
                              ROOT)
        print('>> one-pass statistics', out.name, flush=True)
        subprocess.run([
            sys.executable, 'tools/collect_statistics.py',
            STAGE1_LTM, args.stage1_plain, '--out', str(out),
            '--cfg-options', f'model.backbone.merge_ratios={ratios}'
        ], check=True, cwd=ROOT)
    return str(out)


def run_row(args, work: Path, row: Row, seed: int) -> dict:
    """Metrics of one seed of a row, trained (in its own process) unless
    they exist."""
    run_dir = work / run_name(*row) / f'seed{seed}'
    result = run_dir / 'metrics.json'
    if args.force or not result.exists():
        command = [sys.executable, __file__, '--run', row.merger,
                   '--task', args.task, '--backbone', args.backbone,
                   '--epochs', str(args.epochs),
                   '--threads', str(args.threads), '--work-dir',
                   str(run_dir), '--start', row.start, '--seed', str(seed)]
        if args.input_size is not None:
            command += ['--input-size', str(args.input_size)]
        if row.ratio is not None:
            command += ['--ratio', str(row.ratio)]
        checkpoint = stage1_checkpoint(args, work, row)
        if checkpoint:
            command += ['--checkpoint', checkpoint]
        if args.force:
            command.append('--force')
        print('>>', run_name(*row), f'seed {seed}', flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    return json.loads(result.read_text())


def main(argv=None):
    args = parse_args(argv)
    if args.run:
        run_worker(args)
        return
    task = TASKS[args.task]
    data = ROOT / task.data
    if not (data / task.data_marker).exists():
        sys.exit(f'error: no demo data at {data}; run '
                 f'`python {task.data_tool} {task.data}` first')
    # detection keeps its historical folders; other tasks are prefixed
    name = args.backbone if args.task == 'det' else \
        f'{args.task}_{args.backbone}'
    mode = 'two_stage_' if args.two_stage else ''
    size = '' if args.input_size is None else f'_{args.input_size}px'
    work = Path(args.work_dir) / name / f'{mode}{args.epochs}e{size}'
    specs = runs(args.ratios, args.two_stage)
    if args.rows:
        unknown = set(args.rows) - {run_name(*row) for row in specs}
        if unknown:
            sys.exit(f'error: no rows {sorted(unknown)}; the rows are '
                     f'{[run_name(*row) for row in specs]}')
        specs = [row for row in specs if run_name(*row) in args.rows]
    metrics = [[run_row(args, work, row, seed) for seed in range(args.seeds)]
               for row in specs]
    torch.set_num_threads(args.threads)
    comparison = comparison_of(args)
    macs, latency = cost(comparison, specs)
    # two-stage tables apart from the from-scratch ones
    stages = '_two_stage' if args.two_stage else ''
    out = Path(args.out or ROOT / 'docs' / 'benchmarks' /
               f'mergers_{name}{stages}{size}')
    out.parent.mkdir(parents=True, exist_ok=True)
    command = 'python benchmarks/compare_mergers.py ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(write_table(comparison, specs, metrics, macs, latency, out,
                      command))
    plot(comparison, specs, metrics, macs, out)


if __name__ == '__main__':
    main()

"""Is learned merging worth it at equal MACs? Train every merger alike.

    python tools/make_demo_data.py data/demo
    python benchmarks/compare_mergers.py --backbone mobilevit-xs \\
        --ratios 0.7 0.5 --seeds 3
    python tools/make_demo_seg_data.py data/demo_seg
    python benchmarks/compare_mergers.py --task seg --ratios 0.7 0.5

Trains the plain backbone and each merger (``ltm``, ``pool``, ``tome``) at
each ratio (``merge_ratios = [r] * every layer``) with a demo recipe, seeds
``0 .. N-1`` (``--seeds N``), each run in its own process, and tests it on
the demo's val split; the table gives the mean and the standard deviation
over seeds:

* ``--task det`` (default): ``configs/demo/ssdlite_*_demo.py`` on the
  generated detection data (8 epochs), COCO bbox mAP; MobileViT-XS or
  EfficientViT-B1; MACs and latency at 320 x 320.
* ``--task seg``: ``configs/demo/deeplabv3_*-mobilevit-xxs-d8_demo-seg.py``
  on the generated segmentation data (16 epochs), mIoU; MACs and latency
  at 128 x 128.

**Two-stage mode** (the paper's pipeline; ``--stage1-plain CKPT
--stage1-ltm CKPT``, detection with MobileViT-XS): every run fine-tunes
SSDLite from a stage-1 classifier of ``make demo``
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
import warnings
from pathlib import Path
import statistics
from typing import List, NamedTuple, Optional, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ltm_mm  # noqa: E402,F401
from ltm_mm.analysis.flops import (TensorForward, build_model,  # noqa: E402
                                   count_complexity, input_size_from_config)
from ltm_mm.analysis.input_size import set_ssdlite_input_size  # noqa: E402
from ltm_mm.analysis.latency import compare_latency  # noqa: E402
from ltm_mm.apis import load_config  # noqa: E402


class Task(NamedTuple):
    """What one task's comparison trains and reports."""
    backbones: dict  # name -> (plain config, merger config pattern, layers)
    data: str  # demo data folder
    data_tool: str  # the script that generates it
    data_marker: str  # a file that exists once it is generated
    demo_epochs: int  # the demo recipe's
    input_hw: Tuple[int, int]  # MACs and latency
    metrics: Tuple[Tuple[str, str], ...]  # (metric key, column), main first
    scale: float  # metric value -> the fraction printed


TASKS = {
    'det': Task(
        backbones={
            'mobilevit-xs':
            ('configs/demo/ssdlite_mobilevit-xs_demo.py',
             'configs/demo/ssdlite_{}-mobilevit-xs_demo.py', 9),
            'efficientvit-b1':
            ('configs/demo/ssdlite_efficientvit-b1_demo.py',
             'configs/demo/ssdlite_{}-efficientvit-b1_demo.py', 7),
        },
        data='data/demo',
        data_tool='tools/make_demo_data.py',
        data_marker='annotations/instances_train.json',
        demo_epochs=8,
        input_hw=(320, 320),
        metrics=(('coco/bbox_mAP', 'bbox mAP'),
                 ('coco/bbox_mAP_50', 'mAP@0.5')),
        scale=1.0),
    'seg': Task(
        backbones={
            'mobilevit-xxs':
            ('configs/demo/deeplabv3_mobilevit-xxs-d8_demo-seg.py',
             'configs/demo/deeplabv3_{}-mobilevit-xxs-d8_demo-seg.py', 9),
        },
        data='data/demo_seg',
        data_tool='tools/make_demo_seg_data.py',
        data_marker='demo_seg_data.json',
        demo_epochs=16,
        input_hw=(128, 128),
        metrics=(('mIoU', 'mIoU'), ('mAcc', 'mAcc')),
        scale=0.01),  # mmseg reports percentages
}
MERGERS = ('ltm', 'pool', 'tome')
#: Where a run starts: from scratch, or (two-stage) from the plain stage-1
#: classifier (``plain``), the LTM one with its statistics (``stage-1``) or
#: the plain one with one-pass statistics (``one-pass``).
STARTS = ('scratch', 'plain', 'stage-1', 'one-pass')
#: How the table names a row's start.
START_LABELS = {
    ('plain', 'plain'): 'plain classifier',
    ('pool', 'plain'): 'plain classifier',
    ('tome', 'plain'): 'plain classifier',
    ('ltm', 'plain'): 'plain classifier, no statistics',
    ('ltm', 'stage-1'): 'LTM classifier, stage-1 statistics',
    ('ltm', 'one-pass'): 'plain classifier, one-pass statistics',
}
TWO_STAGE = dict(
    backbone='mobilevit-xs',
    plain='configs/demo/ssdlite_mobilevit-xs_demo-pretrained.py',
    ltm='configs/demo/ssdlite_ltm-mobilevit-xs_demo-pretrained.py',
    stage1_ltm='configs/demo/ltm-mobilevit-xs_demo-pretrain.py',
    stage1_data='data/demo_objects')


class Row(NamedTuple):
    """One row of the table: a merger at a ratio from a start."""
    merger: str
    ratio: Optional[float] = None
    start: str = 'scratch'

    @property
    def has_statistics(self) -> bool:
        return self.merger == 'ltm' and self.start in ('stage-1', 'one-pass')


def task_of(backbone: str) -> str:
    """The task a backbone name belongs to (names are unique)."""
    for name, task in TASKS.items():
        if backbone in task.backbones:
            return name
    raise ValueError(f'unknown backbone {backbone!r}')


def run_config(backbone: str, merger: str, ratio, epochs: int,
               start: str = 'scratch', seed: int = 0,
               checkpoint: Optional[str] = None,
               input_size: Optional[int] = None):
    """The demo config of one run, overridden: ratios, epochs, seed and
    (detection) the input size; in two-stage mode (``start`` not
    ``scratch``) the stage-2 config with the stage-1 ``checkpoint``."""
    plain, pattern, layers = TASKS[task_of(backbone)].backbones[backbone]
    if start == 'scratch':
        cfg = load_config(str(ROOT / (plain if merger == 'plain'
                                      else pattern.format(merger))))
    else:
        cfg = two_stage_config(backbone, merger, start, checkpoint)
    if merger != 'plain':
        cfg.model.backbone.merge_ratios = [ratio] * layers
    if input_size is not None:
        set_ssdlite_input_size(cfg, input_size)
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs + 1  # tested once, after training
    for scheduler in cfg.param_scheduler:
        if scheduler['type'] == 'CosineAnnealingLR':
            scheduler.update(T_max=epochs, end=epochs)
    return cfg


def two_stage_config(backbone: str, merger: str, start: str,
                     checkpoint: Optional[str]):
    """Stage-2 config of a two-stage run: the plain or LTM demo config, the
    merger, and the backbone's stage-1 checkpoint."""
    if backbone != TWO_STAGE['backbone']:
        raise ValueError(f'two-stage runs exist for '
                         f'{TWO_STAGE["backbone"]}, not {backbone!r}')
    if start not in STARTS[1:]:
        raise ValueError(f'unknown start {start!r}; choose from {STARTS}')
    if not checkpoint:
        raise ValueError(f'a {start!r} run needs its stage-1 checkpoint')
    if merger != 'ltm' and start != 'plain':
        raise ValueError(f'{merger!r} has no class statistics: it starts '
                         f'from the plain stage-1 weights')
    cfg = load_config(str(ROOT / TWO_STAGE['plain' if merger == 'plain'
                                           else 'ltm']))
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    if merger in ('pool', 'tome'):
        cfg.model.backbone.merger = merger
        # no class statistics to keep, no mask parameters to be idle
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if 'LTMStatisticsHook' not in h['type']]
        cfg.model_wrapper_cfg.find_unused_parameters = False
    elif merger == 'ltm' and start == 'plain':
        for hook in cfg.custom_hooks:
            if 'LTMStatisticsHook' in hook['type']:
                hook['require_statistics'] = False
    return cfg


def train_and_test(args) -> None:
    """Worker (``--run``): train one config, test it, write metrics."""
    from mmengine.runner import Runner
    cfg = run_config(args.backbone, args.run, args.ratio, args.epochs,
                     args.start, args.seed, args.checkpoint,
                     args.input_size)
    cfg.work_dir = args.work_dir
    # an interrupted run goes on from its last epoch's checkpoint
    cfg.resume = not args.force and Path(args.work_dir,
                                         'last_checkpoint').exists()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.test()
    Path(args.work_dir, 'metrics.json').write_text(json.dumps(
        {k: float(v) for k, v in metrics.items()}))


def runs(ratios, two_stage: bool = False) -> List[Row]:
    """The table's rows: plain, then each merger at each ratio; two-stage
    adds ``ltm`` with stage-1 and with one-pass statistics."""
    start = 'plain' if two_stage else 'scratch'
    rows = [Row('plain', None, start)]
    for merger in MERGERS:
        for ratio in ratios:
            rows.append(Row(merger, ratio, start))
            if merger == 'ltm' and two_stage:
                rows += [Row('ltm', ratio, 'stage-1'),
                         Row('ltm', ratio, 'one-pass')]
    return rows


def run_name(merger, ratio=None, start='scratch') -> str:
    """Folder name of a row's runs (scratch rows keep their old names)."""
    name = merger if ratio is None else f'{merger}_r{ratio}'
    return name if start in ('scratch', 'plain') else f'{name}_{start}'


def cost(args, specs):
    """MACs and batch-1 latency of every row's model (untrained weights,
    random statistics where the row has statistics: cost does not depend
    on their values)."""
    from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
    models, macs = [], []
    for row in specs:
        # two-stage rows: the stage-2 config (K = the stage-1 classes);
        # nothing is loaded, so no checkpoint is needed
        cfg = run_config(args.backbone, row.merger, row.ratio, args.epochs,
                         row.start, checkpoint='not loaded',
                         input_size=args.input_size)
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            model = TensorForward(build_model(cfg)).eval()
            if row.has_statistics:
                fill_synthetic_statistics(model)
            macs.append(count_complexity(
                model, torch.randn(1, 3, *input_hw(args))).macs)
        models.append(model)
    latency = {}
    for device in args.device:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            stats = compare_latency([m.to(device) for m in models],
                                    input_hw(args),
                                    batch_sizes=(1, ), iters=args.iters,
                                    device=device)[1]
        latency[device] = [s.median_ms for s in stats]
        for model in models:
            model.cpu()
    return macs, latency


def input_hw(args) -> Tuple[int, int]:
    """The input size of training, MACs and latency: ``--input-size``, else
    the stage-2 configs' own size in two-stage mode, else the demo's."""
    if args.input_size is not None:
        return args.input_size, args.input_size
    if args.two_stage:
        return input_size_from_config(
            load_config(str(ROOT / TWO_STAGE['plain'])))
    return TASKS[args.task].input_hw


def mean_and_spread(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread


def write_table(args, specs, metrics, macs, latency, out: Path) -> None:
    """``metrics[i]``: the metric dicts of row ``i``'s seeds."""
    task = TASKS[args.task]
    devices = list(latency)
    two_stage = any(row.start != 'scratch' for row in specs)
    head = ['merger', 'r'] + (['start'] if two_stage else []) + [
        f'{column} (mean ± std)' for _, column in task.metrics] + [
        'seeds', 'GMACs', 'MACs / plain'] + [
        f'{d.upper()} ms (batch 1)' for d in devices] + [
        f'{d.upper()} / plain' for d in devices]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for i, row in enumerate(specs):
        cells = [row.merger, '1' if row.ratio is None else f'{row.ratio}']
        if two_stage:
            cells.append(START_LABELS[row.merger, row.start])
        for key, _ in task.metrics:
            mean, spread = mean_and_spread(
                [m[key] * task.scale for m in metrics[i]])
            cells.append(f'{mean:.3f} ± {spread:.3f}')
        cells.append(str(len(metrics[i])))
        cells += [f'{macs[i] / 1e9:.3f}', f'{macs[i] / macs[0]:.3f}']
        cells += [f'{latency[d][i]:.1f}' for d in devices]
        cells += [f'{latency[d][i] / latency[d][0]:.2f}' for d in devices]
        lines.append('| ' + ' | '.join(cells) + ' |')
    command = 'python benchmarks/compare_mergers.py ' + ' '.join(
        shlex.quote(a) for a in sys.argv[1:])
    model = 'SSDLite' if args.task == 'det' else 'DeepLabv3 (output stride 8)'
    title = f'## Mergers at equal MACs: {model} {args.backbone}, demo data'
    if args.input_size is not None:
        title += f' at {args.input_size} px'
    if two_stage:
        title += ', fine-tuned from stage-1 classifiers'
    epochs = f'{args.epochs} epoch' + ('s' if args.epochs > 1 else '')
    accuracy = task.metrics[0][1]
    reduced = [] if args.epochs >= task.demo_epochs else [
        f'**Reduced run ({epochs} instead of the demo recipe\'s '
        f'{task.demo_epochs}): the models have barely started to learn, so '
        f'the {accuracy} column does not rank the mergers; MACs and latency '
        f'do not depend on training.**', '']
    height, width = input_hw(args)
    seeds = ', '.join(str(s) for s in range(args.seeds))
    if two_stage:
        how = (f'Fine-tuned for {epochs} each from the stage-1 classifiers '
               f'of `make demo` (demo recipe, seeds {seeds}; `merge_ratios '
               f'= [r] * every layer`): `plain`, `pool`, `tome` and `ltm` '
               f'without statistics start from the plain classifier; `ltm` '
               f'with stage-1 statistics from the LTM classifier, its '
               f'statistics frozen; `ltm` with one-pass statistics from the '
               f'plain classifier with statistics from one pass of '
               f'`tools/collect_statistics.py` over the stage-1 data.')
    else:
        how = (f'Trained from scratch for {epochs} each (demo recipe, seeds '
               f'{seeds}; `merge_ratios = [r] * every layer`). From scratch '
               f'`ltm` has no class statistics (they come from ImageNet '
               f'pre-training): it merges with its learned window logits '
               f'only, without the IB step.')
    text = '\n'.join([
        title, '', '```', f'python {task.data_tool} {task.data}', command,
        '```', '', *reduced,
        f'{how} {accuracy} on the generated val split, mean ± sample '
        f'standard deviation over seeds; MACs at 1x3x{height}x{width}; '
        f'latency: median of {args.iters} alternating batch-1 forwards, '
        f'{args.threads} thread(s).',
        '', *lines, '', f'![{accuracy} against MACs]({out.stem}.png)', ''])
    out.with_suffix('.md').write_text(text)
    print(text)


def plot(args, specs, metrics, macs, out: Path) -> None:
    task = TASKS[args.task]
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    key, column = task.metrics[0]
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=100)
    for merger, start in dict.fromkeys((r.merger, r.start) for r in specs):
        points = [(macs[i] / 1e9,
                   mean_and_spread([m[key] * task.scale
                                    for m in metrics[i]]), row.ratio)
                  for i, row in enumerate(specs)
                  if (row.merger, row.start) == (merger, start)]
        label = merger if start in ('scratch', 'plain') else \
            f'{merger}, {start} statistics'
        ax.errorbar([p[0] for p in points], [p[1][0] for p in points],
                    yerr=[p[1][1] for p in points], fmt='o-', capsize=3,
                    label=label)
        for x, (y, _), ratio in points:
            if ratio is not None:
                ax.annotate(f'r={ratio}', (x, y), textcoords='offset points',
                            xytext=(4, 4), fontsize=8)
    height, width = input_hw(args)
    ax.set_xlabel(f'GMACs ({height}x{width})')
    ax.set_ylabel(f'{column} (demo val)')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix('.png'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=sorted(TASKS), default=None,
                        help='det (SSDLite) or seg (DeepLabv3); follows '
                        '--backbone when not given (default det)')
    parser.add_argument('--backbone', default=None,
                        help='det: mobilevit-xs (default) or '
                        'efficientvit-b1; seg: mobilevit-xxs')
    parser.add_argument('--ratios', type=float, nargs='+',
                        default=[0.7, 0.5])
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
    parser.add_argument('--ratio', type=float, help=argparse.SUPPRESS)
    parser.add_argument('--start', default='scratch', help=argparse.SUPPRESS)
    parser.add_argument('--seed', type=int, default=0,
                        help=argparse.SUPPRESS)
    parser.add_argument('--checkpoint', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds must be >= 1, got {args.seeds}')
    args.two_stage = bool(args.stage1_plain or args.stage1_ltm)
    if args.two_stage:
        if not (args.stage1_plain and args.stage1_ltm):
            parser.error('two-stage mode needs both --stage1-plain and '
                         '--stage1-ltm')
        if args.backbone not in (None, TWO_STAGE['backbone']):
            parser.error(f'two-stage mode exists for --backbone '
                         f'{TWO_STAGE["backbone"]} only')
        for path in (args.stage1_plain, args.stage1_ltm):
            if not Path(path).is_file():
                parser.error(f'stage-1 checkpoint not found: {path!r}')
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
    if args.epochs is None:
        args.epochs = TASKS[args.task].demo_epochs
    if args.input_size is not None and args.task != 'det':
        parser.error('--input-size is for --task det')
    if any(not 0 < r < 1 for r in args.ratios):
        parser.error(f'--ratios must lie in (0, 1), got {args.ratios}')
    return args


def stage1_checkpoint(args, work: Path, row: Row) -> Optional[str]:
    """The stage-1 checkpoint a two-stage row starts from (one-pass
    statistics are collected here, once per ratio)."""
    if row.start == 'scratch':
        return None
    if row.start == 'plain':
        return args.stage1_plain
    if row.start == 'stage-1':
        return args.stage1_ltm
    out = work / f'one_pass_r{row.ratio}.pth'
    if args.force or not out.exists():
        layers = TASKS[args.task].backbones[args.backbone][2]
        print('>> one-pass statistics', out.name, flush=True)
        subprocess.run([
            sys.executable, 'tools/collect_statistics.py',
            TWO_STAGE['stage1_ltm'], args.stage1_plain, '--out', str(out),
            '--cfg-options',
            f'model.backbone.merge_ratios={[row.ratio] * layers}'
        ], check=True, cwd=ROOT)
    return str(out)


def run_row(args, work: Path, row: Row, seed: int) -> dict:
    """Metrics of one seed of a row, trained (in its own process) unless
    they exist."""
    run_dir = work / run_name(*row) / f'seed{seed}'
    result = run_dir / 'metrics.json'
    if args.force or not result.exists():
        command = [sys.executable, __file__, '--run', row.merger,
                   '--backbone', args.backbone, '--epochs', str(args.epochs),
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
        return train_and_test(args)
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
    macs, latency = cost(args, specs)
    # two-stage tables apart from the from-scratch ones
    stages = '_two_stage' if args.two_stage else ''
    out = Path(args.out or ROOT / 'docs' / 'benchmarks' /
               f'mergers_{name}{stages}{size}')
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(args, specs, metrics, macs, latency, out)
    plot(args, specs, metrics, macs, out)


if __name__ == '__main__':
    main()

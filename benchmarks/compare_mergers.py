"""Is learned merging worth it at equal MACs? Train every merger alike.

    python tools/make_demo_data.py data/demo
    python benchmarks/compare_mergers.py --backbone mobilevit-xs \\
        --ratios 0.7 0.5
    python tools/make_demo_seg_data.py data/demo_seg
    python benchmarks/compare_mergers.py --task seg --ratios 0.7 0.5

Trains the plain backbone and each merger (``ltm``, ``pool``, ``tome``) at
each ratio (``merge_ratios = [r] * every layer``) with a demo recipe, seed
0, each run in its own process, and tests it on the demo's val split:

* ``--task det`` (default): ``configs/demo/ssdlite_*_demo.py`` on the
  generated detection data (8 epochs), COCO bbox mAP; MobileViT-XS or
  EfficientViT-B1; MACs and latency at 320 x 320.
* ``--task seg``: ``configs/demo/deeplabv3_*-mobilevit-xxs-d8_demo-seg.py``
  on the generated segmentation data (16 epochs), mIoU; MACs and latency
  at 128 x 128.

MACs come from :mod:`ltm_mm.analysis.flops`; latency is timed at batch 1
with every model alternating in one process (CPU; add ``--device cuda``
for a GPU).  Writes ``OUT.md`` (table and the exact command) and
``OUT.png`` (accuracy against MACs); ``make bench`` puts ``OUT.md`` files
under ``docs/benchmarks/`` into docs/benchmarks.md.

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
from typing import NamedTuple, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ltm_mm  # noqa: E402,F401
from ltm_mm.analysis.flops import (TensorForward, build_model,  # noqa: E402
                                   count_complexity)
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


def task_of(backbone: str) -> str:
    """The task a backbone name belongs to (names are unique)."""
    for name, task in TASKS.items():
        if backbone in task.backbones:
            return name
    raise ValueError(f'unknown backbone {backbone!r}')


def run_config(backbone: str, merger: str, ratio, epochs: int):
    """The demo config of one run, overridden: ratios and epochs."""
    plain, pattern, layers = TASKS[task_of(backbone)].backbones[backbone]
    cfg = load_config(str(ROOT / (plain if merger == 'plain'
                                  else pattern.format(merger))))
    if merger != 'plain':
        cfg.model.backbone.merge_ratios = [ratio] * layers
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs + 1  # tested once, after training
    for scheduler in cfg.param_scheduler:
        if scheduler['type'] == 'CosineAnnealingLR':
            scheduler.update(T_max=epochs, end=epochs)
    return cfg


def train_and_test(args) -> None:
    """Worker (``--run``): train one config, test it, write metrics."""
    from mmengine.runner import Runner
    cfg = run_config(args.backbone, args.run, args.ratio, args.epochs)
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


def runs(ratios):
    yield 'plain', None
    for merger in MERGERS:
        for ratio in ratios:
            yield merger, ratio


def run_name(merger, ratio) -> str:
    return merger if ratio is None else f'{merger}_r{ratio}'


def cost(args, specs):
    """MACs and batch-1 latency of every run's model (untrained weights:
    cost does not depend on them)."""
    models, macs = [], []
    for merger, ratio in specs:
        cfg = run_config(args.backbone, merger, ratio, args.epochs)
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            model = TensorForward(build_model(cfg)).eval()
            macs.append(count_complexity(
                model, torch.randn(1, 3, *TASKS[args.task].input_hw)).macs)
        models.append(model)
    latency = {}
    for device in args.device:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            stats = compare_latency([m.to(device) for m in models],
                                    TASKS[args.task].input_hw,
                                    batch_sizes=(1, ), iters=args.iters,
                                    device=device)[1]
        latency[device] = [s.median_ms for s in stats]
        for model in models:
            model.cpu()
    return macs, latency


def write_table(args, specs, metrics, macs, latency, out: Path) -> None:
    task = TASKS[args.task]
    devices = list(latency)
    head = ['merger', 'r'] + [column for _, column in task.metrics] + [
        'GMACs', 'MACs / plain'] + [
        f'{d.upper()} ms (batch 1)' for d in devices] + [
        f'{d.upper()} / plain' for d in devices]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for i, (merger, ratio) in enumerate(specs):
        row = [merger, '1' if ratio is None else f'{ratio}']
        row += [f'{metrics[i][key] * task.scale:.3f}'
                for key, _ in task.metrics]
        row += [f'{macs[i] / 1e9:.3f}', f'{macs[i] / macs[0]:.3f}']
        row += [f'{latency[d][i]:.1f}' for d in devices]
        row += [f'{latency[d][i] / latency[d][0]:.2f}' for d in devices]
        lines.append('| ' + ' | '.join(row) + ' |')
    command = 'python benchmarks/compare_mergers.py ' + ' '.join(
        shlex.quote(a) for a in sys.argv[1:])
    model = 'SSDLite' if args.task == 'det' else 'DeepLabv3 (output stride 8)'
    title = f'## Mergers at equal MACs: {model} {args.backbone}, demo data'
    epochs = f'{args.epochs} epoch' + ('s' if args.epochs > 1 else '')
    accuracy = task.metrics[0][1]
    reduced = [] if args.epochs >= task.demo_epochs else [
        f'**Reduced run ({epochs} instead of the demo recipe\'s '
        f'{task.demo_epochs}): the models have barely started to learn, so '
        f'the {accuracy} column does not rank the mergers; MACs and latency '
        f'do not depend on training.**', '']
    height, width = task.input_hw
    text = '\n'.join([
        title, '', '```', f'python {task.data_tool} {task.data}', command,
        '```', '', *reduced,
        f'Trained from scratch for {epochs} each (demo recipe, '
        f'seed 0; `merge_ratios = [r] * every layer`), {accuracy} on the '
        f'generated val split; MACs at 1x3x{height}x{width}; '
        f'latency: median of {args.iters} alternating batch-1 forwards, '
        f'{args.threads} thread(s). From scratch `ltm` has no class '
        f'statistics (they come from ImageNet pre-training): it merges with '
        f'its learned window logits only, without the IB step.',
        '', *lines, '', f'![{accuracy} against MACs]({out.stem}.png)', ''])
    out.with_suffix('.md').write_text(text)
    print(text)


def plot(task: Task, specs, metrics, macs, out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    key, column = task.metrics[0]
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=100)
    for merger in ('plain', ) + MERGERS:
        points = [(macs[i] / 1e9, metrics[i][key] * task.scale, ratio)
                  for i, (m, ratio) in enumerate(specs) if m == merger]
        ax.plot([p[0] for p in points], [p[1] for p in points], 'o-',
                label=merger)
        for x, y, ratio in points:
            if ratio is not None:
                ax.annotate(f'r={ratio}', (x, y), textcoords='offset points',
                            xytext=(4, 4), fontsize=8)
    height, width = task.input_hw
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
                        'mergers_seg_<backbone> for seg)')
    parser.add_argument('--force', action='store_true',
                        help='retrain runs that already have metrics')
    parser.add_argument('--run', help=argparse.SUPPRESS)  # worker mode
    parser.add_argument('--ratio', type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
    if any(not 0 < r < 1 for r in args.ratios):
        parser.error(f'--ratios must lie in (0, 1), got {args.ratios}')
    return args


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
    work = Path(args.work_dir) / name / f'{args.epochs}e'
    specs = list(runs(args.ratios))
    metrics = []
    for merger, ratio in specs:
        run_dir = work / run_name(merger, ratio)
        result = run_dir / 'metrics.json'
        if args.force or not result.exists():
            command = [sys.executable, __file__, '--run', merger,
                       '--backbone', args.backbone, '--epochs',
                       str(args.epochs), '--threads', str(args.threads),
                       '--work-dir', str(run_dir)]
            if ratio is not None:
                command += ['--ratio', str(ratio)]
            if args.force:
                command.append('--force')
            print('>>', run_name(merger, ratio), flush=True)
            subprocess.run(command, check=True, cwd=ROOT)
        metrics.append(json.loads(result.read_text()))
    torch.set_num_threads(args.threads)
    macs, latency = cost(args, specs)
    out = Path(args.out or ROOT / 'docs' / 'benchmarks' / f'mergers_{name}')
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(args, specs, metrics, macs, latency, out)
    plot(task, specs, metrics, macs, out)


if __name__ == '__main__':
    main()

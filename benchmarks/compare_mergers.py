"""Is learned merging worth it at equal MACs? Train every merger alike.

    python tools/make_demo_data.py data/demo
    python benchmarks/compare_mergers.py --backbone mobilevit-xs \\
        --ratios 0.7 0.5 --epochs 8

Trains the plain backbone and each merger (``ltm``, ``pool``, ``tome``) at
each ratio (``merge_ratios = [r] * every layer``) with the demo recipe of
``configs/demo/ssdlite_*_demo.py`` on the generated detection data, seed 0,
each run in its own process; tests COCO bbox mAP on the val split; counts
MACs (1 x 3 x 320 x 320, :mod:`ltm_mm.analysis.flops`) and times latency
at batch 1 with every model alternating in one process (CPU; add
``--device cuda`` for a GPU).  Writes ``OUT.md`` (table and the exact
command) and ``OUT.png`` (mAP against MACs); ``make bench`` puts
``OUT.md`` files under ``docs/benchmarks/`` into docs/benchmarks.md.

Finished runs are reused (``WORK/<run>/metrics.json``) unless ``--force``;
the demo recipe's 8 epochs take about 10 min per run on 2 CPU cores, so
lower ``--epochs`` to try the script.
"""
import argparse
import json
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ltm_mm  # noqa: E402,F401
from ltm_mm.analysis.flops import (TensorForward, build_model,  # noqa: E402
                                   count_complexity)
from ltm_mm.analysis.latency import compare_latency  # noqa: E402
from ltm_mm.apis import load_config  # noqa: E402

#: backbone -> plain config, merger config pattern, merging layers
BACKBONES = {
    'mobilevit-xs': ('configs/demo/ssdlite_mobilevit-xs_demo.py',
                     'configs/demo/ssdlite_{}-mobilevit-xs_demo.py', 9),
    'efficientvit-b1': ('configs/demo/ssdlite_efficientvit-b1_demo.py',
                        'configs/demo/ssdlite_{}-efficientvit-b1_demo.py', 7),
}
MERGERS = ('ltm', 'pool', 'tome')
INPUT_HW = (320, 320)
DEMO_EPOCHS = 8  # the demo recipe's


def run_config(backbone: str, merger: str, ratio, epochs: int):
    """The demo config of one run, overridden: ratios and epochs."""
    plain, pattern, layers = BACKBONES[backbone]
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
                model, torch.randn(1, 3, *INPUT_HW)).macs)
        models.append(model)
    latency = {}
    for device in args.device:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            stats = compare_latency([m.to(device) for m in models], INPUT_HW,
                                    batch_sizes=(1, ), iters=args.iters,
                                    device=device)[1]
        latency[device] = [s.median_ms for s in stats]
        for model in models:
            model.cpu()
    return macs, latency


def write_table(args, specs, metrics, macs, latency, out: Path) -> None:
    devices = list(latency)
    head = ['merger', 'r', 'bbox mAP', 'mAP@0.5', 'GMACs', 'MACs / plain'] + [
        f'{d.upper()} ms (batch 1)' for d in devices] + [
        f'{d.upper()} / plain' for d in devices]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for i, (merger, ratio) in enumerate(specs):
        row = [merger, '1' if ratio is None else f'{ratio}',
               f'{metrics[i]["coco/bbox_mAP"]:.3f}',
               f'{metrics[i]["coco/bbox_mAP_50"]:.3f}',
               f'{macs[i] / 1e9:.3f}', f'{macs[i] / macs[0]:.3f}']
        row += [f'{latency[d][i]:.1f}' for d in devices]
        row += [f'{latency[d][i] / latency[d][0]:.2f}' for d in devices]
        lines.append('| ' + ' | '.join(row) + ' |')
    command = 'python benchmarks/compare_mergers.py ' + ' '.join(
        shlex.quote(a) for a in sys.argv[1:])
    title = f'## Mergers at equal MACs: SSDLite {args.backbone}, demo data'
    epochs = f'{args.epochs} epoch' + ('s' if args.epochs > 1 else '')
    reduced = [] if args.epochs >= DEMO_EPOCHS else [
        f'**Reduced run ({epochs} instead of the demo recipe\'s '
        f'{DEMO_EPOCHS}): the detectors have barely started to learn, so '
        f'the mAP column does not rank the mergers; MACs and latency do '
        f'not depend on training.**', '']
    text = '\n'.join([
        title, '', '```', 'python tools/make_demo_data.py data/demo', command,
        '```', '', *reduced,
        f'Trained from scratch for {epochs} each (demo recipe, '
        f'seed 0; `merge_ratios = [r] * every layer`), bbox mAP on the '
        f'generated val split; MACs at 1x3x{INPUT_HW[0]}x{INPUT_HW[1]}; '
        f'latency: median of {args.iters} alternating batch-1 forwards, '
        f'{args.threads} thread(s).',
        '', *lines, '', f'![mAP against MACs]({out.stem}.png)', ''])
    out.with_suffix('.md').write_text(text)
    print(text)


def plot(specs, metrics, macs, out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=100)
    for merger in ('plain', ) + MERGERS:
        points = [(macs[i] / 1e9, metrics[i]['coco/bbox_mAP'], ratio)
                  for i, (m, ratio) in enumerate(specs) if m == merger]
        ax.plot([p[0] for p in points], [p[1] for p in points], 'o-',
                label=merger)
        for x, y, ratio in points:
            if ratio is not None:
                ax.annotate(f'r={ratio}', (x, y), textcoords='offset points',
                            xytext=(4, 4), fontsize=8)
    ax.set_xlabel('GMACs (320x320)')
    ax.set_ylabel('bbox mAP (demo val)')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix('.png'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backbone', choices=sorted(BACKBONES),
                        default='mobilevit-xs')
    parser.add_argument('--ratios', type=float, nargs='+',
                        default=[0.7, 0.5])
    parser.add_argument('--epochs', type=int, default=DEMO_EPOCHS,
                        help='training epochs per run (demo recipe: 8)')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed forwards per model')
    parser.add_argument('--device', nargs='+', default=['cpu'],
                        help='devices to time on, e.g. cpu cuda')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch threads of the runs and the timing')
    parser.add_argument('--work-dir', default='work_dirs/compare_mergers')
    parser.add_argument('--out', default=None,
                        help='table and plot path without suffix '
                        '(default docs/benchmarks/mergers_<backbone>)')
    parser.add_argument('--force', action='store_true',
                        help='retrain runs that already have metrics')
    parser.add_argument('--run', help=argparse.SUPPRESS)  # worker mode
    parser.add_argument('--ratio', type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.run:
        return train_and_test(args)
    data = ROOT / 'data' / 'demo' / 'annotations' / 'instances_train.json'
    if not data.exists():
        sys.exit(f'error: no demo data at {data.parent.parent}; run '
                 f'`python tools/make_demo_data.py data/demo` first')
    work = Path(args.work_dir) / args.backbone / f'{args.epochs}e'
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
            print('>>', run_name(merger, ratio), flush=True)
            subprocess.run(command, check=True, cwd=ROOT)
        metrics.append(json.loads(result.read_text()))
    torch.set_num_threads(args.threads)
    macs, latency = cost(args, specs)
    out = Path(args.out or ROOT / 'docs' / 'benchmarks' /
               f'mergers_{args.backbone}')
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(args, specs, metrics, macs, latency, out)
    plot(specs, metrics, macs, out)


if __name__ == '__main__':
    main()

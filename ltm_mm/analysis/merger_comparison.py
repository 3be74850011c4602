"""The logic of ``benchmarks/compare_mergers.py``: every merger trained
alike, seeded, and tabulated against MACs and latency.

A comparison (:class:`Comparison`) trains the plain backbone and each merger
(``ltm``, ``pool``, ``tome``) at each ratio (``merge_ratios = [r] * every
layer``, or ``shipped``: the merge ratios of the shipped config of the task,
:data:`SHIPPED_CONFIGS`) with a demo recipe, from scratch or, in two-stage
mode (the paper's pipeline), fine-tuned from a stage-1 classifier of
``make demo``:

* :func:`runs` lists the rows (:class:`Row`), :func:`run_config` gives the
  config of one seed of a row (the demo config, overridden only in ratios,
  epochs, seed, input size and start), :func:`train_and_test` trains and
  tests it;
* :func:`cost` measures every row's MACs and batch-1 latency;
* :func:`write_table` and :func:`plot` write the mean and sample standard
  deviation over seeds of every row, beside its cost.

Config paths are relative to the repository (``root``).
"""
import json
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from ltm_mm.apis import load_config
from .flops import (TensorForward, build_model, count_complexity,
                    input_size_from_config)
from .input_size import set_ssdlite_input_size
from .latency import compare_latency

#: The repository this package sits in: the demo configs live there.
REPOSITORY = Path(__file__).resolve().parents[2]


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


class TwoStage(NamedTuple):
    """A task's stage 2 in two-stage mode: the configs that fine-tune from
    the stage-1 classifiers of ``make demo``."""
    backbone: str  # the classifiers' backbone
    plain: str  # from the plain classifier
    ltm: str  # LTM, from the LTM classifier, its statistics frozen
    layers: int  # the backbone's merging layers


#: Two-stage mode per task; both tasks fine-tune from the same classifiers.
TWO_STAGE = {
    'det': TwoStage(
        'mobilevit-xs', 'configs/demo/ssdlite_mobilevit-xs_demo-pretrained.py',
        'configs/demo/ssdlite_ltm-mobilevit-xs_demo-pretrained.py', 9),
    'seg': TwoStage(
        'mobilevit-xs',
        'configs/demo/deeplabv3_mobilevit-xs-d8_demo-seg-pretrained.py',
        'configs/demo/deeplabv3_ltm-mobilevit-xs-d8_demo-seg-pretrained.py',
        9),
}
#: A ratio that stands for the per-layer merge ratios of the task's shipped
#: config, where merging pays (``[0.5, 1, 0.5, 1, ...]``), against the
#: paper's ``[r] * every layer``.
SHIPPED = 'shipped'
#: The shipped LTM config whose ``merge_ratios`` a ``shipped`` row takes, per
#: task and backbone.  Segmentation has one (DeepLabv3 MobileViT-S), whose
#: nine layers are laid out as the XS's and XXS's (blocks of 2, 4, 3).
SHIPPED_CONFIGS = {
    ('det', 'mobilevit-xs'): 'configs/ltm_ssdlite_mobilevit_xs.py',
    ('det', 'efficientvit-b1'): 'configs/ltm_ssdlite_efficientvit_b1.py',
    ('seg', 'mobilevit-xs'):
    'configs/seg/deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py',
    ('seg', 'mobilevit-xxs'):
    'configs/seg/deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py',
}
#: The LTM stage-1 classifier's config: one-pass statistics are collected
#: under it, from the plain classifier's weights.
STAGE1_LTM = 'configs/demo/ltm-mobilevit-xs_demo-pretrain.py'


class Row(NamedTuple):
    """One row of the table: a merger at a ratio (a float or
    :data:`SHIPPED`) from a start."""
    merger: str
    ratio: Union[float, str, None] = None
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


def layer_count(task: str, backbone: str, two_stage: bool) -> int:
    """The merging layers (one ratio each) of ``backbone`` in ``task``:
    the stage-1 classifiers' backbone in two-stage mode."""
    if two_stage:
        return TWO_STAGE[task].layers
    if backbone not in TASKS[task].backbones:
        raise ValueError(f'task {task!r} has no backbone {backbone!r}; '
                         f'choose from {list(TASKS[task].backbones)}')
    return TASKS[task].backbones[backbone][2]


def merge_ratios(task: str, backbone: str, ratio, layers: int,
                 root: Path = REPOSITORY) -> List[float]:
    """The per-layer ``merge_ratios`` of a row's ``ratio``: ``[ratio] *
    layers``, or the shipped config's for :data:`SHIPPED`."""
    if ratio != SHIPPED:
        return [ratio] * layers
    if (task, backbone) not in SHIPPED_CONFIGS:
        raise ValueError(f'no shipped config for {backbone!r} ({task}); '
                         f'choose a ratio in (0, 1)')
    path = SHIPPED_CONFIGS[task, backbone]
    ratios = list(load_config(str(root / path)).model.backbone.merge_ratios)
    if len(ratios) != layers:
        raise ValueError(f'{path} has {len(ratios)} merge ratios, '
                         f'{backbone} has {layers} layers')
    return ratios


def run_config(backbone: str, merger: str, ratio, epochs: int,
               start: str = 'scratch', seed: int = 0,
               checkpoint: Optional[str] = None,
               input_size: Optional[int] = None, root: Path = REPOSITORY,
               task: Optional[str] = None):
    """The demo config of one run, overridden: ratios, epochs, seed and
    (detection) the input size; in two-stage mode (``start`` not
    ``scratch``) the ``task``'s stage-2 config (default: the backbone's
    task) with the stage-1 ``checkpoint``."""
    task = task or task_of(backbone)
    layers = layer_count(task, backbone, two_stage=start != 'scratch')
    if start == 'scratch':
        plain, pattern, _ = TASKS[task].backbones[backbone]
        cfg = load_config(str(root / (plain if merger == 'plain'
                                      else pattern.format(merger))))
    else:
        cfg = two_stage_config(backbone, merger, start, checkpoint, root,
                               task)
    if merger != 'plain':
        cfg.model.backbone.merge_ratios = merge_ratios(task, backbone, ratio,
                                                       layers, root)
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
                     checkpoint: Optional[str], root: Path = REPOSITORY,
                     task: str = 'det'):
    """Stage-2 config of a two-stage run of ``task``: the plain or LTM
    stage-2 config, the merger, and the backbone's stage-1 checkpoint."""
    if task not in TWO_STAGE:
        raise ValueError(f'two-stage runs exist for tasks '
                         f'{sorted(TWO_STAGE)}, not {task!r}')
    stage2 = TWO_STAGE[task]
    if backbone != stage2.backbone:
        raise ValueError(f'two-stage runs exist for {stage2.backbone}, '
                         f'not {backbone!r}')
    if start not in STARTS[1:]:
        raise ValueError(f'unknown start {start!r}; choose from {STARTS}')
    if not checkpoint:
        raise ValueError(f'a {start!r} run needs its stage-1 checkpoint')
    if merger != 'ltm' and start != 'plain':
        raise ValueError(f'{merger!r} has no class statistics: it starts '
                         f'from the plain stage-1 weights')
    cfg = load_config(str(root / (stage2.plain if merger == 'plain'
                                  else stage2.ltm)))
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    if merger in ('pool', 'tome'):
        cfg.model.backbone.merger = merger
        # an option of the IB step, which they do not have
        cfg.model.backbone.pop('detach_score_inputs', None)
        # no class statistics to keep, no mask parameters to be idle
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if 'LTMStatisticsHook' not in h['type']]
        cfg.model_wrapper_cfg.find_unused_parameters = False
    elif merger == 'ltm' and start == 'plain':
        for hook in cfg.custom_hooks:
            if 'LTMStatisticsHook' in hook['type']:
                hook['require_statistics'] = False
    return cfg


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


def ratio_name(ratio) -> str:
    """How names and tables write a ratio: ``r0.7``, ``shipped``."""
    return ratio if ratio == SHIPPED else f'r{ratio}'


def run_name(merger, ratio=None, start='scratch') -> str:
    """Folder name of a row's runs (scratch rows keep their old names)."""
    name = merger if ratio is None else f'{merger}_{ratio_name(ratio)}'
    return name if start in ('scratch', 'plain') else f'{name}_{start}'


def mean_and_spread(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread



@dataclass(frozen=True)
class Comparison:
    """What a comparison trains and measures (the command line's settings).

    ``input_size``: detection trained, tested and timed at this square size
    instead of the demo's (anchors scaled alike); ``two_stage``: rows
    fine-tune from stage-1 classifiers; ``iters``: timed forwards per model;
    ``threads``: torch threads of the runs and the timing; ``devices``:
    where latency is timed.
    """
    task: str
    backbone: str
    epochs: int
    seeds: int = 1
    input_size: Optional[int] = None
    two_stage: bool = False
    iters: int = 20
    threads: int = 2
    devices: Tuple[str, ...] = ('cpu', )
    root: Path = REPOSITORY

    def input_hw(self) -> Tuple[int, int]:
        """The input size of training, MACs and latency: ``input_size``,
        else the stage-2 configs' own size in two-stage mode, else the
        demo's."""
        if self.input_size is not None:
            return self.input_size, self.input_size
        if self.two_stage:
            return input_size_from_config(
                load_config(str(self.root / TWO_STAGE[self.task].plain)))
        return TASKS[self.task].input_hw

    def layers(self) -> int:
        """The backbone's merging layers (one ratio each)."""
        return layer_count(self.task, self.backbone, self.two_stage)

    def run_config(self, row: Row, seed: int = 0,
                   checkpoint: Optional[str] = None):
        """The config of one seed of ``row``."""
        return run_config(self.backbone, row.merger, row.ratio, self.epochs,
                          row.start, seed, checkpoint, self.input_size,
                          self.root, self.task)


def train_and_test(cfg, work_dir: str, threads: int,
                   force: bool = False) -> dict:
    """Train ``cfg`` in ``work_dir``, test it and write its metrics to
    ``work_dir/metrics.json`` (also returned).  An interrupted run goes on
    from its last epoch's checkpoint unless ``force``."""
    from mmengine.runner import Runner
    cfg.work_dir = work_dir
    cfg.resume = not force and Path(work_dir, 'last_checkpoint').exists()
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = {k: float(v) for k, v in runner.test().items()}
    Path(work_dir, 'metrics.json').write_text(json.dumps(metrics))
    return metrics


def cost(comparison: Comparison, specs: Sequence[Row]):
    """MACs and batch-1 latency (``{device: [ms per row]}``) of every row's
    model: untrained weights, random statistics where the row has
    statistics (cost does not depend on their values)."""
    from .synthetic_statistics import fill_synthetic_statistics
    input_hw = comparison.input_hw()
    models, macs = [], []
    for row in specs:
        # two-stage rows: the stage-2 config (K = the stage-1 classes);
        # nothing is loaded, so no checkpoint is needed
        cfg = comparison.run_config(row, checkpoint='not loaded')
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            model = TensorForward(build_model(cfg)).eval()
            if row.has_statistics:
                fill_synthetic_statistics(model)
            macs.append(count_complexity(
                model, torch.randn(1, 3, *input_hw)).macs)
        models.append(model)
    latency = {}
    for device in comparison.devices:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'LTM layer has no valid')
            stats = compare_latency([m.to(device) for m in models],
                                    input_hw,
                                    batch_sizes=(1, ),
                                    iters=comparison.iters,
                                    device=device)[1]
        latency[device] = [s.median_ms for s in stats]
        for model in models:
            model.cpu()
    return macs, latency


def write_table(comparison: Comparison, specs: Sequence[Row], metrics,
                macs, latency, out: Path, command: str) -> str:
    """Write ``out.md``: the table, the ``command`` that made it and how
    the runs were trained; returns its text.  ``metrics[i]``: the metric
    dicts of row ``i``'s seeds; ``macs``, ``latency``: :func:`cost`'s."""
    task = TASKS[comparison.task]
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
    model = 'SSDLite' if comparison.task == 'det' else \
        'DeepLabv3 (output stride 8)'
    title = (f'## Mergers at equal MACs: {model} {comparison.backbone}, '
             f'demo data')
    if comparison.input_size is not None:
        title += f' at {comparison.input_size} px'
    if two_stage:
        title += ', fine-tuned from stage-1 classifiers'
    shipped = any(row.ratio == SHIPPED for row in specs)
    if shipped:
        title += ', shipped merge ratios'
    epochs = f'{comparison.epochs} epoch' + (
        's' if comparison.epochs > 1 else '')
    accuracy = task.metrics[0][1]
    reduced = [] if comparison.epochs >= task.demo_epochs else [
        f'**Reduced run ({epochs} instead of the demo recipe\'s '
        f'{task.demo_epochs}): the models have barely started to learn, so '
        f'the {accuracy} column does not rank the mergers; MACs and latency '
        f'do not depend on training.**', '']
    height, width = comparison.input_hw()
    seeds = ', '.join(str(s) for s in range(comparison.seeds))
    ratio_text = '`merge_ratios = [r] * every layer`'
    if shipped:
        ratio_text += ' or the shipped ratios below'
    if two_stage:
        how = (f'Fine-tuned for {epochs} each from the stage-1 classifiers '
               f'of `make demo` (demo recipe, seeds {seeds}; {ratio_text}): '
               f'`plain`, `pool`, `tome` and `ltm` without statistics start '
               f'from the plain classifier; `ltm` with stage-1 statistics '
               f'from the LTM classifier, its statistics frozen; `ltm` with '
               f'one-pass statistics from the plain classifier with '
               f'statistics from one pass of `tools/collect_statistics.py` '
               f'over the stage-1 data.')
    else:
        how = (f'Trained from scratch for {epochs} each (demo recipe, seeds '
               f'{seeds}; {ratio_text}). From scratch `ltm` has no class '
               f'statistics (they come from ImageNet pre-training): it '
               f'merges with its learned window logits only, without the IB '
               f'step.')
    if shipped:
        path = SHIPPED_CONFIGS[comparison.task, comparison.backbone]
        ratios = merge_ratios(comparison.task, comparison.backbone, SHIPPED,
                              comparison.layers(), comparison.root)
        how += (f' `shipped`: the per-layer merge ratios of `{path}`, '
                f'{ratios}.')
    text = '\n'.join([
        title, '', '```', f'python {task.data_tool} {task.data}', command,
        '```', '', *reduced,
        f'{how} {accuracy} on the generated val split, mean ± sample '
        f'standard deviation over seeds; MACs at 1x3x{height}x{width}; '
        f'latency: median of {comparison.iters} alternating batch-1 forwards, '
        f'{comparison.threads} thread(s).',
        '', *lines, '', f'![{accuracy} against MACs]({out.stem}.png)', ''])
    out.with_suffix('.md').write_text(text)
    return text


def plot(comparison: Comparison, specs: Sequence[Row], metrics, macs,
         out: Path) -> None:
    """``out.png``: every row's accuracy (mean and standard deviation)
    against its MACs, one line per merger and start."""
    task = TASKS[comparison.task]
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
                ax.annotate(ratio if ratio == SHIPPED else f'r={ratio}',
                            (x, y), textcoords='offset points',
                            xytext=(4, 4), fontsize=8)
    height, width = comparison.input_hw()
    ax.set_xlabel(f'GMACs ({height}x{width})')
    ax.set_ylabel(f'{column} (demo val)')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix('.png'))



"""The logic of docs/benchmarks.md (``benchmarks/make_page.py``, ``make
bench``): every figure with the command behind it.

Sections: MACs/params of every plain/LTM config pair (:data:`PAIRS`); CPU
latency of each pair (alternating in one process), and of the SSDLite pairs
again with freed memory reused and channels-last (run last: the allocator
setting holds for the rest of the process); a compression-ratio sweep of the
LTM-MobileViT-S classifier (MACs vs r, paper Table V) and latency vs batch
size, both plotted; the LTM layer cost and the statistics hook overhead
(their scripts' output); the pages other benchmark scripts left in
docs/benchmarks/ (merger comparisons, ONNX Runtime latency, GPU pages),
copied because they train detectors, export for minutes or need a GPU.
The figures that the targets table judges are kept in a
:class:`PageFigures`.
"""
import io
import subprocess
import sys
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import torch

from ltm_mm.apis import load_config
from ltm_mm.engine.cpu_memory import reuse_freed_memory
from .flops import (TensorForward, build_model, config_complexity,
                    count_complexity, load_config_model)
from .latency import compare_latency, paired_ratio
from .synthetic_statistics import fill_synthetic_statistics

#: (title, LTM config, plain config, input H x W)
PAIRS = [
    ('SSDLite MobileViT-S', 'configs/ltm_ssdlite_mobilevit_s.py',
     'configs/ssdlite_mobilevit_s.py', (320, 320)),
    ('SSDLite MobileViT-XS', 'configs/ltm_ssdlite_mobilevit_xs.py',
     'configs/ssdlite_mobilevit_xs.py', (320, 320)),
    ('SSDLite EfficientViT-B1', 'configs/ltm_ssdlite_efficientvit_b1.py',
     'configs/ssdlite_efficientvit_b1.py', (320, 320)),
    ('Mask R-CNN EfficientViT-B1 FPN',
     'configs/ltm_mask-rcnn_efficientvit-b1_fpn_1x_coco.py',
     'configs/mask-rcnn_efficientvit-b1_fpn_1x_coco.py', (800, 1333)),
    ('MobileViT-S classifier',
     'configs/pretrain/ltm-mobilevit-small_8xb128-300e_in1k.py',
     'configs/pretrain/mobilevit-small_8xb128-300e_in1k.py', (256, 256)),
    ('MobileViT-XS classifier',
     'configs/pretrain/ltm-mobilevit-xsmall_8xb128-300e_in1k.py',
     'configs/pretrain/mobilevit-xsmall_8xb128-300e_in1k.py', (256, 256)),
    ('EfficientViT-B1 classifier',
     'configs/pretrain/ltm-efficientvit-b1_8xb128-300e_in1k.py',
     'configs/pretrain/efficientvit-b1_8xb128-300e_in1k.py', (224, 224)),
]
# MMSegmentation: the input is one forward of the segmentor (whole image
# at the training crop, or one slide window: a 1024x2048 Cityscapes image
# is 3 windows)
PAIRS += [
    ('DeepLabv3 MobileViT-S OS16 (VOC)',
     'configs/seg/deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py',
     'configs/seg/deeplabv3_mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py',
     (512, 512)),
    ('SegFormer-head EfficientViT-B1 (ADE20K)',
     'configs/seg/segformer-head_ltm-efficientvit-b1_8xb2-160k_ade20k-'
     '512x512.py',
     'configs/seg/segformer-head_efficientvit-b1_8xb2-160k_ade20k-512x512.py',
     (512, 512)),
    ('SegFormer-head EfficientViT-B1 (Cityscapes, one window)',
     'configs/seg/segformer-head_ltm-efficientvit-b1_8xb1-160k_cityscapes-'
     '1024x1024.py',
     'configs/seg/segformer-head_efficientvit-b1_8xb1-160k_cityscapes-'
     '1024x1024.py', (1024, 1024)),
]
SWEEP_CONFIG = 'configs/pretrain/ltm-mobilevit-small_8xb128-300e_in1k.py'
SWEEP_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)


@dataclass
class PageFigures:
    """The ratios the targets table judges, by metric key: ``metrics``
    LTM/plain as the tables print them (latency: ratio of the medians),
    ``paired`` the median of the per-round latency ratios."""
    metrics: dict = field(default_factory=dict)
    paired: dict = field(default_factory=dict)

    def ratio_cells(self, key, ltm, plain) -> str:
        """The "ratio" and "paired (IQR)" cells of a latency row; both
        ratios are kept under ``key``."""
        self.metrics[key] = ltm.median_ms / plain.median_ms
        paired = paired_ratio(ltm, plain)
        self.paired[key] = paired.median
        return (f'**{self.metrics[key]:.3f}** | '
                f'{paired.median:.3f} ({paired.iqr:.3f})')


def flops_section(pairs, figures: PageFigures) -> str:
    lines = [
        '## MACs and parameters, LTM vs plain', '',
        'One forward on a `(1, 3, H, W)` batch; LTM layers carry (synthetic)',
        'valid class statistics so their IB step is counted. Per pair:', '',
        '```', '.venv/bin/python tools/get_flops.py LTM_CFG --compare '
        'PLAIN_CFG', '```', '',
        '| model | input | LTM GMACs | plain GMACs | ratio | LTM params (M) '
        '| plain params (M) |', '|---|---|---|---|---|---|---|'
    ]
    for title, ltm_cfg, plain_cfg, hw in pairs:
        ltm = config_complexity(ltm_cfg, hw)
        plain = config_complexity(plain_cfg, hw)
        figures.metrics[('macs', title)] = ltm.macs / plain.macs
        lines.append(
            f'| {title} | {hw[0]}x{hw[1]} | {ltm.macs / 1e9:.3f} | '
            f'{plain.macs / 1e9:.3f} | **{ltm.macs / plain.macs:.3f}** | '
            f'{ltm.params / 1e6:.3f} | {plain.params / 1e6:.3f} |')
    return '\n'.join(lines)


PAIRED_NOTE = (
    '"ratio" is LTM\'s median over plain\'s; "paired" is the median of the '
    'per-round ratios (each LTM forward over the plain forward next to it), '
    'with their interquartile range: a burst of load on this shared machine '
    'that straddles several rounds moves the first, much less the second.')


def latency_section(pairs, iters, figures: PageFigures) -> str:
    lines = [
        '## CPU latency, LTM vs plain', '',
        f'{torch.get_num_threads()} threads, random weights (synthetic '
        f'statistics), eval mode, median of {iters} forwards per model '
        'alternating LTM, plain after warm-up. Per pair:', '', '```',
        '.venv/bin/python tools/benchmark.py LTM_CFG --compare PLAIN_CFG '
        '--batch-sizes 1 8', '```', '',
        PAIRED_NOTE, '',
        '| model | input | batch | LTM ms | plain ms | ratio | paired (IQR) '
        '| LTM img/s | plain img/s |', '|---|---|---|---|---|---|---|---|---|'
    ]
    for title, ltm_cfg, plain_cfg, hw in pairs:
        batches = (1, ) if hw[0] * hw[1] > 500_000 else (1, 8)
        models = [load_config_model(c, hw).model for c in (ltm_cfg,
                                                           plain_cfg)]
        count = max(3, iters // 4) if hw[0] * hw[1] > 500_000 else iters
        results = compare_latency(models, hw, batch_sizes=batches,
                                  iters=count, warmup=2)
        for batch, (ltm, plain) in results.items():
            lines.append(
                f'| {title} | {hw[0]}x{hw[1]} | {batch} | '
                f'{ltm.median_ms:.1f} | {plain.median_ms:.1f} | '
                f'{figures.ratio_cells(("latency", title, batch), ltm, plain)} | '
                f'{ltm.throughput:.1f} | {plain.throughput:.1f} |')
    return '\n'.join(lines)


def sweep_section(plot_dir: Path) -> str:
    import matplotlib.pyplot as plt
    cfg = load_config(SWEEP_CONFIG)
    rows = []
    for ratio in SWEEP_RATIOS:
        cfg.model.backbone.merge_ratios = [ratio] * 9
        model = build_model(cfg)
        fill_synthetic_statistics(model)
        counted = count_complexity(TensorForward(model),
                                   torch.randn(1, 3, 256, 256))
        rows.append((ratio, counted.macs / 1e9))
    base = rows[0][1]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot([r for r, _ in rows], [m for _, m in rows], 'o-')
    ax.set_xlabel('compression ratio r (all 9 layers)')
    ax.set_ylabel('GMACs at 256x256')
    ax.set_title('LTM-MobileViT-S classifier')
    ax.invert_xaxis()
    fig.tight_layout()
    fig.savefig(plot_dir / 'ratio_sweep.png')
    plt.close(fig)
    lines = [
        '## Compression-ratio sweep (paper Table V)', '',
        'LTM-MobileViT-S classifier at 256x256, the same r on all nine '
        'transformer layers (r = 1.0 is plain MobileViT-S):', '', '```',
        '.venv/bin/python benchmarks/make_page.py docs/benchmarks.md', '```',
        '', '| r | GMACs | vs r = 1 |', '|---|---|---|'
    ]
    lines += [f'| {r:.1f} | {m:.3f} | {m / base:.3f} |' for r, m in rows]
    lines += ['', '![MACs vs r](benchmarks/ratio_sweep.png)']
    return '\n'.join(lines)


def batch_section(plot_dir: Path, iters) -> str:
    import matplotlib.pyplot as plt
    title, ltm_cfg, plain_cfg, hw = PAIRS[0]
    models = [load_config_model(c, hw).model for c in (ltm_cfg, plain_cfg)]
    batches = (1, 2, 4, 8, 16)
    results = compare_latency(models, hw, batch_sizes=batches,
                              iters=max(3, iters // 2), warmup=2)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for index, label in enumerate(('LTM', 'plain')):
        ax.plot(batches, [results[b][index].throughput for b in batches],
                'o-', label=label)
    ax.set_xlabel('batch size')
    ax.set_ylabel('images / s (CPU)')
    ax.set_title(title + ' at 320x320')
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot_dir / 'throughput_vs_batch.png')
    plt.close(fig)
    lines = [
        '## Throughput vs batch size', '', f'{title}, 320x320, '
        f'{torch.get_num_threads()} threads:', '',
        '| batch | LTM img/s | plain img/s | ratio |', '|---|---|---|---|'
    ]
    for batch in batches:
        ltm, plain = results[batch]
        lines.append(f'| {batch} | {ltm.throughput:.1f} | '
                     f'{plain.throughput:.1f} | '
                     f'{ltm.throughput / plain.throughput:.3f} |')
    lines += ['', '![throughput vs batch](benchmarks/throughput_vs_batch.png)']
    return '\n'.join(lines)


#: (what, metric key, target ratio or None, where it comes from)
TARGETS = [
    ('SSDLite LTM-MobileViT-S, 320: MACs LTM/plain', ('macs',
     'SSDLite MobileViT-S'), 0.875, 'paper Table III: 2.4G -> 2.1G'),
    ('LTM-MobileViT-S classifier, 256: MACs LTM/plain', ('macs',
     'MobileViT-S classifier'), 0.84, 'paper Table II: 1.4G -> 1.17G'),
    ('SSDLite LTM-MobileViT-S, 320, batch 1: CPU latency LTM/plain',
     ('latency', 'SSDLite MobileViT-S', 1), 0.90, 'backbone issue'),
    ('SSDLite LTM-MobileViT-S, 320, batch 8: CPU latency LTM/plain',
     ('latency', 'SSDLite MobileViT-S', 8), 0.90, 'speed issue'),
    ('SSDLite LTM-MobileViT-S, 320, batch 1: CPU latency LTM/plain, freed '
     'memory reused, channels-last', ('deployed', 'SSDLite MobileViT-S', 1),
     0.95, 'speed issue'),
    ('SSDLite LTM-MobileViT-S, 320, batch 8: CPU latency LTM/plain, freed '
     'memory reused, channels-last', ('deployed', 'SSDLite MobileViT-S', 8),
     0.90, 'speed issue'),
    ('LTM-EfficientViT-B1 classifier, 224: MACs LTM/plain', ('macs',
     'EfficientViT-B1 classifier'), 0.85, 'paper Table II: 0.52G -> 0.44G'),
    ('SSDLite LTM-EfficientViT-B1, 320: MACs LTM/plain', ('macs',
     'SSDLite EfficientViT-B1'), None, 'paper Table III: 1.5G -> 1.4G'),
    ('SSDLite LTM-EfficientViT-B1, 320, batch 1: CPU latency LTM/plain',
     ('latency', 'SSDLite EfficientViT-B1', 1), 1.00, 'speed issue'),
    ('Mask R-CNN LTM-EfficientViT-B1, 800x1333: MACs LTM/plain', ('macs',
     'Mask R-CNN EfficientViT-B1 FPN'), None, 'reported'),
    ('Mask R-CNN LTM-EfficientViT-B1, 800x1333, batch 1: latency LTM/plain',
     ('latency', 'Mask R-CNN EfficientViT-B1 FPN', 1), None, 'reported'),
]


def deployed_latency_section(pairs, iters,
                             figures: PageFigures) -> str:
    """SSDLite pairs with freed CPU memory reused (for the rest of this
    process) and both models in channels-last."""
    reused = reuse_freed_memory()
    lines = [
        '## CPU latency with freed memory reused and channels-last', '',
        'The SSDLite pairs again, as CPU inference is best run (docs/'
        'speed.md, "Page faults and memory layout on the CPU"): glibc keeps '
        'freed memory for reuse instead of faulting in fresh pages for every '
        'large tensor' + ('' if reused else ' (not here: the C library is '
                          'not glibc)') + ', and both models and the input '
        f'are in channels-last. Median of {iters} forwards per model, '
        'alternating. Per pair:', '', '```',
        '.venv/bin/python tools/benchmark.py LTM_CFG --compare PLAIN_CFG '
        '--batch-sizes 1 8 --reuse-freed-memory --channels-last', '```', '',
        PAIRED_NOTE, '',
        '| model | input | batch | LTM ms | plain ms | ratio | paired (IQR) |',
        '|---|---|---|---|---|---|---|'
    ]
    for title, ltm_cfg, plain_cfg, hw in pairs:
        if not title.startswith('SSDLite'):
            continue
        models = [load_config_model(c, hw).model.to(
            memory_format=torch.channels_last) for c in (ltm_cfg, plain_cfg)]
        results = compare_latency(models, hw, batch_sizes=(1, 8),
                                  iters=iters, warmup=2,
                                  memory_format=torch.channels_last)
        for batch, (ltm, plain) in results.items():
            lines.append(
                f'| {title} | {hw[0]}x{hw[1]} | {batch} | '
                f'{ltm.median_ms:.1f} | {plain.median_ms:.1f} | '
                f'{figures.ratio_cells(("deployed", title, batch), ltm, plain)} |')
    return '\n'.join(lines)


def targets_section(figures: PageFigures, targets=None) -> str:
    """The targets table from ``figures`` (:data:`TARGETS` unless
    ``targets`` is given)."""
    lines = ['## Targets at a glance', '',
             'Generated from the tables below (this run). Latency is '
             'judged by the ratio of the medians; the paired ratio is shown '
             'beside it.', '',
             '| figure | measured | target | met | source |',
             '|---|---|---|---|---|']
    for what, key, target, source in (TARGETS if targets is None
                                      else targets):
        value = figures.metrics.get(key)
        if value is None:
            continue
        met = '-' if target is None else ('yes' if value <= target else
                                          '**no**')
        goal = '-' if target is None else f'<= {target}'
        measured = f'{value:.3f}'
        if key in figures.paired:
            measured += f' (paired {figures.paired[key]:.3f})'
        lines.append(f'| {what} | {measured} | {goal} | {met} | {source} |')
    return '\n'.join(lines)


def script_section(title, command, intro, root: Path) -> str:
    """The output of a benchmark script run from ``root``, without the
    statistics hook's log lines."""
    result = subprocess.run([sys.executable, *command], capture_output=True,
                            text=True, cwd=root)
    output = '\n'.join(line for line in result.stdout.splitlines()
                       if not line.startswith('LTM statistics'))
    return '\n'.join([f'## {title}', '', intro, '', '```',
                      '.venv/bin/python ' + ' '.join(command), '```', '',
                      output.strip()])


def copied_sections(plot_dir: Path, pattern: str) -> List[str]:
    """Pages other scripts wrote into ``plot_dir`` (``mergers_*.md``,
    ``onnxruntime_*.md``, ``gpu_*.md``), kept as they are; links to the
    merger plots are made relative to docs/."""
    return [path.read_text().strip().replace('](mergers_',
                                             '](benchmarks/mergers_')
            for path in sorted(plot_dir.glob(pattern))]


def build_page(out: Path, root: Path, iters: int) -> None:
    """Measure every section and write the page to ``out`` (plots beside it
    in ``out.parent / 'benchmarks'``); configs and scripts are relative to
    ``root``."""
    import matplotlib
    matplotlib.use('Agg')
    warnings.filterwarnings('ignore')
    plot_dir = out.parent / 'benchmarks'
    plot_dir.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in PAIRS if (root / p[1]).is_file()]
    figures = PageFigures()
    with redirect_stdout(io.StringIO()):  # mmengine's build chatter
        sections = [
            flops_section(pairs, figures),
            latency_section(pairs, iters, figures),
            sweep_section(plot_dir),
            batch_section(plot_dir, iters),
        ]
        # last in this process: the allocator setting cannot be undone
        sections.insert(2, deployed_latency_section(pairs, iters, figures))
    sections.append(script_section(
        'LTM layer cost: mask module + merge vs one attention sublayer',
        ['benchmarks/ltm_layer_cost.py', '--iters', str(iters + 10)],
        'Everything an LTM layer adds (window logits, IB step with K = 1000 '
        'valid statistics and its MLP, mask, merge of Z) against the '
        'attention sublayer it follows (QKV projection, attention, output '
        'projection), same N and D.', root))
    sections.append(script_section(
        'Statistics hook overhead',
        ['benchmarks/hook_overhead.py', '--iters', str(iters)],
        'Train iterations with LTMStatisticsHook collecting vs not, '
        'alternating; plus the direct timing of the hook\'s own work.',
        root))
    for pattern in ('onnxruntime_*.md', 'mergers_*.md', 'gpu_*.md'):
        sections.extend(copied_sections(plot_dir, pattern))
    header = (root / 'benchmarks' / 'page_header.md').read_text()
    sections.insert(0, targets_section(figures))
    out.write_text(header.rstrip() + '\n\n' + '\n\n'.join(sections) + '\n')

"""CPU latency of the shipped LTM/plain config pairs in ONNX Runtime.

    python benchmarks/onnxruntime_latency.py \\
        [--out docs/benchmarks/onnxruntime_latency.md] [--threads 2] \\
        [--iters 10] [--exporter torchscript]

Each pair's networks are exported (random weights, synthetic statistics,
as in the PyTorch latency table of docs/benchmarks.md) and timed
alternately in ONNX Runtime at batch 1 and 8 (:mod:`ltm_mm.deploy`);
``make bench`` copies the table into docs/benchmarks.md.  Mask R-CNN is
left out: its exported part is backbone and FPN only.
"""
import argparse
import io
import shlex
import sys
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ltm_mm  # noqa: E402,F401
from ltm_mm.analysis.flops import load_config_model  # noqa: E402
from ltm_mm.analysis.latency import compare_latency, paired_ratio  # noqa
from ltm_mm.deploy import onnxruntime_modules  # noqa: E402

sys.path.insert(0, str(ROOT / 'benchmarks'))
from ltm_mm.analysis.benchmark_page import \
    PAIRS as PAGE_PAIRS  # noqa: E402

# the PyTorch latency table's pairs (benchmarks/make_page.py), less the
# classifiers, Mask R-CNN (exported part: backbone and FPN only) and the
# 1024 x 1024 Cityscapes window
TITLES = ('SSDLite MobileViT-S', 'SSDLite MobileViT-XS',
          'SSDLite EfficientViT-B1', 'DeepLabv3 MobileViT-S OS16 (VOC)',
          'SegFormer-head EfficientViT-B1 (ADE20K)')
PAIRS = [(title, ltm_cfg, plain_cfg)
         for title, ltm_cfg, plain_cfg, _ in PAGE_PAIRS if title in TITLES]


def pair_rows(title, ltm_cfg, plain_cfg, args) -> list:
    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ltm = load_config_model(str(ROOT / ltm_cfg))
        plain = load_config_model(str(ROOT / plain_cfg), ltm.input_size)
        models = onnxruntime_modules([ltm.model, plain.model],
                                     ltm.input_size, args.exporter,
                                     args.threads)
    results = compare_latency(models, ltm.input_size,
                              batch_sizes=args.batch_sizes,
                              iters=args.iters, warmup=2)
    height, width = ltm.input_size
    rows = []
    for batch, (first, second) in results.items():
        paired = paired_ratio(first, second)
        rows.append(
            f'| {title} | {height}x{width} | {batch} | '
            f'{first.median_ms:.1f} | {second.median_ms:.1f} | '
            f'**{first.median_ms / second.median_ms:.3f}** | '
            f'{paired.median:.3f} ({paired.iqr:.3f}) |')
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out',
                        default='docs/benchmarks/onnxruntime_latency.md')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--exporter', choices=['dynamo', 'torchscript'],
                        default='torchscript')
    parser.add_argument('--pairs', nargs='+', default=None,
                        help='titles of the pairs to time (default all)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for title, ltm_cfg, plain_cfg in PAIRS:
        if args.pairs is None or title in args.pairs:
            rows += pair_rows(title, ltm_cfg, plain_cfg, args)
    import onnxruntime
    command = 'python benchmarks/onnxruntime_latency.py ' + ' '.join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    text = '\n'.join([
        '## CPU latency in ONNX Runtime, LTM vs plain', '', '```',
        command.strip(), '```', '',
        f'ONNX Runtime {onnxruntime.__version__} (CPU, {args.threads} '
        f'intra-op threads), networks exported with the {args.exporter} '
        f'exporter (backbone, neck, head outputs; random weights, synthetic '
        f'statistics), median of {args.iters} forwards per model '
        f'alternating LTM, plain after warm-up; "paired" as in the PyTorch '
        f'table.', '',
        '| model | input | batch | LTM ms | plain ms | ratio | paired (IQR) |',
        '|---|---|---|---|---|---|---|', *rows, ''])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

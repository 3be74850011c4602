"""Where the time of one LTM-EfficientViT block goes, part by part.

In restore mode an LTM-EfficientViT block runs its context module (LiteMLA)
on the input grid, builds the merge plan (the mask module), merges ``Z``,
runs the MBConv branch on the merged grid, unmerges its output and adds it
to ``Z`` (the plain block adds the full-grid MBConv output the same way).
Merging pays only if the MBConv time it saves exceeds the mask module, the
merge and the unmerge; this script times each part on the
block's real input (captured from the plain backbone), eval mode, random
valid class statistics, every part called alternately, best of ``--reps``
rounds of ``--calls`` calls (the machine is shared: the minimum is the
least disturbed figure).

    python benchmarks/efficientvit_block_parts.py [--size 320x320]
        [--ratio 0.5] [--num-classes 1000] [--threads 1] [--batch 1]

Rows: each merging block (``stages.S.blocks.B``) with its grid; columns in
ms: the plain block, the LTM block, its parts, and the balance
``(MBConv full - MBConv merged) - (mask + merge + unmerge)`` (negative:
merging costs time).  ``mask`` is the mask module timed alone, called over
and over with its statistics in the caches; ``mask after context`` is
``(context + mask) - context``, the mask module as the block runs it, right
after the context module (with K = 1000 classes its statistics, about 5 MB
per layer, no longer sit in the caches then).
"""
import argparse
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltm_mm.analysis.block_timing import (COLUMNS, PARTS,  # noqa: E402
                                          best_ms, capture_inputs,
                                          merging_blocks, part_calls)
from ltm_mm.analysis.synthetic_statistics import \
    fill_synthetic_statistics  # noqa: E402
from ltm_mm.models.backbones import LTMEfficientViT  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='320x320', help='HxW of the image')
    parser.add_argument('--ratio', type=float, default=0.5,
                        help='merge ratio of every LTM layer')
    parser.add_argument('--arch', default='b1')
    parser.add_argument('--num-classes', type=int, default=1000,
                        help='K of the class statistics (ImageNet: 1000)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--reps', type=int, default=15)
    parser.add_argument('--calls', type=int, default=10)
    args = parser.parse_args(argv)
    if not 0 < args.ratio < 1:
        parser.error(f'--ratio must lie in (0, 1), got {args.ratio}')
    height, width = (int(v) for v in args.size.split('x'))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    torch.manual_seed(0)
    layers = len(merging_blocks(LTMEfficientViT(arch=args.arch)))
    model = LTMEfficientViT(arch=args.arch, merge_ratios=[args.ratio] * layers,
                            num_classes=args.num_classes).eval()
    fill_synthetic_statistics(model)
    blocks = merging_blocks(model)
    inputs = capture_inputs(model, blocks,
                            torch.randn(args.batch, 3, height, width))
    print(f'EfficientViT-{args.arch.upper()}, {args.size}, batch '
          f'{args.batch}, r = {args.ratio}, K = {args.num_classes}, '
          f'{args.threads} thread(s), best of {args.reps} rounds of '
          f'{args.calls} calls (ms)\n')
    head = ['block', 'grid', *COLUMNS, 'saving - overhead']
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    for name, block, _ in blocks:
        x = inputs[name]
        grid = 'x'.join(map(str, x.shape[-2:]))
        with torch.inference_mode():
            calls = part_calls(block, x)
            if calls is None:
                print(f'| {name} | {grid} | grid too small to merge |')
                continue
            ms = dict(zip(PARTS, best_ms(calls, args.reps, args.calls)))
        ms['mask after context'] = ms['context + mask'] - ms['context']
        saving = ms['MBConv full'] - ms['MBConv merged']
        overhead = ms['mask'] + ms['merge'] + ms['unmerge']
        print(f'| {name} | {grid} | ' +
              ' | '.join(f'{ms[c]:.2f}' for c in COLUMNS) +
              f' | {saving - overhead:+.2f} |', flush=True)


if __name__ == '__main__':
    main()

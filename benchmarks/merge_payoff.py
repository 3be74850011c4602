"""Where merging pays: per block, LTM latency and MACs over the plain block.

Merging costs a fixed overhead per LTM layer (mask module, merge, unmerge)
and saves work proportional to the tokens it removes, so whether a block
should merge depends on its grid.  For each merging-capable block of a
backbone at an input size, the block is timed on its real input (captured
from the plain backbone) with each candidate setting against the same block
without merging (same weights), alternating in one process, eval mode,
random valid class statistics.

    python benchmarks/merge_payoff.py [--archs mobilevit-s mobilevit-xs
        efficientvit-b1] [--sizes 320x320 800x1333] [--iters 15]
        [--threads 2] [--batch 1]

Columns: block, token grid (per sequence), setting (ratios of the block's
layers), MACs LTM/plain, latency LTM/plain, milliseconds saved per image.
"""
import argparse
import copy
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltm_mm.analysis.block_timing import (capture_inputs,  # noqa: E402
                                          merging_blocks)
from ltm_mm.analysis.flops import count_complexity  # noqa: E402
from ltm_mm.analysis.latency import (summarize,  # noqa: E402
                                     time_alternating)
from ltm_mm.analysis.synthetic_statistics import \
    fill_synthetic_statistics  # noqa: E402
from ltm_mm.models.backbones import (LTMEfficientViT,  # noqa: E402
                                     LTMMobileViT)

#: arch name -> (constructor, arch, per-block layer counts, candidate
#: settings as functions of a block's layer count)
MOBILEVIT_SETTINGS = {
    'first 0.7': lambda n: [0.7] + [1.0] * (n - 1),
    'first 0.5': lambda n: [0.5] + [1.0] * (n - 1),
    'all 0.7': lambda n: [0.7] * n,
    'all 0.5': lambda n: [0.5] * n,
}
EFFICIENTVIT_SETTINGS = {'0.7': lambda n: [0.7], '0.5': lambda n: [0.5]}
ARCHS = {
    'mobilevit-s': (LTMMobileViT, 'small', MOBILEVIT_SETTINGS),
    'mobilevit-xs': (LTMMobileViT, 'x_small', MOBILEVIT_SETTINGS),
    'efficientvit-b1': (LTMEfficientViT, 'b1', EFFICIENTVIT_SETTINGS),
}


def block_ratios(model, name, setting_layers):
    """The backbone's per-layer ratio vector with only block ``name``
    merging, as ``setting_layers``."""
    ratios = []
    for block_name, _, layers in merging_blocks(model):
        ratios += setting_layers if block_name == name else [1.0] * layers
    return ratios


def grid_of(block, x):
    if hasattr(block, 'patch_size'):
        return (x.shape[-2] // block.patch_size[0],
                x.shape[-1] // block.patch_size[1])
    return tuple(x.shape[-2:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--archs', nargs='+', default=list(ARCHS),
                        choices=list(ARCHS))
    parser.add_argument('--sizes', nargs='+', default=['320x320', '800x1333'])
    parser.add_argument('--iters', type=int, default=15)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=1,
                        help='images per forward (the fixed cost of a '
                        'merge is shared by the batch)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    print(f'threads {args.threads}, batch {args.batch}, median of '
          f'{args.iters} alternating runs per pair\n')
    print('| backbone | input | block | grid | setting | MACs LTM/plain '
          '| latency LTM/plain | ms saved per forward |')
    print('|---|---|---|---|---|---|---|---|')
    for arch_name in args.archs:
        build, arch, settings = ARCHS[arch_name]
        torch.manual_seed(0)
        plain = build(arch, merge_ratios=1.0).eval()
        blocks = merging_blocks(plain)
        for size in args.sizes:
            height, width = (int(v) for v in size.split('x'))
            image = torch.randn(args.batch, 3, height, width)
            inputs = capture_inputs(plain, blocks, image)
            for name, plain_block, layers in blocks:
                x = inputs[name]
                for label, setting in settings.items():
                    ltm = build(arch, merge_ratios=block_ratios(
                        plain, name, setting(layers)))
                    ltm.load_state_dict(plain.state_dict(), strict=False)
                    fill_synthetic_statistics(ltm)
                    ltm_block = dict(
                        (n, b) for n, b, _ in merging_blocks(ltm))[name].eval()
                    base = copy.deepcopy(plain_block).eval()
                    macs = [count_complexity(b, (x, )).macs
                            for b in (ltm_block, base)]
                    with torch.inference_mode():
                        times = time_alternating(
                            [lambda: ltm_block(x), lambda: base(x)],
                            iters=args.iters, warmup=3)
                    ms = [summarize(t, 1).median_ms for t in times]
                    grid = 'x'.join(map(str, grid_of(plain_block, x)))
                    print(f'| {arch_name} | {size} | {name} | {grid} | '
                          f'{label} | {macs[0] / macs[1]:.3f} | '
                          f'{ms[0] / ms[1]:.3f} | {ms[1] - ms[0]:.2f} |',
                          flush=True)


if __name__ == '__main__':
    main()

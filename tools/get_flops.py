"""MACs and parameters of a config's model, optionally against another one.

    python tools/get_flops.py CFG [--compare CFG2] [--shape H W]

MACs are multiply-accumulates (the paper's "FLOPs"; 1 MAC = 2 FLOPs) of one
forward on a (1, 3, H, W) batch, scaled-dot-product attention and token
merging included, normalisation and elementwise ops not (see
:mod:`ltm_mm.analysis.flops`).  H, W come from --shape or from each
config's test pipeline.  Weights are not loaded; LTM layers get random
valid class statistics so that their IB step and MLP are counted as in a
trained model (``--no-statistics`` measures them without: about 2% less for
LTM-MobileViT-S).
"""
import argparse
import sys

import ltm_mm  # noqa: F401
from ltm_mm.analysis.flops import config_complexity
from ltm_mm.apis import CLIError, check_file_exists


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config A')
    parser.add_argument('--compare', metavar='CFG2',
                        help='config B, shown beside A with the ratio A/B')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the test '
                        'pipeline\'s)')
    parser.add_argument('--no-statistics', action='store_true',
                        help='leave LTM layers without class statistics '
                        '(their IB step is then skipped)')
    return parser.parse_args(argv)


def format_table(labelled) -> str:
    """``labelled``: ``[(label, path, Complexity)]``, one or two."""
    lines = [f'{label} = {path}' for label, path, _ in labelled]
    header = ['', *(label for label, _, _ in labelled)]
    rows = [
        ['input', *('x'.join(map(str, c.input_shape))
                    for _, _, c in labelled)],
        ['GMACs', *(f'{c.macs / 1e9:.3f}' for _, _, c in labelled)],
        ['params (M)', *(f'{c.params / 1e6:.3f}' for _, _, c in labelled)],
    ]
    if len(labelled) == 2:
        first, second = labelled[0][2], labelled[1][2]
        header.append('ratio A/B')
        rows[0].append('')
        rows[1].append(f'{first.macs / second.macs:.3f}')
        rows[2].append(f'{first.params / second.params:.3f}')
    widths = [max(len(row[i]) for row in [header, *rows])
              for i in range(len(header))]
    lines += ['  '.join(cell.ljust(width) if i == 0 else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths))
                        ).rstrip()
              for row in [header, *rows]]
    for label, _, c in labelled:
        if c.uncounted:
            ops = ', '.join(f'{op.replace("aten::", "")} x{n}'
                            for op, n in sorted(c.uncounted.items()))
            lines.append(f'{label}: not counted (elementwise, other): {ops}')
    lines.append('MACs = multiply-accumulates (paper "FLOPs"; 1 MAC = '
                 '2 FLOPs); norms and elementwise ops excluded')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    paths = [('A', args.config)]
    if args.compare:
        paths.append(('B', args.compare))
    try:
        for _, path in paths:  # both named before anything is built
            check_file_exists(path, 'config file')
        labelled = [(label, path,
                     config_complexity(path, args.shape,
                                       not args.no_statistics))
                    for label, path in paths]
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(format_table(labelled))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Short training probe: do detectors learn alike in their first iterations?

Trains each config from its initialisation for ``--iters`` iterations on its
own train dataloader (the same seed for every config) and prints the mean
classification and box losses of every window of ``--every`` iterations,
side by side.  Used to compare an LTM detector with its plain baseline:

    python benchmarks/training_probe.py \\
        configs/demo/ssdlite_mobilevit-xs_demo.py \\
        configs/demo/ssdlite_ltm-mobilevit-xs_demo.py --iters 250

(the demo data must exist: ``python tools/make_demo_data.py data/demo``).
"""
import argparse
import logging
import warnings

import torch
from mmengine.config import DictAction

from ltm_mm.analysis.training_probe import probe
from ltm_mm.apis import CLIError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--iters', type=int, default=250)
    parser.add_argument('--every', type=int, default=25)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config')
    args = parser.parse_args(argv)
    if args.iters < args.every or args.every < 1:
        parser.error('need --iters >= --every >= 1')
    torch.set_num_threads(args.threads)
    logging.getLogger('mmengine').setLevel(logging.WARNING)
    warnings.filterwarnings('ignore', 'LTM layer has no valid')
    try:
        results = [probe(c, args.iters, args.every, args.seed,
                         args.cfg_options) for c in args.configs]
    except CLIError as error:
        raise SystemExit(f'error: {error}')
    print(f'mean loss_cls / loss_bbox per {args.every} iterations, '
          f'seed {args.seed}')
    for index, config in enumerate(args.configs):
        print(f'{chr(65 + index)} = {config}')
    header = '| iteration | ' + ' | '.join(
        f'{chr(65 + i)} cls | {chr(65 + i)} box'
        for i in range(len(args.configs))) + ' |'
    print(header)
    print('|---' * (1 + 2 * len(args.configs)) + '|')
    for window in zip(*results):
        cells = [f'{cls:.3f} | {box:.3f}' for _, cls, box in window]
        print(f'| {window[0][0]} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()

"""What the stage-1 classifier of the two-stage demo has learned: the
confusion matrix and the accuracy of each part of its ``colour_shape``
classes.

    python benchmarks/classifier_attributes.py \\
        configs/demo/mobilevit-xs_demo-pretrain.py \\
        work_dirs/demo_plain/pretrain/latest_checkpoint.pth [--split val]

Prints the confusion matrix (rows: true class), top-1 and the colour and
shape accuracies (:mod:`ltm_mm.analysis.attribute_accuracy`): the detector
fine-tuned from the classifier needs the shapes only.
"""
import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction
from mmengine.runner import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ltm_mm  # noqa: E402,F401
from ltm_mm.analysis.attribute_accuracy import (  # noqa: E402
    attribute_accuracy, confusion_matrix)
from ltm_mm.analysis.flops import build_model  # noqa: E402
from ltm_mm.apis import (  # noqa: E402
    CLIError, check_classification_config, check_file_exists, load_config,
    ordered_loader)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--split', choices=['train', 'val', 'test'],
                        default='val')
    parser.add_argument('--parts', nargs='+', default=['colour', 'shape'],
                        help="what each '_'-separated part of a class name "
                        'means')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build(args):
    """The classifier with its checkpoint and the split's loader (test
    pipeline, in order)."""
    check_file_exists(args.checkpoint, 'checkpoint')
    cfg = load_config(args.config, args.cfg_options)
    check_classification_config(cfg, 'a confusion matrix needs')
    loader = ordered_loader(cfg, args.split)
    model = build_model(cfg)
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    logger='current')
    return model, loader


def main(argv=None):
    args = parse_args(argv)
    try:
        model, loader = build(args)
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    classes = loader.dataset.metainfo['classes']
    confusion = confusion_matrix(model, loader, len(classes))
    accuracy = attribute_accuracy(confusion, classes, args.parts)
    width = max(map(len, classes))
    print(f'confusion matrix ({args.split}, rows: true class)')
    for name, row in zip(classes, confusion):
        print(f'  {name:>{width}s} ' + ' '.join(f'{n:3d}' for n in row))
    print(f'images: {int(confusion.sum())}')
    for key, value in accuracy.items():
        print(f'{key} accuracy: {100 * value:.1f}%')
    chance = {part: 1 / len({n.split("_")[i] for n in classes})
              for i, part in enumerate(args.parts)}
    print('chance: ' + ', '.join(f'{k} {100 * v:.1f}%'
                                 for k, v in chance.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())

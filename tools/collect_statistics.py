"""Collect LTM class statistics for a pre-trained classifier, without
training, and write a checkpoint that carries them.

    python tools/collect_statistics.py CONFIG CHECKPOINT --out OUT.pth
        [--split train] [--passes 1] [--max-images N] [--cfg-options k=v ...]

CONFIG is an LTM classification (pre-training) config, for example
``configs/pretrain/ltm-mobilevit-small_merging-only-50e_in1k.py``;
CHECKPOINT its weights, or a plain backbone's (mmpretrain's MobileViT
ImageNet weights load into LTM-MobileViT with its LTM parts at their
initial values: merging as area pooling, a zero score MLP).  The model runs
in eval mode, merging, over the images of ``--split`` (the config's
dataset of that split, read with its test pipeline: no augmentation) and
every LTM layer's statistics are computed from them as
``LTMStatisticsHook`` does in an epoch.  The first pass has no statistics
yet, so ``Q(a | y)`` is the smoothed identity; each further pass recomputes
them with the IB step of the previous pass running (and ``Q`` from
``phi``).  One pass over ImageNet replaces the 50-300 epochs of
pre-training that would otherwise collect them before COCO fine-tuning.

OUT gets the checkpoint's contents with the full model state (weights
unchanged, statistics filled) and ``meta['ltm_statistics']`` saying how
they were collected.  Detection and segmentation configs load it as any
pre-trained LTM backbone (``init_cfg`` with ``prefix='backbone.'``).
"""
import argparse
import os
import os.path as osp
import sys
import warnings

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.runner import load_checkpoint

import ltm_mm  # noqa: F401
from ltm_mm.analysis.flops import build_model
from ltm_mm.apis import (CLIError, check_classification_config,
                         check_file_exists, load_config, ordered_loader)
from ltm_mm.models.layers import find_merge_masks, refuse_baseline_mergers
from ltm_mm.statistics import StatisticsRound, soft_labels_from_samples


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True,
                        help='the checkpoint to write (not CHECKPOINT)')
    parser.add_argument('--split', choices=['train', 'val', 'test'],
                        default='train',
                        help="whose dataset to read (its '<split>_dataloader')")
    parser.add_argument('--passes', type=int, default=1,
                        help='passes over the data; each after the first '
                        'runs the IB step with the last pass\'s statistics')
    parser.add_argument('--max-images', type=int, default=None,
                        help='stop each pass after this many images')
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--smoothing', type=float, default=1e-2,
                        help='Laplace pseudo-count of Q(a | y)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def check_args(args) -> None:
    check_file_exists(args.checkpoint, 'checkpoint')
    if osp.abspath(args.out) == osp.abspath(args.checkpoint):
        raise CLIError(f'--out {args.out!r} is the input checkpoint; write '
                       f'the statistics to a new file')
    if args.passes < 1:
        raise CLIError(f'--passes must be >= 1, got {args.passes}')
    if args.max_images is not None and args.max_images < 1:
        raise CLIError(f'--max-images must be >= 1, got {args.max_images}')


def build_ltm_classifier(cfg):
    check_classification_config(cfg, 'class statistics need',
                                ' with an LTM backbone')
    model = build_model(cfg)
    refuse_baseline_mergers(model, 'tools/collect_statistics.py')
    masks = find_merge_masks(model)
    if not masks:
        raise CLIError('the model has no LTM layer: use a config whose '
                       'backbone is ltm_mm.LTMMobileViT or LTMEfficientViT')
    num_classes = {m.statistics.num_pretrain_classes for m in masks}
    if len(num_classes) != 1:
        raise CLIError(f'LTM layers disagree on num_classes: '
                       f'{sorted(num_classes)}')
    return model.eval(), masks, num_classes.pop()


def load_weights(model, checkpoint: str) -> dict:
    """Load ``checkpoint`` and return its contents; a plain checkpoint lacks
    the LTM keys, which keep their initial values (merging as area
    pooling)."""
    try:
        return load_checkpoint(model, checkpoint, map_location='cpu',
                               strict=False, logger='current')
    # ValueError: e.g. statistics of another class count; RuntimeError: not
    # a checkpoint dict
    except (ValueError, RuntimeError) as error:
        raise CLIError(str(error)) from None


def check_classes(loader, num_classes: int) -> None:
    classes = getattr(loader.dataset, 'metainfo', {}).get('classes')
    if classes is not None and len(classes) != num_classes:
        raise CLIError(
            f'the data set has {len(classes)} classes but the LTM '
            f'statistics are built for num_classes={num_classes}; set the '
            f"backbone's num_classes={len(classes)} (--cfg-options "
            f'model.backbone.num_classes={len(classes)})')


@torch.no_grad()
def collect(model, masks, num_classes, loader, passes, max_images,
            smoothing) -> list:
    """Run ``passes`` statistics rounds; the last round's summaries."""
    for index in range(passes):
        round_ = StatisticsRound(masks, num_classes, smoothing, merging=True)
        seen = 0
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            labels = soft_labels_from_samples(data['data_samples'],
                                              num_classes)
            model(data['inputs'], data['data_samples'], mode='tensor')
            round_.add(labels)
            seen += labels.shape[0]
            if max_images is not None and seen >= max_images:
                break
        print_log(f'pass {index + 1}/{passes}: {seen} images',
                  logger='current')
        summaries = round_.write(lambda line: print_log(line,
                                                        logger='current'))
        round_.close()
    return summaries


def save(model, checkpoint: dict, out: str, args, summaries) -> None:
    """Write ``checkpoint`` (the loaded source) with the model's state."""
    if 'state_dict' not in checkpoint:  # a bare state dict
        checkpoint = dict(state_dict=checkpoint)
    checkpoint['state_dict'] = {k: v.detach().cpu()
                                for k, v in model.state_dict().items()}
    meta = dict(checkpoint.get('meta') or {})
    meta['ltm_statistics'] = dict(
        collected_by='tools/collect_statistics.py', config=args.config,
        source_checkpoint=args.checkpoint, split=args.split, passes=args.passes,
        images=summaries[0]['samples'],
        classes_seen=summaries[0]['classes_seen'])
    checkpoint['meta'] = meta
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    torch.save(checkpoint, out)


def main(argv=None):
    args = parse_args(argv)
    try:
        check_args(args)
        cfg = load_config(args.config, args.cfg_options)
        model, masks, num_classes = build_ltm_classifier(cfg)
        loader = ordered_loader(cfg, args.split, args.batch_size)
        check_classes(loader, num_classes)
        source = load_weights(model, args.checkpoint)
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        summaries = collect(model, masks, num_classes, loader, args.passes,
                            args.max_images, args.smoothing)
    save(model, source, args.out, args, summaries)
    print(f'statistics of {len(masks)} LTM layers ({num_classes} classes) '
          f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Train a model from an OpenMMLab config (MMDetection's command line).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Detection, segmentation and classification configs alike: the config's
``default_scope`` (mmdet, mmseg, mmpretrain) picks the registries, and its
evaluator (``CocoMetric``, ``IoUMetric``, ``Accuracy``) the metrics.
"""
import argparse
import os
import sys

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ltm_mm  # noqa: F401  (registers models/hooks, applies compat fixes)
from ltm_mm.apis import (CLIError, apply_common_overrides, check_data_roots,
                         check_file_exists, enable_amp, load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training '
                        '(float16 with loss scaling on GPU, bfloat16 on CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work '
        'directory when no path is given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_runner(args):
    cfg = load_config(args.config, args.cfg_options)
    apply_common_overrides(cfg, args.config, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)  # float16 on GPU, bfloat16 on CPU
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise CLIError(f'{args.config} has no auto_scale_lr.'
                           'base_batch_size; --auto-scale-lr needs it.')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        check_file_exists(args.resume, 'checkpoint to resume from')
        cfg.resume, cfg.load_from = True, args.resume
    check_data_roots(cfg, ['train_dataloader', 'val_dataloader'])
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv=None):
    args = parse_args(argv)
    try:
        runner = build_runner(args)
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())

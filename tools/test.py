"""Test (and evaluate) a checkpoint from an OpenMMLab config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out F.pkl]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]

CHECKPOINT may be an ``.onnx`` file written by ``tools/export_onnx.py``:
the network then runs in ONNX Runtime (the backend follows from the file),
with the config's dataloader, post-processing and metric
(:class:`ltm_mm.deploy.DeployedModel`).

Detection, classification and segmentation configs alike: the config's
``default_scope`` (mmdet, mmpretrain, mmseg) decides what ``--out`` and
``--show-dir`` use; the metrics are the config's (``CocoMetric``,
``Accuracy``, ``IoUMetric``).
"""
import argparse
import os
import sys

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ltm_mm  # noqa: F401  (registers models/hooks, applies compat fixes)
from ltm_mm.apis import (CLIError, apply_common_overrides, check_data_roots,
                         check_file_exists, load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where evaluation results go')
    parser.add_argument('--out', help='dump predictions to a .pkl file')
    parser.add_argument('--show', action='store_true',
                        help='show prediction results')
    parser.add_argument('--show-dir',
                        help='save painted predictions under work_dir/'
                        'timestamp/SHOW_DIR')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _enable_visualization(cfg, args):
    """The visualization hook of the config's scope (mmdet, mmpretrain or
    mmseg)."""
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmpretrain':
        hook = cfg.default_hooks.setdefault(
            'visualization', dict(type='VisualizationHook'))
        hook.update(enable=True, out_dir=args.show_dir, show=args.show,
                    wait_time=args.wait_time)
        return cfg
    if scope == 'mmseg':  # SegVisualizationHook: painted maps per image
        hook = cfg.default_hooks.setdefault(
            'visualization', dict(type='SegVisualizationHook'))
        hook.update(draw=True, interval=1, show=args.show,
                    wait_time=args.wait_time)
        if args.show_dir:
            cfg.visualizer.save_dir = args.show_dir
        return cfg
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    return trigger_visualization_hook(cfg, args)


def _dump_metric(scope: str, out_file: str):
    """Metric that writes the predictions to ``out_file`` (.pkl)."""
    if scope == 'mmpretrain':
        from mmpretrain.evaluation import DumpResults as Dump
    elif scope == 'mmseg':  # per-pixel predictions, as SegDataSample dicts
        from mmengine.evaluator import DumpResults as Dump
    else:
        from mmdet.evaluation import DumpDetResults as Dump
    return Dump(out_file_path=out_file)


def use_onnx_runtime(cfg, onnx_file: str) -> None:
    """Test the exported network of ``onnx_file`` instead of the config's
    model: the config's model stays for its data preprocessor and
    post-processing.  Its statistics are constants of the exported graph,
    so the statistics hook has nothing to check."""
    cfg.model = dict(type='ltm_mm.DeployedModel', model=cfg.model,
                     onnx_file=onnx_file)
    cfg.load_from = None
    cfg.custom_hooks = [
        hook for hook in cfg.get('custom_hooks', [])
        if 'LTMStatisticsHook' not in str(hook.get('type'))
    ]


def build_runner(args):
    cfg = load_config(args.config, args.cfg_options)
    apply_common_overrides(cfg, args.config, args.work_dir, args.launcher)
    check_file_exists(args.checkpoint, 'checkpoint')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise CLIError(f'--out must name a .pkl file, got {args.out!r}')
    if args.checkpoint.endswith('.onnx'):
        use_onnx_runtime(cfg, args.checkpoint)
    else:
        cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = _enable_visualization(cfg, args)
    check_data_roots(cfg, ['test_dataloader'])
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            _dump_metric(cfg.get('default_scope', 'mmdet'), args.out))
    return runner


def main(argv=None):
    args = parse_args(argv)
    try:
        runner = build_runner(args)
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    runner.test()
    return 0


if __name__ == '__main__':
    sys.exit(main())

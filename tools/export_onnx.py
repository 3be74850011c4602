"""Export the network of a detector or segmentor config to ONNX.

    python tools/export_onnx.py CONFIG CHECKPOINT --shape H W \\
        --out model.onnx [--exporter dynamo|torchscript] [--opset 18]
        [--atol 1e-4] [--cfg-options k=v ...]

The graph holds backbone, neck and head up to the head's raw outputs
(single-stage detectors: class scores and box deltas per level; two-stage
detectors: the FPN levels; segmentors: the decode head's logits); box
decoding, NMS, RPN and RoI heads and the resizing of segmentation logits
stay in PyTorch, as in mmdeploy's partition (:mod:`ltm_mm.deploy`).  Class
statistics and window tables become constants.  The input size is fixed
by the export (``--shape``, default: the test pipeline's), the batch is
dynamic.  Before writing, the file is checked with ``onnx.checker`` and
ONNX Runtime is compared with PyTorch on a random batch: the export fails,
naming the largest difference, beyond ``--atol`` (and ``--rtol`` times
the output's size).

Evaluate it with ``python tools/test.py CONFIG model.onnx``; time it with
``python tools/benchmark.py CONFIG --backend onnxruntime``.
"""
import argparse
import os.path as osp
import sys
import warnings

import torch
from mmengine.config import DictAction
from mmengine.runner import load_checkpoint

import ltm_mm  # noqa: F401
from ltm_mm.analysis.flops import build_model, input_size_from_config
from ltm_mm.apis import CLIError, check_file_exists, load_config
from ltm_mm.deploy import DeployableNetwork, ExportMismatch, export_onnx
from ltm_mm.deploy.export import DEFAULT_OPSET, EXPORTERS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: the test pipeline\'s)')
    parser.add_argument('--exporter', choices=EXPORTERS, default='dynamo',
                        help='torch.onnx.export(dynamo=True) (default) or '
                        'the TorchScript tracer (dynamo=False, mmdeploy\'s)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument('--rtol', type=float, default=1e-4)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build_network(args) -> tuple:
    """``(DeployableNetwork with the checkpoint's weights, (H, W))``."""
    cfg = load_config(args.config, args.cfg_options)
    check_file_exists(args.checkpoint, 'checkpoint')
    if not args.out.endswith('.onnx'):
        raise CLIError(f'--out must name a .onnx file, got {args.out!r}')
    if osp.abspath(args.out) == osp.abspath(args.checkpoint):
        raise CLIError('--out must not be the checkpoint')
    input_hw = args.shape or input_size_from_config(cfg)
    if input_hw is None:
        raise CLIError(f'cannot tell the input size from the test pipeline '
                       f'of {args.config!r}; pass --shape H W')
    model = build_model(cfg)
    try:
        network = DeployableNetwork(model)
    except (TypeError, ValueError) as error:
        raise CLIError(str(error)) from None
    # strict: a checkpoint of another model must not export silently with
    # random weights where its keys did not match
    try:
        load_checkpoint(model, args.checkpoint, map_location='cpu',
                        strict=True, logger='silent')
    except RuntimeError as error:
        detail = ' '.join(str(error).split())
        raise CLIError(f'checkpoint {args.checkpoint!r} does not fit the '
                       f'model of {args.config!r}: '
                       f'{detail[:400]}...') from None
    return network.eval(), tuple(input_hw)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    try:
        network, input_hw = build_network(args)
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    metadata = dict(config=osp.abspath(args.config),
                    checkpoint=osp.abspath(args.checkpoint))
    try:
        with warnings.catch_warnings():
            # the exporters' own chatter (deprecations, fallbacks)
            warnings.simplefilter('ignore', category=FutureWarning)
            warnings.simplefilter('ignore', category=DeprecationWarning)
            report = export_onnx(network, input_hw, args.out,
                                 exporter=args.exporter, opset=args.opset,
                                 metadata=metadata, atol=args.atol,
                                 rtol=args.rtol)
    except (ExportMismatch, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    size_mb = osp.getsize(report.path) / 2**20
    print(f'wrote {report.path} ({size_mb:.1f} MiB, {report.exporter} '
          f'exporter, input (B, 3, {input_hw[0]}, {input_hw[1]}), batch '
          f'dynamic); ONNX Runtime vs PyTorch: max |diff| '
          f'{report.max_abs_diff:.2e} ({report.worst_output})')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""IB loss I(X~;X) - I(X~;Y) and IB bound per LTM layer of a classifier.

    python tools/analyze_ib.py CFG CKPT [--max-samples 1000]
        [--out work_dirs/ib.png] [--cfg-options k=v ...]

The plot goes beside the checkpoint (``ib_per_layer.png`` in its folder)
unless ``--out`` names another file.

Runs the config's test data through the model, prints a table like paper
Tables VI-VII and saves a per-layer plot like Fig. 2.  X~ is the merge each
layer actually applies (final weights after the IB step and the mask); the
last column gives its merged token count P against the layer's N.  Plain MobileViT
classifiers work too (same token definitions, no merging), so plain and LTM
can be compared side by side.
"""
import argparse
import sys
from pathlib import Path

import matplotlib
from mmengine.config import DictAction
from mmengine.runner import Runner, load_checkpoint

import ltm_mm  # noqa: F401
from ltm_mm.analysis.flops import build_model
from ltm_mm.analysis.ib_analysis import collect_records, layer_ib, plain_twin
from ltm_mm.apis import (CLIError, check_classification_config,
                         check_data_roots, check_file_exists, load_config)
from ltm_mm.models.layers import find_merge_masks

matplotlib.use('Agg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--max-samples', type=int, default=1000)
    parser.add_argument('--out', default=None,
                        help='where the per-layer plot (PNG) goes (default: '
                        'ib_per_layer.png beside the checkpoint)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(Path(args.checkpoint).parent / 'ib_per_layer.png')
    return args


def build_classifier(cfg, checkpoint):
    check_classification_config(cfg, 'the IB analysis needs')
    model = build_model(cfg)
    load_checkpoint(model, checkpoint, map_location='cpu')
    head = cfg.model.get('head', {})
    if not find_merge_masks(model):
        model.backbone = plain_twin(model.backbone,
                                    head.get('num_classes', 1000))
    return model.eval(), head.get('num_classes', 1000)


def format_table(rows) -> str:
    lines = ['| layer | r | merging | statistics | I(X~;X) | I(X~;Y) | '
             'IB loss | IB bound | tokens applied P / N |',
             '|---|---|---|---|---|---|---|---|---|']
    for index, row in enumerate(rows):
        lines.append(
            f'| {index} | {row["ratio"]:.2f} | {row["merging"]} | '
            f'{row["statistics"]} | {row["i_x"]:.4f} | {row["i_y"]:.4f} | '
            f'{row["ib_loss"]:.4f} | {row["ibb"]:.4f} | '
            f'{row["applied_num_merged"]} / {row["num_tokens"]} |')
    return '\n'.join(lines)


def plot(rows, path, title):
    import matplotlib.pyplot as plt
    layers = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(layers, [r['ib_loss'] for r in rows], 'o-', label='IB loss')
    ax.plot(layers, [r['ibb'] for r in rows], 's--', label='IB bound')
    ax.set_xlabel('LTM layer')
    ax.set_ylabel('nats')
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        check_file_exists(args.checkpoint, 'checkpoint')
        check_data_roots(cfg, ['test_dataloader'])
        model, num_classes = build_classifier(cfg, args.checkpoint)
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    loader = Runner.build_dataloader(cfg.test_dataloader)
    masks, records = collect_records(model, loader, args.max_samples)
    rows = [layer_ib(m, r, num_classes) for m, r in zip(masks, records)]
    print(format_table(rows))
    plot(rows, args.out, f'{type(model.backbone).__name__}, '
         f'{records[0]["labels"].numel()} sequences')
    print(f'plot saved to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

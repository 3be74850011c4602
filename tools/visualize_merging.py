"""Heatmaps of LTM merge weights over the image (paper Fig. 4).

    python tools/visualize_merging.py CFG CKPT [IMG] [--layer 0]
        [--targets 4] [--size 256] [--out merging.png]

For evenly spaced target tokens of the chosen LTM layer (0 = the first layer
that merges), draws the weights ``G[:, p]`` over that layer's source tokens,
overlaid on the image.  Without IMG it uses a real photo that ships with
matplotlib (``grace_hopper.jpg``).  MobileViT sequences: the first pixel
position of each 2x2 patch.
"""
import argparse
import sys

import matplotlib
import mmcv
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import ltm_mm  # noqa: F401
from ltm_mm.analysis.merge_weights import (capture_plans, target_heatmaps,
                                           target_positions, upsample)
from ltm_mm.apis import CLIError, check_file_exists, load_config

matplotlib.use('Agg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image', nargs='?', help='defaults to matplotlib\'s '
                        'sample photo grace_hopper.jpg')
    parser.add_argument('--layer', type=int, default=0,
                        help='index among the LTM layers that merge')
    parser.add_argument('--targets', type=int, default=4,
                        help='number of target tokens to draw')
    parser.add_argument('--size', type=int, default=256,
                        help='square input size')
    parser.add_argument('--out', default='merging.png')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def load_model(cfg, checkpoint):
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    return model.eval()


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        check_file_exists(args.checkpoint, 'checkpoint')
        if args.image is None:
            args.image = matplotlib.cbook.get_sample_data(
                'grace_hopper.jpg', asfileobj=False)
        check_file_exists(args.image, 'image')
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    model = load_model(cfg, args.checkpoint)
    image = mmcv.imresize(mmcv.imread(args.image), (args.size, args.size))
    # (H, W, 3) BGR uint8 -> (3, H, W), through the model's preprocessor
    batch = dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)])
    inputs = model.data_preprocessor(batch, False)['inputs']
    plans = capture_plans(model.backbone, inputs)
    if not 0 <= args.layer < len(plans):
        print(f'error: --layer {args.layer}: only {len(plans)} LTM layers '
              f'merge at {args.size}x{args.size}', file=sys.stderr)
        return 2
    plan = plans[args.layer]
    num_merged = plan.weights.shape[1]
    targets = np.linspace(0, num_merged - 1, args.targets + 2)[1:-1]
    targets = sorted({int(round(t)) for t in targets})
    weights = target_heatmaps(plan, targets)  # (T, h, w)
    heatmaps = upsample(weights, (args.size, args.size))
    positions = target_positions(plan, targets)
    scale_y = args.size / plan.source_hw[0]
    scale_x = args.size / plan.source_hw[1]

    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(targets),
                             figsize=(3 * len(targets), 3.2), dpi=100)
    for ax, heatmap, grid_weights, target, (y, x) in zip(
            np.atleast_1d(axes), heatmaps, weights, targets, positions):
        ax.imshow(mmcv.bgr2rgb(image))
        heatmap = heatmap.numpy()
        ax.imshow(np.ma.masked_where(heatmap == 0, heatmap), cmap='jet',
                  alpha=0.6)
        ax.plot((x + 0.5) * scale_x, (y + 0.5) * scale_y, 'w+',
                markersize=12, markeredgewidth=2)
        ax.set_title(f'target {target}: {int((grid_weights > 0).sum())} '
                     f'sources')
        ax.axis('off')
    fig.suptitle(f'LTM layer {args.layer}: {plan.source_hw[0]}x'
                 f'{plan.source_hw[1]} -> {plan.merged_hw[0]}x'
                 f'{plan.merged_hw[1]} tokens')
    fig.tight_layout()
    fig.savefig(args.out)
    plt.close(fig)
    print(f'saved {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

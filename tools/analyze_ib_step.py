"""How much the IB step changes each LTM layer's merge, on a data set.

    python tools/analyze_ib_step.py CFG CKPT [--max-images 100]
        [--cfg-options k=v ...]

Runs the backbone of any LTM model (detector, segmentor, classifier) in
eval mode over the config's test data and prints, per LTM layer,
``mean |G - G0|`` (:mod:`ltm_mm.analysis.ib_step_change`): how far the
applied merge is from the prior merge of theta and the geometry (0 in
layers without class statistics, where the IB step does not run), and the
largest ``|theta|``, how far training moved the window logits from their
initial 0 (area pooling).
"""
import argparse
import itertools
import sys
import warnings

from mmengine.config import DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint

import ltm_mm  # noqa: F401
from ltm_mm.analysis.ib_step_change import ib_step_change
from ltm_mm.apis import (CLIError, check_data_roots, check_file_exists,
                         load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--max-images', type=int, default=100)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def format_table(rows) -> str:
    lines = ['| layer | statistics | mean abs(G - G0) | merged tokens | '
             'max abs(theta) |', '|---|---|---|---|---|']
    lines += [f'| {r["name"]} | {"yes" if r["statistics"] else "no"} | '
              f'{r["change"]:.4f} | {r["merged_tokens"]} | '
              f'{r["theta_moved"]:.3f} |' for r in rows]
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        check_file_exists(args.checkpoint, 'checkpoint')
        check_data_roots(cfg, ['test_dataloader'])
    except CLIError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.eval()
    loader = Runner.build_dataloader(cfg.test_dataloader)
    batch_size = loader.batch_size or 1
    batches = itertools.islice(loader, -(-args.max_images // batch_size))

    def forward(batch):
        data = model.data_preprocessor(batch, False)
        model.backbone(data['inputs'])

    rows = ib_step_change(model, batches, forward)
    if not rows:
        print('error: the model has no LTM layer', file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())

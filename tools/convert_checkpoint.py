"""Convert third-party checkpoints to ltm_mm backbone keys.

    python tools/convert_checkpoint.py efficientvit SRC DST [--arch b1]

``efficientvit``: a timm ``efficientvit_b0..b3`` state dict (.pth/.pt/.bin
or .safetensors; a bare state dict or a dict holding one under
'state_dict' / 'model') -> ``{'state_dict': {'backbone.<key>': ...},
'meta': {...}}``, loadable with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
timm's classifier head is dropped (and listed); any other key that has no
place in the backbone is an error.  Exit status 2 on user errors.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from ltm_mm.apis import CLIError, check_file_exists
from ltm_mm.models.backbones.efficientvit_convert import (
    ConversionError, convert_timm_efficientvit, unwrap_state_dict)


def load_source(path: str):
    check_file_exists(path, 'source checkpoint')
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            return load_file(path, device='cpu')
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # unreadable / not a checkpoint
        raise CLIError(f'cannot read source checkpoint {path!r}: '
                       f'{type(error).__name__}: {error}') from error


def convert_efficientvit(args) -> None:
    state_dict = unwrap_state_dict(load_source(args.src))
    converted, dropped, arch = convert_timm_efficientvit(
        state_dict, arch=args.arch)
    meta = dict(source=f'timm efficientvit_{arch}', arch=arch,
                src=osp.abspath(args.src), dropped_keys=dropped,
                prefix='backbone.')
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    print(f'EfficientViT-{arch}: wrote {len(converted)} tensors to '
          f'{args.dst!r}')
    print(f'dropped {len(dropped)} classifier keys: {dropped}')


CONVERTERS = dict(efficientvit=convert_efficientvit)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='model', required=True)
    evit = sub.add_parser('efficientvit',
                          help='timm efficientvit_b0..b3 -> EfficientViT')
    evit.add_argument('src', help='timm state dict (.pth or .safetensors)')
    evit.add_argument('dst', help='output .pth file')
    evit.add_argument('--arch', choices=['b0', 'b1', 'b2', 'b3'],
                      help='default: inferred from the stem width')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        CONVERTERS[args.model](args)
    except (CLIError, ConversionError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Cost of one LTM layer's mask module + merge vs one self-attention sublayer.

The sublayer is mmpretrain's ``MultiheadAttention`` as used in MobileViT
(QKV projection, attention, output projection) on the same N tokens of width
D.  The LTM side is everything an LTM layer adds: the mask module with valid
class statistics (IB step and MLP included) and the merge of Z.  Timings
alternate between the two in one process; the ratio is the figure of merit.

    python benchmarks/ltm_layer_cost.py [--threads 2] [--iters 30]
"""
import argparse
import math
import statistics
import time
import warnings

import torch
from mmpretrain.models.utils import MultiheadAttention

from ltm_mm.models.layers import LearnableMergeMask


def build_pair(num_tokens, dim, num_classes=1000, ratio=0.7):
    attention = MultiheadAttention(dim, num_heads=4, qkv_bias=True).eval()
    mask = LearnableMergeMask(dim, ratio, num_classes=num_classes).eval()
    torch.nn.init.normal_(mask.mlp_out.weight, std=0.02)
    mask.statistics.update(
        torch.randn(num_classes, dim),
        torch.randn(num_classes, num_classes).log_softmax(0),
        torch.randn(num_classes, dim), beta=0.01)
    return attention, mask


def time_alternating(fns, iters, warmup=3):
    times = [[] for _ in fns]
    for _ in range(warmup):
        for fn in fns:
            fn()
    for _ in range(iters):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[index].append(time.perf_counter() - start)
    return [statistics.median(t) * 1e3 for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--sequences', type=int, default=4,
                        help='sequences per call (MobileViT: 4 per image)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    print(f'threads={args.threads}, sequences={args.sequences}, r=0.7, '
          f'k=3, K=1000 classes, median of {args.iters} alternating runs\n')
    print('| N | D | grid | attention sublayer (ms) | mask + merge (ms) '
          '| ratio |')
    print('|---|---|---|---|---|---|')
    for num_tokens in (256, 1024, 4096):
        for dim in (144, 240):
            side = int(math.isqrt(num_tokens))
            attention, mask = build_pair(num_tokens, dim)
            tokens = torch.randn(args.sequences, num_tokens, dim)

            def run_attention():
                attention(tokens)

            def run_ltm():
                mask(tokens, (side, side)).merge(tokens)

            with torch.inference_mode():
                t_attn, t_ltm = time_alternating([run_attention, run_ltm],
                                                 args.iters)
            print(f'| {num_tokens} | {dim} | {side}x{side} | {t_attn:.2f} '
                  f'| {t_ltm:.2f} | {t_ltm / t_attn:.3f} |')


if __name__ == '__main__':
    main()

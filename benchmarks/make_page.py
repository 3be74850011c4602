"""Regenerate docs/benchmarks.md: every figure with the command behind it.

    python benchmarks/make_page.py docs/benchmarks.md [--quick]

The sections and their measurements are
:mod:`ltm_mm.analysis.benchmark_page`; the merger comparisons, the ONNX
Runtime table and the GPU pages are copied from docs/benchmarks/ (their
scripts train detectors, export for minutes or need a GPU).  ``--quick``
uses fewer timed iterations (for trying the script).
"""
import argparse
import contextlib
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ltm_mm  # noqa: E402,F401
from ltm_mm.analysis.benchmark_page import build_page  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', nargs='?', default='docs/benchmarks.md')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out).resolve()
    with contextlib.chdir(ROOT):  # the configs are relative to the root
        build_page(out, ROOT, iters=6 if args.quick else 20)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

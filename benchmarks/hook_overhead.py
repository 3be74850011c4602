"""Train-iteration time with LTMStatisticsHook collecting vs without.

An LTM-MobileViT classifier (K = 1000 statistics) takes real optimizer
steps on random 256x256 images; iterations alternate between "hook
collecting" (recording on, labels captured from the data preprocessor,
per-class sums updated) and "no hook", and the medians are compared.

    python benchmarks/hook_overhead.py [--arch x_small] [--batch 8] [--iters 10]
"""
import argparse
import statistics
import time
import types
import warnings

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.structures import DataSample

import ltm_mm  # noqa: F401
from ltm_mm.hooks import LTMStatisticsHook


def build(arch, num_classes=1000):
    init_default_scope('mmpretrain')
    width = {'xx_small': 320, 'x_small': 384, 'small': 640}[arch]
    model = MODELS.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[0, 0, 0],
                               std=[255, 255, 255], num_classes=num_classes),
        backbone=dict(type='ltm_mm.LTMMobileViT', arch=arch,
                      merge_ratios=[0.7] * 9, restore_resolution=False,
                      num_classes=num_classes),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes,
                  in_channels=width)))
    optim = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-4)))
    return model.train(), optim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='x_small')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    model, optim = build(args.arch)
    hook = LTMStatisticsHook(update=True)
    runner = types.SimpleNamespace(
        model=model, epoch=1,
        train_dataloader=types.SimpleNamespace(
            dataset=types.SimpleNamespace(metainfo={})),
        logger=types.SimpleNamespace(info=print))
    hook.before_train(runner)
    masks = hook._masks

    def batch():
        return dict(
            inputs=[torch.randint(0, 255, (3, 256, 256), dtype=torch.uint8)
                    for _ in range(args.batch)],
            data_samples=[DataSample().set_gt_label(int(i))
                          for i in torch.randint(0, 1000, (args.batch, ))])

    def step(with_hook):
        for mask in masks:
            mask.recording = with_hook
        hook._handle.remove()
        if with_hook:
            hook._handle = model.data_preprocessor.register_forward_hook(
                hook._capture_labels)
        else:
            hook._handle = model.data_preprocessor.register_forward_hook(
                lambda *a: None)
        data = batch()
        start = time.perf_counter()
        model.train_step(data, optim)
        if with_hook:
            hook_start = time.perf_counter()
            hook.after_train_iter(runner, 0)
            hook_work.append(time.perf_counter() - hook_start)
        return time.perf_counter() - start

    hook_work = []
    hook.before_train_epoch(runner)
    for _ in range(2):
        step(True), step(False)
    times = {True: [], False: []}
    for index in range(args.iters):
        # ABBA order so neither side always runs first
        for flag in ((True, False) if index % 2 == 0 else (False, True)):
            times[flag].append(step(flag))
    hook.after_train_epoch(runner)
    with_hook = statistics.median(times[True]) * 1e3
    without = statistics.median(times[False]) * 1e3
    print(f'LTM-MobileViT-{args.arch}, batch {args.batch}, 256x256, K=1000, '
          f'{args.threads} threads, median of {args.iters} alternating '
          f'iterations')
    print('| hook | train iteration (ms) |\n|---|---|')
    print(f'| off | {without:.1f} |\n| collecting | {with_hook:.1f} |')
    work = statistics.median(hook_work) * 1e3
    print(f'\noverhead (median ratio): {100 * (with_hook / without - 1):+.1f}'
          f'%; the hook\'s own per-iteration work (after_train_iter, '
          f'recording included in the forward): {work:.1f} ms = '
          f'{100 * work / without:.2f}% of an iteration')


if __name__ == '__main__':
    main()

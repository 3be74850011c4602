# SSDLite with LTM-EfficientViT-B1 at 320x320 on COCO (paper Table III);
# backbone and statistics from ImageNet pre-training, statistics frozen.
# Where merging pays (docs/speed.md): on the CPU at 320x320, no
# EfficientViT-B1 block.  Only each block's MBConv branch runs merged (the
# residual stream keeps the input grid), and the MBConv work that r = 0.7
# or 0.5 removes is about what merge and unmerge cost: with the IB step
# left out (`tools/benchmark.py --no-statistics`: G is then a constant of
# the grid) this detector runs at 1.04 of plain (r = 0.5: 1.01-1.03), with
# it at 1.15 (r = 0.5: 1.08-1.13).  The config keeps the paper's r = 0.7
# in all seven blocks: 0.945 of plain's MACs, and at COCO scale every block
# pays (Mask R-CNN config).  GPU: benchmarks/gpu_targets.py.
_base_ = './ssdlite_efficientvit_b1.py'

pretrained = 'checkpoints/ltm-efficientvit-b1_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMEfficientViT',
        merge_ratios=[0.7] * 7,  # every EfficientViTBlock (paper: r = 0.7)
        restore_resolution=True,
        num_classes=1000,
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# DDP: no find_unused_parameters (it costs a pass over the autograd graph
# every iteration). With the required statistics every block merges at this
# input size (grids 20x20/10x10 at 320, >= 25x42 at COCO scale), so every
# mask parameter gets a gradient; if that changes (smaller inputs, no
# statistics), LTMStatisticsHook stops training after the first iteration
# with an error that says what to set.

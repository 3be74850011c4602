# SSDLite with LTM-EfficientViT-B1 at 320x320 on COCO (paper Table III);
# backbone and statistics from ImageNet pre-training, statistics frozen.
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

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

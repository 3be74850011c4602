# Mask R-CNN with LTM-EfficientViT-B1 and FPN, 1x schedule on COCO (paper
# Table IV).  The backbone and its class statistics come from ImageNet
# pre-training (configs/pretrain/ltm-efficientvit-b1_*); the statistics stay
# frozen, and every block's output is unmerged to its input grid so FPN sees
# the usual strides.
_base_ = './mask-rcnn_efficientvit-b1_fpn_1x_coco.py'

pretrained = 'checkpoints/ltm-efficientvit-b1_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMEfficientViT',
        merge_ratios=[0.7] * 7,  # every EfficientViTBlock (paper: r = 0.7)
        restore_resolution=True,
        num_classes=1000,
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

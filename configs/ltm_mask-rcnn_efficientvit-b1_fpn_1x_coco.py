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

# DDP: no find_unused_parameters (it costs a pass over the autograd graph
# every iteration). With the required statistics every block merges at this
# input size (grids 20x20/10x10 at 320, >= 25x42 at COCO scale), so every
# mask parameter gets a gradient; if that changes (smaller inputs, no
# statistics), LTMStatisticsHook stops training after the first iteration
# with an error that says what to set.

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

# The SegFormer-style head on LTM-EfficientViT-B1, with the recipe of its
# plain baseline ./segformer-head_efficientvit-b1_8xb1-160k_cityscapes-1024x1024.py.
# r = 0.7 in every EfficientViTBlock (as the Mask R-CNN config); each
# block's output is unmerged to its input grid (restore_resolution), so the
# head sees the plain backbone's strides.  The backbone and its class
# statistics come from ImageNet pre-training
# (configs/pretrain/ltm-efficientvit-b1_*), as for the detectors; the
# statistics stay frozen here.
_base_ = './segformer-head_efficientvit-b1_8xb1-160k_cityscapes-1024x1024.py'

pretrained = 'checkpoints/ltm-efficientvit-b1_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMEfficientViT',
        merge_ratios=[0.7] * 7,
        restore_resolution=True,
        num_classes=1000,  # classes of the statistics (ImageNet-1k)
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

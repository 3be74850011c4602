# Mask R-CNN with a plain EfficientViT-B1 backbone and FPN, 1x schedule on
# COCO (baseline of configs/ltm_mask-rcnn_efficientvit-b1_fpn_1x_coco.py).
# AdamW, lr 1e-3 with cosine decay over 12 epochs, as in the LTM paper.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

# timm's ImageNet EfficientViT-B1 weights converted with
# `python tools/convert_checkpoint.py efficientvit SRC DST` (RGB input,
# ImageNet mean/std, as mmdet's default data preprocessor).
pretrained = 'checkpoints/efficientvit_b1_in1k_converted.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ltm_mm.EfficientViT',
        arch='b1',
        out_indices=(0, 1, 2, 3),  # strides 4, 8, 16, 32
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[32, 64, 128, 256]))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5,
         by_epoch=True, begin=0, end=max_epochs)
]
# 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)

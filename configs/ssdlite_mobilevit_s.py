# SSDLite with a plain MobileViT-S backbone at 320x320 on COCO (baseline of
# configs/ltm_ssdlite_mobilevit_s.py).  Recipe of MobileViT's SSDLite:
# AdamW, lr 9e-4 with cosine decay to 1.6e-6, 200 epochs, 4 GPUs x 32 images.
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

# ImageNet weights of the backbone: mmpretrain's MobileViT-S checkpoint
# (download it yourself; nothing is fetched at run time).
pretrained = 'checkpoints/mobilevit-small_3rdparty_in1k_20221018-cb4f741c.pth'

# mmpretrain's MobileViT checkpoints expect BGR in [0, 1]
data_preprocessor = dict(
    mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MobileViT',
        arch='small',
        out_indices=(3, 4),  # stride 16: 128 ch, stride 32: 640 ch
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        in_channels=(128, 640),
        out_channels=(128, 640, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(128, 640, 512, 256, 256, 128)))

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(
        _delete_=True,
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.train_pipeline}}))

max_epochs = 200
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=9e-4, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1.6e-6,
         by_epoch=True, begin=0, end=max_epochs)
]
default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=3, save_best='auto'))
# 4 GPUs x 32 images; `--auto-scale-lr` rescales lr for other batch sizes
auto_scale_lr = dict(enable=False, base_batch_size=128)

# ImageNet-1k pre-training of LTM-MobileViT-S (MobileViT's recipe: AdamW,
# lr 2e-3 cosine to 2e-4, wd 0.01, 300 epochs, 8 GPUs x 128, 256x256 crops,
# label smoothing; the LTM paper adds mixup and cutmix).  The
# LTMStatisticsHook collects the class statistics that the COCO configs load.
_base_ = 'mmpretrain::mobilevit/mobilevit-small_8xb128_in1k.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        arch='small',
        merge_ratios=[0.7] * 9,
        restore_resolution=False,  # the merged grid flows on (paper)
        num_classes=1000),
    head=dict(
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original')),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 300
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 3, eta_min=2e-4,
         by_epoch=True, begin=3, end=max_epochs)
]
# Algorithm 1: the first epoch trains without merging and collects the
# first statistics; every later epoch merges and refreshes them.
custom_hooks = [dict(type='ltm_mm.LTMStatisticsHook', update=True,
                     warmup_epochs=1)]
auto_scale_lr = dict(base_batch_size=1024)

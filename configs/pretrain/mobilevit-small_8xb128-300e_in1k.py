# ImageNet-1k training of plain MobileViT-S with the recipe of the LTM
# configs (MobileViT's: AdamW, lr 2e-3 cosine to 2e-4, wd 0.01, 300 epochs,
# 8 GPUs x 128, 256x256 crops, label smoothing; the LTM paper adds mixup and
# cutmix).  Baseline of ltm-mobilevit-small_8xb128-300e_in1k.py.
_base_ = 'mmpretrain::mobilevit/mobilevit-small_8xb128_in1k.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

model = dict(
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
auto_scale_lr = dict(base_batch_size=1024)

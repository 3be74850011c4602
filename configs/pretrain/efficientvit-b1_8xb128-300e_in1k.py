# ImageNet-1k training of plain EfficientViT-B1 at 224x224 (baseline of
# ltm-efficientvit-b1_8xb128-300e_in1k.py): the authors' recipe (AdamW,
# lr 1e-3 for 8 GPUs x 128, wd 0.1, 20 warm-up epochs, cosine, 300 epochs,
# label smoothing) with the LTM paper's mixup/cutmix.  The classifier is
# global pooling + a linear layer on the 256-channel stage-4 features (the
# authors' 1536/1600-wide head is not reproduced).
_base_ = './mobilevit-small_8xb128-300e_in1k.py'

# timm/authors' EfficientViT weights expect RGB with ImageNet mean/std
data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(
    backbone=dict(
        _delete_=True, type='ltm_mm.EfficientViT', arch='b1',
        out_indices=(3, )),
    head=dict(in_channels=256))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 300
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 20, eta_min=1e-6,
         by_epoch=True, begin=20, end=max_epochs)
]

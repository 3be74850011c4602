# Pre-training of LTM-MobileViT-XS on a generated ImageNet-style folder
# (tools/make_demo_classification_data.py), for tests and the statistics
# demo: 2 epochs, the first a warm-up without merging.
_base_ = '../pretrain/ltm-mobilevit-xsmall_8xb128-300e_in1k.py'

data_root = 'data/demo_cls/'
num_classes = 4
image_size = 128

data_preprocessor = dict(num_classes=num_classes)
model = dict(
    backbone=dict(num_classes=num_classes, init_cfg=None),
    head=dict(num_classes=num_classes, topk=(1, )))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         eta_min=1e-5)
]
default_hooks = dict(logger=dict(interval=1))
custom_hooks = [dict(type='ltm_mm.LTMStatisticsHook', update=True,
                     warmup_epochs=1)]
randomness = dict(seed=0)

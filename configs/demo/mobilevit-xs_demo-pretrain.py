# Stage 1 of the two-stage demo, plain baseline: MobileViT-XS pre-trained as
# a 12-class classifier (3 shapes x 4 colours) on generated object images
# (tools/make_demo_object_data.py: 80 + 20 images per class, 128 px), in the
# place of ImageNet.  Stage 2, ./ssdlite_mobilevit-xs_demo-pretrained.py,
# fine-tunes SSDLite from it.  The LTM variant,
# ./ltm-mobilevit-xs_demo-pretrain.py, differs only in the backbone and the
# statistics hook.
#
# 128 px keeps stage 1 to minutes on a CPU: a 224 px batch costs about
# eight times as much as a 128 px one (docs/two_stage.md).  The merging
# layers are those of stage 2 at 192 px: the stride-8 block's two layers
# (8x8 -> 7x7 -> 6x6 tokens per sequence here); the stride-16 and -32
# grids are too small to shrink at r = 0.7 in either stage.
_base_ = '../pretrain/mobilevit-xsmall_8xb128-300e_in1k.py'

data_root = 'data/demo_objects/'
num_classes = 12
image_size = 128  # MobileViT-XS: 16x16 map at stride 8, 4x4 at 32

data_preprocessor = dict(num_classes=num_classes)
model = dict(
    head=dict(num_classes=num_classes, topk=(1, )),
    # no mixup/cutmix: 480 images, a few epochs
    train_cfg=dict(_delete_=True))

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
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# 5e-4 learned fastest of 2e-4, 5e-4, 2e-3 and 5e-3 in six epochs (top-1
# 29%, 39%, 31%, 16%; docs/two_stage.md)
optim_wrapper = dict(optimizer=dict(lr=5e-4, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=60),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    logger=dict(interval=10),
    # one checkpoint, overwritten every epoch: stage 2 loads
    # work_dir/latest_checkpoint.pth
    checkpoint=dict(interval=1, filename_tmpl='latest_checkpoint.pth',
                    max_keep_ckpts=1))
auto_scale_lr = dict(enable=False)
randomness = dict(seed=0)

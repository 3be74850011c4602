# SSDLite with a plain MobileViT-XS backbone at 320x320, trained from scratch
# on the synthetic shapes of tools/make_demo_data.py: a CPU demo that learns
# visibly in about ten minutes on two cores.
#
#   python tools/make_demo_data.py data/demo
#   python tools/train.py configs/demo/ssdlite_mobilevit-xs_demo.py \
#       --work-dir work_dirs/demo
#   python tools/test.py configs/demo/ssdlite_mobilevit-xs_demo.py \
#       work_dirs/demo/latest_checkpoint.pth
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

from ltm_mm.datasets.demo_shapes import CLASSES  # noqa: E402

data_root = 'data/demo/'
metainfo = dict(classes=CLASSES)
input_size = 320

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MobileViT',
        arch='x_small',
        out_indices=(3, 4)),  # stride 16: 80 ch, stride 32: 384 ch
    neck=dict(
        in_channels=(80, 384), out_channels=(80, 384, 512, 256, 256, 128)),
    bbox_head=dict(
        in_channels=(80, 384, 512, 256, 256, 128),
        num_classes=len(CLASSES),
        # the shapes are 40-160 px and about square: anchors of 32-300 px
        # (the base's 48-320), aspect ratios 1 and 2 (no 3)
        anchor_generator=dict(
            ratios=[[2]] * 6,
            min_sizes=[32, 80, 140, 200, 260, 300],
            max_sizes=[80, 140, 200, 260, 300, 320])))

# the images are already 320x320; no Expand/MinIoURandomCrop (too slow to
# learn from in a short run)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# batch 4: on two CPU cores an image of batch 8 costs twice as much
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False)
test_evaluator = val_evaluator

max_epochs = 8
# validation at half-time and at the end (about 5 s each)
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs // 2)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    logger=dict(interval=10),
    # one checkpoint, overwritten every epoch: work_dir/latest_checkpoint.pth
    # (also named in work_dir/last_checkpoint, which `--resume` reads)
    checkpoint=dict(interval=1, filename_tmpl='latest_checkpoint.pth'))
log_processor = dict(window_size=10)
auto_scale_lr = dict(enable=False, base_batch_size=4)
randomness = dict(seed=0)

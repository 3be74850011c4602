# DeepLabv3 with a plain MobileViT-XXS backbone trained from scratch on the
# 128x128 synthetic shapes of tools/make_demo_seg_data.py, a few minutes on
# two cores (`python tools/train.py configs/demo/
# deeplabv3_mobilevit-xxs-d8_demo-seg.py`; the LTM config is
# ./deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py).  The recipe of the merger
# comparison's segmentation rows and of `make seg-demo`'s stage 2
# (./deeplabv3_ltm-mobilevit-xs-d8_demo-seg-pretrained.py).
# Output stride 8 (the last two stages dilated), not the 16 of
# ../seg/deeplabv3_mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py: at 128x128
# a stride-16 map is 8x8 and the smallest shapes (24 px) cover 1.5 cells;
# trained so for 12 epochs, LTM-MobileViT-XS still predicted background
# everywhere (mIoU 0.23).
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

from ltm_mm.datasets.demo_segmentation import CLASSES, PALETTE  # noqa: E402

data_root = 'data/demo_seg/'
metainfo = dict(classes=CLASSES, palette=PALETTE)
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)  # one process, no SyncBN

data_preprocessor = dict(
    mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False, size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='ltm_mm.LTMMobileViT',
        arch='xx_small',
        merge_ratios=1.0,
        output_stride=8,
        out_indices=(4, )),  # stride 8 (dilated): 320 ch
    decode_head=dict(
        in_channels=320, in_index=0, channels=128, dilations=(1, 6, 12, 18),
        num_classes=len(CLASSES), norm_cfg=norm_cfg),
    auxiliary_head=None)

# the images are already 128x128
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
dataset = dict(
    type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
    img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False)
# batch 4: twice the updates of batch 8 for the same images
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=train_pipeline, **dataset))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline, **dataset))
test_dataloader = val_dataloader

max_epochs = 16
train_cfg = dict(
    _delete_=True, type='EpochBasedTrainLoop', max_epochs=max_epochs,
    val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    logger=dict(interval=10, log_metric_by_epoch=True),
    # one checkpoint, overwritten every epoch: work_dir/latest_checkpoint.pth
    # (also named in work_dir/last_checkpoint)
    checkpoint=dict(by_epoch=True, interval=1,
                    filename_tmpl='latest_checkpoint.pth'))
log_processor = dict(by_epoch=True, window_size=10)
auto_scale_lr = dict(enable=False, base_batch_size=4)
randomness = dict(seed=0)

# Stage 2 of the two-stage demo, plain baseline: SSDLite MobileViT-XS
# fine-tuned on the generated shapes from the stage-1 classifier
# (./mobilevit-xs_demo-pretrain.py), with the recipe of
# ./ssdlite_mobilevit-xs_demo.py at 192 x 192 instead of 320 x 320 (the
# backbone costs a third as much; the anchors shrink with the objects, as
# ltm_mm.analysis.input_size.set_ssdlite_input_size lays them out).  The
# LTM variant, ./ssdlite_ltm-mobilevit-xs_demo-pretrained.py, differs only
# in the backbone, its checkpoint and the statistics hook.
_base_ = './ssdlite_mobilevit-xs_demo.py'

pretrained = 'work_dirs/demo_plain/pretrain/latest_checkpoint.pth'

# MobileViT's convention, as in stage 1: BGR in [0, 1]
data_preprocessor = dict(
    mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False)
input_size = 192
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix='backbone.')),
    bbox_head=dict(
        anchor_generator=dict(
            # feature maps of 12, 6, 3, 2, 1, 1 cells; the base's anchor
            # sizes times 192 / 320
            strides=[16, 32, 64, 96, 192, 192],
            min_sizes=[19, 48, 84, 120, 156, 180],
            max_sizes=[48, 84, 120, 156, 180, 192])))

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

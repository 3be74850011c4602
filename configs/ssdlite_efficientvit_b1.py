# SSDLite with a plain EfficientViT-B1 backbone at 320x320 on COCO, with the
# recipe of configs/ssdlite_mobilevit_s.py.
_base_ = './ssdlite_mobilevit_s.py'

pretrained = 'checkpoints/efficientvit_b1_in1k_converted.pth'

# timm's EfficientViT weights expect RGB with ImageNet mean/std
data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='ltm_mm.EfficientViT',
        arch='b1',
        out_indices=(2, 3),  # stride 16: 128 ch, stride 32: 256 ch
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        in_channels=(128, 256), out_channels=(128, 256, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(128, 256, 512, 256, 256, 128)))

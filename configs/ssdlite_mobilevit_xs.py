# SSDLite with a plain MobileViT-XS backbone at 320x320 on COCO.
_base_ = './ssdlite_mobilevit_s.py'

pretrained = 'checkpoints/mobilevit-xsmall_3rdparty_in1k_20221018-be39a6e7.pth'

model = dict(
    backbone=dict(
        arch='x_small',
        init_cfg=dict(checkpoint=pretrained)),  # stride 16: 80, 32: 384 ch
    neck=dict(
        in_channels=(80, 384), out_channels=(80, 384, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(80, 384, 512, 256, 256, 128)))

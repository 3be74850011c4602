# SSDLite with LTM-MobileViT-XS at 320x320 on COCO.
_base_ = './ssdlite_mobilevit_xs.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True))

# SSDLite with a plain EfficientViT-B1 backbone at 320x320 on the generated
# shapes, trained from scratch with the recipe of
# ./ssdlite_mobilevit-xs_demo.py (the baseline of
# ./ssdlite_ltm-efficientvit-b1_demo.py).
_base_ = './ssdlite_mobilevit-xs_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ltm_mm.EfficientViT',
        arch='b1',
        out_indices=(2, 3)),  # stride 16: 128 ch, stride 32: 256 ch
    neck=dict(
        in_channels=(128, 256), out_channels=(128, 256, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(128, 256, 512, 256, 256, 128)))

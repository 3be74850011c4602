# Stage 2 of the two-stage demo, plain baseline: SSDLite MobileViT-XS
# fine-tuned on the generated shapes from the stage-1 classifier
# (./mobilevit-xs_demo-pretrain.py), with the recipe of
# ./ssdlite_mobilevit-xs_demo.py.  The LTM variant,
# ./ssdlite_ltm-mobilevit-xs_demo-pretrained.py, differs only in the
# backbone, its checkpoint and the statistics hook.
_base_ = './ssdlite_mobilevit-xs_demo.py'

pretrained = 'work_dirs/demo_plain/pretrain/latest_checkpoint.pth'

# MobileViT's convention, as in stage 1: BGR in [0, 1]
data_preprocessor = dict(
    mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix='backbone.')))

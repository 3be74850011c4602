# Stage 2 of the two-stage segmentation demo, plain baseline
# (`make seg-demo-plain`): DeepLabv3 MobileViT-XS (output stride 8)
# fine-tuned on the generated segmentation shapes from the plain stage-1
# classifier of `make demo-plain` (./mobilevit-xs_demo-pretrain.py), with
# the recipe of ./deeplabv3_mobilevit-xxs-d8_demo-seg.py.  XS instead of XXS
# because stage 1 pre-trains XS; MobileViT's input convention (BGR in
# [0, 1]) is the base's and stage 1's.  The LTM variant,
# ./deeplabv3_ltm-mobilevit-xs-d8_demo-seg-pretrained.py, differs only in
# the ratios, its checkpoint and the statistics hook.
_base_ = './deeplabv3_mobilevit-xxs-d8_demo-seg.py'

pretrained = 'work_dirs/demo_plain/pretrain/latest_checkpoint.pth'

model = dict(
    backbone=dict(
        arch='x_small',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix='backbone.')),
    decode_head=dict(in_channels=384))  # stride 8 (dilated): 384 ch

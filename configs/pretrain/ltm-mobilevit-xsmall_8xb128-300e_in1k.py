# ImageNet-1k pre-training of LTM-MobileViT-XS (see the -small config).
_base_ = './ltm-mobilevit-small_8xb128-300e_in1k.py'

model = dict(backbone=dict(arch='x_small'), head=dict(in_channels=384))

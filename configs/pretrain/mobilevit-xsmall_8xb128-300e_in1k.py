# ImageNet-1k training of plain MobileViT-XS (baseline of
# ltm-mobilevit-xsmall_8xb128-300e_in1k.py).
_base_ = './mobilevit-small_8xb128-300e_in1k.py'

model = dict(backbone=dict(arch='x_small'), head=dict(in_channels=384))

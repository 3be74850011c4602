# Fine-tuning setup for LTM-EfficientViT-B1 (paper Table I): the backbone
# starts from timm's ImageNet weights converted with
# `tools/convert_checkpoint.py efficientvit SRC DST` and stays frozen except
# the LTM mask modules; 50 epochs while the hook collects the statistics.
# The converted file has no classifier for our head, so the linear head
# trains too (it is not frozen as in the MobileViT merging-only configs).
_base_ = './ltm-efficientvit-b1_8xb128-300e_in1k.py'

pretrained = 'checkpoints/efficientvit_b1_in1k_converted.pth'

model = dict(
    backbone=dict(
        train_merging_only=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix='backbone.')),
    train_cfg=None)
max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6,
         by_epoch=True, begin=1, end=max_epochs)
]

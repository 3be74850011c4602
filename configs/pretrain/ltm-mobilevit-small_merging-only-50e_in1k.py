# The paper's fine-tuning setup (Table I): start from mmpretrain's ImageNet
# MobileViT-S, freeze every pretrained weight (backbone and head) and train
# only the LTM mask modules for 50 epochs while the hook collects the class
# statistics.
_base_ = './ltm-mobilevit-small_8xb128-300e_in1k.py'

load_from = 'checkpoints/mobilevit-small_3rdparty_in1k_20221018-cb4f741c.pth'

model = dict(backbone=dict(train_merging_only=True), train_cfg=None)
max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=0.0,
                                                 decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5,
         by_epoch=True, begin=1, end=max_epochs)
]

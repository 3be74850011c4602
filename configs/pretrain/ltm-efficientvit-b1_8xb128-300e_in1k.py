# ImageNet-1k pre-training of LTM-EfficientViT-B1 at 224x224 with the recipe
# of efficientvit-b1_8xb128-300e_in1k.py; LTMStatisticsHook collects the
# class statistics the COCO configs load with the backbone.
_base_ = './efficientvit-b1_8xb128-300e_in1k.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMEfficientViT',
        merge_ratios=[0.7] * 7,  # every EfficientViTBlock (paper: r = 0.7)
        restore_resolution=False,  # the merged grid flows on (paper)
        num_classes=1000))

custom_hooks = [dict(type='ltm_mm.LTMStatisticsHook', update=True,
                     warmup_epochs=1)]

# DDP: the mask parameters are idle in the first epoch (no merging during
# warm-up, and the mask MLP runs only once the layer has class statistics),
# so DDP needs unused-parameter detection (else it stops at iteration 2).
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

# DeepLabv3 with LTM-MobileViT-XXS (output stride 8) trained from scratch on
# the 128x128 synthetic shapes with the recipe of its plain baseline
# ./deeplabv3_mobilevit-xxs-d8_demo-seg.py.
# The first transformer layer of each MobileViT block merges with r = 0.5,
# as ../seg/deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py (per
# sequence at 128x128: 8x8 -> 6x6 tokens in each of the three MobileViT
# blocks, all at stride 8 here).  From scratch there are no
# class statistics (those come from ImageNet pre-training), so the LTM
# layers merge with their learned window logits only.
_base_ = './deeplabv3_mobilevit-xxs-d8_demo-seg.py'

model = dict(
    backbone=dict(
        merge_ratios=[0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0],
        restore_resolution=True))

# DDP: without class statistics the mask MLPs never run (no gradient), so
# DDP needs unused-parameter detection.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

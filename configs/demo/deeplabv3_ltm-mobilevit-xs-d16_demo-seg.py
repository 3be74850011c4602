# DeepLabv3 with LTM-MobileViT-XS (output stride 16) trained from scratch on
# the 128x128 synthetic shapes with the recipe of its plain baseline
# ./deeplabv3_mobilevit-xs-d16_demo-seg.py (`make seg-demo` runs this one).
# The first transformer layer of each MobileViT block merges with r = 0.5,
# as ../seg/deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py (per
# sequence at 128x128: 8x8 -> 6x6 tokens in the stride-8 block, 4x4 -> 3x3
# in the stride-16 and the dilated last block).  From scratch there are no
# class statistics (those come from ImageNet pre-training), so the LTM
# layers merge with their learned window logits only.
_base_ = './deeplabv3_mobilevit-xs-d16_demo-seg.py'

model = dict(
    backbone=dict(
        merge_ratios=[0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0],
        restore_resolution=True))

# DDP: without class statistics the mask MLPs never run (no gradient), so
# DDP needs unused-parameter detection.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# DeepLabv3 with a plain MobileViT-S backbone on PASCAL VOC 2012 (+ SBD aug)
# at 512x512 (baseline of ./deeplabv3_ltm-mobilevit-s-d16_...py), as in
# MobileViT's paper: output stride 16 (the last stage, 32x32 at 512, keeps
# stride 16; its MobileViT block's local 3x3 conv is dilated by 2), ASPP
# with rates 6/12/18 and 256 channels, no auxiliary head.  AdamW lr 9e-4,
# weight decay 0.01, cosine to 1e-6 after 500 warm-up iterations, head lr
# x10, 4 GPUs x 32 images; 50 epochs of VOC aug (10582 images) are about
# 4k iterations.  MobileViT's authors also trained on COCO images mapped to
# the VOC classes; this config does not.
# The backbone is ltm_mm.LTMMobileViT with every ratio 1 (no LTM layer),
# which computes exactly mmpretrain's MobileViT and loads its checkpoints,
# because mmpretrain's MobileViT has no output-stride option.  The ASPP
# reads output 4 (640 ch: the last stage and its pre-trained 1x1
# expansion), as the detection configs do; MobileViT's paper used the
# 160 ch before the expansion.
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

# ImageNet weights of the backbone: mmpretrain's MobileViT-S checkpoint
# (download it yourself; nothing is fetched at run time).
pretrained = 'checkpoints/mobilevit-small_3rdparty_in1k_20221018-cb4f741c.pth'

crop_size = (512, 512)
# mmpretrain's MobileViT checkpoints expect BGR in [0, 1]
data_preprocessor = dict(
    mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False, size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='ltm_mm.LTMMobileViT',
        arch='small',
        merge_ratios=1.0,
        output_stride=16,
        out_indices=(4, ),  # stride 16 (dilated): 640 ch
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(
        in_channels=640, in_index=0, channels=256, dilations=(1, 6, 12, 18)),
    auxiliary_head=None)

train_dataloader = dict(batch_size=32)

max_iters = 4000
train_cfg = dict(max_iters=max_iters, val_interval=1000)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=9e-4, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=500),
    dict(type='CosineAnnealingLR', T_max=max_iters - 500, eta_min=1e-6,
         by_epoch=False, begin=500, end=max_iters)
]
default_hooks = dict(checkpoint=dict(interval=1000))
# 4 GPUs x 32 images; `--auto-scale-lr` rescales lr for other batch sizes
auto_scale_lr = dict(enable=False, base_batch_size=128)

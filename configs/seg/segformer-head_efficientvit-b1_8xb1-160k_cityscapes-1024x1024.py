# A SegFormer-style all-MLP head on a plain EfficientViT-B1 backbone,
# Cityscapes 1024x2048 with 1024x1024 crops and slide inference (windows of
# 1024x1024, stride 768); baseline of ./segformer-head_ltm-efficientvit-b1_
# ...cityscapes-1024x1024.py.  Head and its reasons as in
# ./segformer-head_efficientvit-b1_8xb2-160k_ade20k-512x512.py; recipe:
# mmseg's SegFormer on Cityscapes (AdamW lr 6e-5, head lr x10, poly decay,
# 160k iterations, 8 GPUs x 1 image).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

# timm's ImageNet EfficientViT-B1 weights, converted as for ADE20K
pretrained = 'checkpoints/efficientvit_b1_in1k_converted.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ltm_mm.EfficientViT',
        arch='b1',
        out_indices=(1, 2, 3),  # strides 8, 16, 32
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(
        in_channels=[64, 128, 256], in_index=[0, 1, 2], channels=128))

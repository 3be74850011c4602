# A SegFormer-style all-MLP head on a plain EfficientViT-B1 backbone, ADE20K
# at 512x512 (baseline of ./segformer-head_ltm-efficientvit-b1_...py).
# Head: mmseg's SegformerHead on the stride-8/16/32 outputs (64, 128, 256
# ch), each projected to 128 ch, upsampled to stride 8, concatenated and
# fused by a 1x1 conv; like the EfficientViT authors' segmentation head it
# fuses stages 2-4 at stride 8 and is light (about 0.34 GMACs at 512x512, an
# eighth of the backbone's), so the backbone dominates the cost that token
# merging reduces.  Recipe: mmseg's SegFormer (AdamW lr 6e-5, head lr x10,
# poly decay, 160k iterations, 8 GPUs x 2 images).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(imports=['ltm_mm'], allow_failed_imports=False)

# timm's ImageNet EfficientViT-B1 weights converted with
# `python tools/convert_checkpoint.py efficientvit SRC DST` (RGB input,
# ImageNet mean/std, as mmseg's default data preprocessor).
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

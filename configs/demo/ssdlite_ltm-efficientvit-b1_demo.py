# SSDLite with LTM-EfficientViT-B1 at 320x320 on the generated shapes,
# trained from scratch like ./ssdlite_efficientvit-b1_demo.py; r = 0.7 in
# every EfficientViTBlock, merging from the learned window logits (no class
# statistics without pre-training).
_base_ = './ssdlite_efficientvit-b1_demo.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMEfficientViT',
        merge_ratios=[0.7] * 7,
        restore_resolution=True))

# DDP: without class statistics the mask MLPs never run (no gradient), so
# DDP needs unused-parameter detection.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

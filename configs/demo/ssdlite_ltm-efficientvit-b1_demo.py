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

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

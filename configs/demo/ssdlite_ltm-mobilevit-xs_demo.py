# SSDLite with LTM-MobileViT-XS at 320x320 on the generated shapes, trained
# from scratch with the recipe of ./ssdlite_mobilevit-xs_demo.py (`make demo`
# runs this config; the plain one is its baseline).  From scratch there are
# no class statistics (those come from ImageNet pre-training), so the LTM
# layers merge with their learned window logits only.
_base_ = './ssdlite_mobilevit-xs_demo.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True))

# DDP: without class statistics the mask MLPs never run (no gradient), so
# DDP needs unused-parameter detection.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

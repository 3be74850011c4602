# Stage 1 of the two-stage demo (`make demo`): LTM-MobileViT-XS pre-trained
# as a 12-class classifier on generated object images, as the ImageNet
# pre-training configs do (paper Algorithm 1): the first epoch trains
# without merging, LTMStatisticsHook collects the class statistics every
# epoch, and from the second epoch on the layers merge at r = 0.7 with the
# IB step.  At 128 px the stride-8 block's two layers merge (8x8 -> 7x7 ->
# 6x6 tokens per sequence), as they do in stage 2 at 192 px (12x12 -> 11x11
# -> 10x10); the smaller grids stay.  The checkpoint carries the statistics
# into stage 2, ./ssdlite_ltm-mobilevit-xs_demo-pretrained.py.  Plain
# baseline: ./mobilevit-xs_demo-pretrain.py.
_base_ = './mobilevit-xs_demo-pretrain.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        arch='x_small',
        merge_ratios=[0.7] * 9,
        # every block restores its input grid, as in stage 2, so each layer
        # collects its statistics on the grids the detector's layer sees
        restore_resolution=True,
        num_classes={{_base_.num_classes}}))

custom_hooks = [dict(type='ltm_mm.LTMStatisticsHook', update=True,
                     warmup_epochs=1)]

# DDP: the mask parameters are idle in the warm-up epoch
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

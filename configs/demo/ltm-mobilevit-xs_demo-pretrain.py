# Stage 1 of the two-stage demo (`make demo`): LTM-MobileViT-XS pre-trained
# as a 12-class classifier on generated object images, as the ImageNet
# pre-training configs do (paper Algorithm 1): the first epoch trains
# without merging, LTMStatisticsHook collects the class statistics every
# epoch, and from the second epoch on every layer merges at r = 0.7 with the
# IB step.  The checkpoint carries the statistics into stage 2,
# ./ssdlite_ltm-mobilevit-xs_demo-pretrained.py.  Plain baseline:
# ./mobilevit-xs_demo-pretrain.py.
_base_ = './mobilevit-xs_demo-pretrain.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        arch='x_small',
        merge_ratios=[0.7] * 9,
        restore_resolution=False,  # the merged grid flows on (paper)
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

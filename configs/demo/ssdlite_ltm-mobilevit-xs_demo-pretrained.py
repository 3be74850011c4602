# Stage 2 of the two-stage demo (`make demo`): SSDLite LTM-MobileViT-XS
# fine-tuned on the generated shapes from the stage-1 classifier
# (./ltm-mobilevit-xs_demo-pretrain.py), whose checkpoint carries the class
# statistics; they stay frozen (require_statistics=True), as in
# configs/ltm_ssdlite_mobilevit_xs.py.  r = 0.7 in every layer, as in stage
# 1: at 192 px the stride-8 block's two layers merge (12x12 -> 11x11 ->
# 10x10 tokens per sequence), the smaller grids stay.  Plain baseline:
# ./ssdlite_mobilevit-xs_demo-pretrained.py.
_base_ = './ssdlite_mobilevit-xs_demo-pretrained.py'

pretrained = 'work_dirs/demo/pretrain/latest_checkpoint.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True,
        num_classes=12,  # classes of the statistics (stage 1's)
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# DDP: at 192x192 the stride-16 and -32 blocks (6x6 and 3x3 tokens) do not
# shrink at r = 0.7, so their mask parameters get no gradient
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

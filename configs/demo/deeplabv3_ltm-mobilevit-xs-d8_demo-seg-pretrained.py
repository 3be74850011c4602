# Stage 2 of the two-stage segmentation demo (`make seg-demo`):
# DeepLabv3 LTM-MobileViT-XS (output stride 8) fine-tuned on the generated
# segmentation shapes from the LTM stage-1 classifier of `make demo`
# (./ltm-mobilevit-xs_demo-pretrain.py), whose checkpoint carries the class
# statistics; they stay frozen (require_statistics=True).  r = 0.7 in every
# layer, as in stage 1.  Dilated to stride 8, every MobileViT block sees 8x8
# tokens per sequence at 128 px, so layers that did not merge in stage 1
# (4x4 and 2x2 grids there) merge here with statistics collected unmerged,
# which the model says once.  The IB step's scores are computed from
# detached tokens (detach_score_inputs): the loss reaches the backbone
# through the merged tokens' values, not through their weights.  Trained
# end to end instead, every run with statistics stayed at plain's mIoU
# (docs/two_stage.md).  Plain baseline:
# ./deeplabv3_mobilevit-xs-d8_demo-seg-pretrained.py.
_base_ = './deeplabv3_mobilevit-xs-d8_demo-seg-pretrained.py'

pretrained = 'work_dirs/demo/pretrain/latest_checkpoint.pth'

model = dict(
    backbone=dict(
        merge_ratios=[0.7] * 9,
        restore_resolution=True,
        num_classes=12,  # classes of the statistics (stage 1's)
        detach_score_inputs=True,
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# DDP: layers whose grid does not shrink give their mask parameters no
# gradient
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

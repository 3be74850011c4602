# SSDLite with LTM-MobileViT-S at 320x320 on COCO (paper Table III).
# Merging where it pays at 320x320 (benchmarks/merge_payoff.py, in
# docs/speed.md): each LTM layer costs a fixed overhead (mask module,
# merge, unmerge) and saves work in proportion to the tokens it removes.
# Only the first layer of the stride-8 block (20x20 tokens per sequence)
# and of the stride-16 block (10x10) merge, with r = 0.5; the later layers
# of a block run on the merged grid anyway, and the stride-32 block (5x5)
# cannot shrink at r = 0.7 and is slower merged at r = 0.5.  The paper's
# setting, r = 0.7 in all nine layers: ltm_ssdlite_mobilevit_s_paper.py.
# Each block's output is unmerged to its input grid, so SSDLite sees the
# usual strides.
# The backbone and its class statistics come from ImageNet pre-training with
# configs/pretrain/ltm-mobilevit-small_8xb128-300e_in1k.py (or the
# merging-only fine-tuning config); the statistics stay frozen here.
_base_ = './ssdlite_mobilevit_s.py'

pretrained = 'checkpoints/ltm-mobilevit-small_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        # one per transformer layer: stride-8 block (2), stride-16 (4),
        # stride-32 (3)
        merge_ratios=[0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        restore_resolution=True,
        num_classes=1000,  # classes of the statistics (ImageNet-1k)
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# DDP: every mask module merges at 320x320 (20x20 -> 15x15, 10x10 -> 8x8)
# and the statistics are required, so each mask parameter gets a gradient
# in every iteration: no unused-parameter detection needed (the paper
# variant needs it).

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

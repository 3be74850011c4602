# SSDLite with LTM-EfficientViT-B1 at 320x320 on COCO (paper Table III);
# backbone and statistics from ImageNet pre-training, statistics frozen.
# Merging where it costs least at 320x320 (docs/speed.md, "Where merging
# pays"): only each block's MBConv branch runs merged (the residual stream
# keeps the input grid), so a block saves MBConv work and pays a fixed cost
# for its mask module (the IB step reads the K x K log Q, 4 MB at K = 1000),
# merge and unmerge.  At the stride-32 stage (10x10) r = 0.7 leaves 9x9,
# and in the whole detector its convolutions took as long on 81 tokens as
# on 100 (profiled): those four blocks only cost.  The three stride-16
# blocks merge at r = 0.5 (20x20 -> 15x15): the same MACs as the paper's
# r = 0.7 in all seven blocks (0.944 vs 0.945 of plain) with three mask
# modules instead of seven; CPU latency at batch 1 (2 threads) 1.07-1.11
# of plain, against 1.18-1.29 for the paper's setting in the same runs.
# The paper's setting: ltm_ssdlite_efficientvit_b1_paper.py.  At COCO scale
# every block pays (the Mask R-CNN config merges in all seven).
_base_ = './ssdlite_efficientvit_b1.py'

pretrained = 'checkpoints/ltm-efficientvit-b1_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMEfficientViT',
        # one per EfficientViTBlock: stride-16 stage (3), stride-32 stage (4)
        merge_ratios=[0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0],
        restore_resolution=True,
        num_classes=1000,  # classes of the statistics (ImageNet-1k)
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# DDP: no find_unused_parameters (it costs a pass over the autograd graph
# every iteration). With the required statistics every mask module merges
# at this input size (20x20 -> 15x15 at 320, larger grids at COCO scale),
# so every mask parameter gets a gradient; if that changes (smaller inputs,
# no statistics), LTMStatisticsHook stops training after the first
# iteration with an error that says what to set.

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

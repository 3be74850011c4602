# DeepLabv3 with LTM-MobileViT-S (output stride 16) on PASCAL VOC 2012 at
# 512x512, the recipe of its plain baseline
# ./deeplabv3_mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py.
# The first transformer layer of each MobileViT block merges with r = 0.5
# (per sequence at 512x512: 32x32 -> 23x23 tokens in the stride-8 block,
# 16x16 -> 12x12 in the stride-16 and the dilated last block); the later
# layers of a block run on the merged grid anyway.  MACs 0.85x plain,
# CPU latency 0.93x; the paper's r = 0.7 in all nine layers gave 0.88x
# MACs but 1.14x latency (docs/benchmarks.md has the commands).
# Every LTM block's output is unmerged to its input grid
# (restore_resolution), so the ASPP sees the plain backbone's stride-16 map.
# The backbone and its class statistics come from ImageNet pre-training
# (configs/pretrain/ltm-mobilevit-small_*), as for the detectors; the
# statistics stay frozen here.
_base_ = './deeplabv3_mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py'

pretrained = 'checkpoints/ltm-mobilevit-small_in1k.pth'

model = dict(
    backbone=dict(
        # one per transformer layer: stride-8 block (2), stride-16 (4),
        # dilated last stage (3)
        merge_ratios=[0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0],
        restore_resolution=True,
        num_classes=1000,  # classes of the statistics (ImageNet-1k)
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# theta (the merge windows' learned logits) starts at 0, where LTM merges as
# area pooling; weight decay would pull it back there, so it has none
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.theta': dict(decay_mult=0.0)}))

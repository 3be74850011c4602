# SSDLite with LTM-MobileViT-S at 320x320 on COCO (paper Table III).
# Every transformer layer merges with r = 0.7 (paper Sec. 4.1); each block's
# output is unmerged to its input grid so SSDLite sees the usual strides.
# The backbone and its class statistics come from ImageNet pre-training with
# configs/pretrain/ltm-mobilevit-small_8xb128-300e_in1k.py (or the
# merging-only fine-tuning config); the statistics stay frozen here.
_base_ = './ssdlite_mobilevit_s.py'

pretrained = 'checkpoints/ltm-mobilevit-small_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True,
        num_classes=1000,  # classes of the statistics (ImageNet-1k)
        init_cfg=dict(checkpoint=pretrained)))

custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='ltm_mm.LTMStatisticsHook', update=False,
         require_statistics=True)
]

# DDP: at 320x320 the stride-32 stage has a 5x5 grid per patch position,
# which r = 0.7 leaves at 5x5, so the masks of its three layers never merge
# and get no gradient: DDP needs unused-parameter detection.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

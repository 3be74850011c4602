# SSDLite with LTM-MobileViT-XS at 320x320 on COCO; backbone and statistics
# from configs/pretrain/ltm-mobilevit-xsmall_8xb128-300e_in1k.py.
_base_ = './ssdlite_mobilevit_xs.py'

pretrained = 'checkpoints/ltm-mobilevit-xsmall_in1k.pth'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True,
        num_classes=1000,
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

# SSDLite with LTM-MobileViT-S at 320x320 on COCO (paper Table III).
# Every transformer layer merges with r = 0.7 (paper Sec. 4.1); each block's
# output is unmerged to its input grid so SSDLite sees the usual strides.
_base_ = './ssdlite_mobilevit_s.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True))

# SSDLite LTM-EfficientViT-B1 with the paper's merging: r = 0.7 in every
# EfficientViTBlock (paper Sec. 4.1).  The same MACs as
# ltm_ssdlite_efficientvit_b1.py's setting (0.945 vs 0.944 of plain) but
# slower on CPU at 320x320: the stride-32 blocks (10x10 -> 9x9) pay for a
# mask module and save almost nothing (docs/speed.md, "Where merging pays").
_base_ = './ltm_ssdlite_efficientvit_b1.py'

model = dict(backbone=dict(merge_ratios=[0.7] * 7))

# DDP: every block merges at 320x320 (20x20 -> 17x17, 10x10 -> 9x9) and the
# statistics are required, so no unused-parameter detection is needed.

# SSDLite LTM-MobileViT-XS with the paper's merging: r = 0.7 in every
# transformer layer (paper Sec. 4.1).  Fewer MACs than
# ltm_ssdlite_mobilevit_xs.py's setting but slower on CPU at 320x320: the
# stride-16 and stride-32 grids are too small for merging to pay for its
# overhead (docs/speed.md, "Where merging pays").
_base_ = './ltm_ssdlite_mobilevit_xs.py'

model = dict(backbone=dict(merge_ratios=[0.7] * 9))

# DDP: at 320x320 the stride-32 stage has a 5x5 grid per patch position,
# which r = 0.7 leaves at 5x5, so the masks of its three layers never merge
# and get no gradient: DDP needs unused-parameter detection.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)

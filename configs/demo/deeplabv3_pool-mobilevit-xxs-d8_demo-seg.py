# Baseline merger for ./deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py: the same
# backbone, merge ratios and unmerge; only G differs, here from
# fixed area pooling onto the LTM merged grid (no parameters).
# benchmarks/compare_mergers.py --task seg compares it with the learned merger.
_base_ = './deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py'

model = dict(backbone=dict(merger='pool'))

# no mask parameters, so none is idle under DDP
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=False)

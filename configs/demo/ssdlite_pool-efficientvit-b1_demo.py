# Baseline merger for ./ssdlite_ltm-efficientvit-b1_demo.py: the same backbone,
# merge ratios, merged grids and unmerge; only G differs, here from
# fixed area pooling onto the LTM merged grid (no parameters).
# benchmarks/compare_mergers.py compares it with the learned merger.
_base_ = './ssdlite_ltm-efficientvit-b1_demo.py'

model = dict(backbone=dict(merger='pool'))

# no mask parameters, so none is idle under DDP
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=False)

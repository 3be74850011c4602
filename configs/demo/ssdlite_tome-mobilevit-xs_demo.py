# Baseline merger for ./ssdlite_ltm-mobilevit-xs_demo.py: the same backbone,
# merge ratios, merged grids and unmerge; only G differs, here from
# ToMe's bipartite soft matching on the attention keys (no parameters).
# benchmarks/compare_mergers.py compares it with the learned merger.
_base_ = './ssdlite_ltm-mobilevit-xs_demo.py'

model = dict(backbone=dict(merger='tome'))

# no mask parameters, so none is idle under DDP
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=False)

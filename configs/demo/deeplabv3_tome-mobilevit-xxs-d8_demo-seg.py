# Baseline merger for ./deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py: the same
# backbone, merge ratios and unmerge; only G differs, here from
# bipartite matching of the attention keys (ToMe; no parameters), its
# merged tokens a set: conv_proj runs on them, the fusion conv after unmerging.
# benchmarks/compare_mergers.py --task seg compares it with the learned merger.
_base_ = './deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py'

model = dict(backbone=dict(merger='tome'))

# no mask parameters, so none is idle under DDP
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=False)

# Fine-tuning setup (mask modules only, 50 epochs) for LTM-MobileViT-XS.
_base_ = './ltm-mobilevit-small_merging-only-50e_in1k.py'

load_from = 'checkpoints/mobilevit-xsmall_3rdparty_in1k_20221018-be39a6e7.pth'

model = dict(backbone=dict(arch='x_small'), head=dict(in_channels=384))

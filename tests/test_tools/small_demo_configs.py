"""Small training configs for tests: the demo configs at 128x128, batch 2,
no validation, data under a given folder (inherit and override only)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DET_CONFIG = ROOT / 'configs' / 'demo' / 'ssdlite_ltm-mobilevit-xs_demo.py'
CLS_CONFIG = ROOT / 'configs' / 'demo' / 'ltm-mobilevit-xs_demo-cls.py'

_COMMON = """
train_cfg = dict(max_epochs={max_epochs}, val_interval=100)
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None
default_hooks = dict(checkpoint=dict(interval=100),
                     logger=dict(interval=1))
"""

# MobileViT-XS at 128x128: per patch position the stage-3 grids (8x8)
# merge, the stage-4 and stage-5 ones (4x4, 2x2) stay as they are.
_DETECTOR = """_base_ = {base!r}
size = 128
model = dict(bbox_head=dict(anchor_generator=dict(
    input_size=size, strides=[16, 32, 64, 128, 256, 512],
    min_sizes=[16, 32, 48, 64, 96, 112],
    max_sizes=[32, 48, 64, 96, 112, 128])))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(size, size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(
    data_root={data!r}, pipeline=train_pipeline))
"""

_CLASSIFIER = """_base_ = {base!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root={data!r}))
"""


def small_detector_config(path, data, max_epochs, base=DET_CONFIG):
    """An SSDLite demo config (default: LTM MobileViT-XS) on ``data``
    (tools/make_demo_data.py)."""
    Path(path).write_text(
        _DETECTOR.format(base=str(base), data=str(data)) +
        _COMMON.format(max_epochs=max_epochs))
    return path


def small_classifier_config(path, data, max_epochs):
    """LTM-MobileViT-XS demo pre-training (hook with warmup_epochs=1) on
    ``data`` (tools/make_demo_classification_data.py, 128x128 images)."""
    Path(path).write_text(
        _CLASSIFIER.format(base=str(CLS_CONFIG), data=str(data)) +
        _COMMON.format(max_epochs=max_epochs))
    return path

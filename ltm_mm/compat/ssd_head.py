"""mmdet 3.3.0: ``SSDHead`` has no ``loss_cls`` attribute.

``BaseDenseHead._predict_by_feat_single`` asks
``getattr(self.loss_cls, 'custom_cls_channels', False)``; SSDHead computes its
classification loss inline and never sets ``loss_cls``, so ``predict`` raises
``AttributeError``.  We give every SSDHead instance ``loss_cls = None`` after
its own ``__init__`` when (and only when) it did not define one, which makes
the lookup fall through to the softmax branch SSD uses.
"""
import functools

from mmdet.models.dense_heads import SSDHead


def patch_ssd_head_loss_cls() -> None:
    """Make ``SSDHead`` instances carry ``loss_cls`` (idempotent)."""
    if getattr(SSDHead.__init__, '_ltm_mm_patched', False):
        return
    original_init = SSDHead.__init__

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if not hasattr(self, 'loss_cls'):
            self.loss_cls = None

    __init__._ltm_mm_patched = True
    SSDHead.__init__ = __init__

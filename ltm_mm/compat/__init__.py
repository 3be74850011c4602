"""Fixes for known breakages of the pinned stack, applied on ``import ltm_mm``.

Each fix lives in its own module, is idempotent, and is tested in
``tests/test_compat``.  Nothing here needs an environment variable.

* :mod:`.ssd_head` -- mmdet 3.3.0 ``SSDHead`` never builds ``loss_cls`` but
  ``BaseDenseHead._predict_by_feat_single`` reads it, so SSD prediction and
  validation raise ``AttributeError``.
* :mod:`.checkpoint_loading` -- torch >= 2.6 loads with ``weights_only=True``,
  which rejects the numpy and mmengine objects that Runner checkpoints hold.
"""
from .checkpoint_loading import register_checkpoint_safe_globals
from .ssd_head import patch_ssd_head_loss_cls

patch_ssd_head_loss_cls()
register_checkpoint_safe_globals()

__all__ = ['patch_ssd_head_loss_cls', 'register_checkpoint_safe_globals']

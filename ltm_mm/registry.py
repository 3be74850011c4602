"""Registries of ltm_mm, children of the mmengine roots (scope ``ltm_mm``).

Because they are children of mmengine's roots, ``type='ltm_mm.LTMMobileViT'``
resolves from mmdet's and mmpretrain's default scopes, and mmengine imports
this module by itself when it meets the ``ltm_mm.`` prefix.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='ltm_mm',
    locations=['ltm_mm.models'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='ltm_mm', locations=['ltm_mm.hooks'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='ltm_mm',
    locations=['ltm_mm.engine'])

"""ltm_mm: Learnable Token Merging (LTM-Transformer) for OpenMMLab.

Importing the package applies the compatibility fixes in
:mod:`ltm_mm.compat` and registers the models and hooks.
"""
from . import compat  # noqa: F401  (applies the fixes first)
from . import deploy, engine, hooks, models  # noqa: F401
from .registry import HOOKS, MODELS
from .version import __version__

__all__ = ['MODELS', 'HOOKS', '__version__']

"""Configs that leave DDP's unused-parameter detection off must give every
mask parameter a gradient in every iteration.

A learnable mask module's ``theta`` gets a gradient only while its layer
merges (a ratio can leave a small grid unchanged: 5x5 at r = 0.7), and its
MLP only once the layer has class statistics.  So a config without
``find_unused_parameters=True`` needs both: statistics required by
``LTMStatisticsHook`` and every mask module merging at the config's input
size.  Otherwise multi-GPU training stops at its second iteration.
"""
import warnings
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from ltm_mm.analysis.flops import build_model, input_size_from_config
from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.models.layers import LearnableMergeMask
from merging_masks import merging_by_mask

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py')
                 if '_base_' not in p.parts)


def finds_unused_parameters(cfg: Config) -> bool:
    wrapper = cfg.get('model_wrapper_cfg') or {}
    return bool(wrapper.get('find_unused_parameters', False))


def requires_statistics(cfg: Config) -> bool:
    return any(
        str(hook.get('type', '')).endswith('LTMStatisticsHook')
        and hook.get('require_statistics', False)
        for hook in cfg.get('custom_hooks') or [])


def idle_mask_modules(model, input_size) -> list:
    """Names of the mask modules that do not merge on a ``(1, 3, H, W)``
    input (with valid statistics)."""
    fill_synthetic_statistics(model)
    merged = merging_by_mask(
        model, lambda: model.backbone(torch.zeros(1, 3, *input_size)))
    return [name for name, merging in merged.items() if not merging]


def _configs_without_unused_detection() -> list:
    params = []
    for path in CONFIGS:
        cfg = Config.fromfile(str(path))
        if not finds_unused_parameters(cfg):
            params.append(
                pytest.param(cfg, id=str(path.relative_to(CONFIG_DIR))))
    return params


@pytest.mark.parametrize('cfg', _configs_without_unused_detection())
def test_every_mask_parameter_trains_without_unused_detection(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = build_model(cfg)
    if not any(isinstance(m, LearnableMergeMask) for m in model.modules()):
        return  # plain models and parameter-free mergers (pool, tome)
    assert requires_statistics(cfg), (
        'without required statistics the mask MLPs can go without a '
        'gradient: set find_unused_parameters=True or require statistics')
    input_size = input_size_from_config(cfg)
    assert input_size is not None
    idle = idle_mask_modules(model, input_size)
    assert not idle, (
        f'at {input_size[0]}x{input_size[1]} these mask modules do not merge '
        f'and get no gradient, so DDP needs find_unused_parameters=True: '
        f'{idle}')


def test_idle_mask_modules_are_found():
    """The check above can fail: the paper's r = 0.7 leaves MobileViT-XS's
    5x5 stride-32 grids unmerged at 320x320."""
    paper = CONFIG_DIR / 'ltm_ssdlite_mobilevit_xs_paper.py'
    cfg = Config.fromfile(str(paper))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = build_model(cfg)
    idle = idle_mask_modules(model, (320, 320))
    assert idle == [f'backbone.layers.4.1.merge_masks.{i}' for i in range(3)]

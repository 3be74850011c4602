"""Every config under configs/ loads and builds its model."""
import warnings
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py')
                 if '_base_' not in p.parts)


def test_config_folder_is_not_empty():
    names = {p.name for p in CONFIGS}
    assert {'ltm_ssdlite_mobilevit_s.py', 'ssdlite_mobilevit_s.py'} <= names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[str(p.relative_to(CONFIG_DIR)) for p in CONFIGS])
def test_config_builds_model(path):
    cfg = Config.fromfile(str(path))
    assert 'ltm_mm' in cfg.get('custom_imports', {}).get('imports', [])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    backbone = getattr(model, 'backbone', None)
    assert backbone is not None
    # the neck/head take exactly the channels the backbone publishes
    published = getattr(backbone, 'out_channels', None)
    neck = cfg.model.get('neck')
    if published is not None and neck and 'in_channels' in neck:
        assert tuple(neck['in_channels']) == tuple(published)
    _check_theta_has_no_weight_decay(model, cfg)


def _check_theta_has_no_weight_decay(model, cfg):
    """Every LTM config exempts the window logits theta from weight decay
    (weight decay would pull them back to pooling) and no other weight."""
    thetas = {id(p) for n, p in model.named_parameters()
              if n.endswith('.theta')}
    if not thetas:
        return
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = optim_wrapper.optimizer.param_groups
    decay = {id(p): g['weight_decay'] for g in groups for p in g['params']}
    assert thetas <= set(decay)
    assert all(decay[t] == 0 for t in thetas)
    assert any(d > 0 for d in decay.values())

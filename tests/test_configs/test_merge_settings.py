"""The SSDLite configs merge where it pays, without giving up MACs.

Each LTM SSDLite config at 320x320 merges in fewer layers than the paper's
r = 0.7 everywhere (its ``_paper`` sibling): fewer mask modules, whose
fixed cost is what made merging slower than plain on small grids
(docs/speed.md, "Where merging pays").  The trade must not cost MACs: the
deployed setting counts at most the paper setting's MACs, and both fewer
than the plain detector.
"""
import warnings
from pathlib import Path

import pytest

from ltm_mm.analysis.flops import config_complexity, load_config_model
from ltm_mm.models.layers import LearnableMergeMask

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
# deployed LTM config -> plain baseline; the paper setting is <name>_paper.py
SSDLITE_PAIRS = {
    'ltm_ssdlite_mobilevit_s.py': 'ssdlite_mobilevit_s.py',
    'ltm_ssdlite_mobilevit_xs.py': 'ssdlite_mobilevit_xs.py',
    'ltm_ssdlite_efficientvit_b1.py': 'ssdlite_efficientvit_b1.py',
}


def paper_sibling(name: str) -> Path:
    return CONFIG_DIR / name.replace('.py', '_paper.py')


def merging_mask_modules(path: Path) -> list:
    """Names of the mask modules that merge on one input of the config's
    size (synthetic valid statistics)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        loaded = load_config_model(str(path))
    masks = {name: module for name, module in loaded.model.named_modules()
             if isinstance(module, LearnableMergeMask)}
    for mask in masks.values():
        mask.recording = True
    loaded.model(loaded.dummy_inputs())
    return [name for name, mask in masks.items()
            if mask.record is not None and mask.record['merging']]


def macs(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return config_complexity(str(path)).macs


@pytest.mark.parametrize('name', sorted(SSDLITE_PAIRS))
def test_deployed_setting_merges_less_at_no_more_macs(name):
    deployed, paper = CONFIG_DIR / name, paper_sibling(name)
    assert paper.is_file(), f'the paper setting of {name} is missing'
    deployed_masks = merging_mask_modules(deployed)
    paper_masks = merging_mask_modules(paper)
    assert deployed_masks, f'{name} does not merge at all'
    assert set(deployed_masks) < set(paper_masks)
    plain_macs = macs(CONFIG_DIR / SSDLITE_PAIRS[name])
    assert macs(deployed) <= macs(paper) < plain_macs

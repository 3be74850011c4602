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

from ltm_mm.analysis.flops import count_complexity, load_config_model
from merging_masks import merging_by_mask

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
# deployed LTM config -> plain baseline; the paper setting is <name>_paper.py
SSDLITE_PAIRS = {
    'ltm_ssdlite_mobilevit_s.py': 'ssdlite_mobilevit_s.py',
    'ltm_ssdlite_mobilevit_xs.py': 'ssdlite_mobilevit_xs.py',
    'ltm_ssdlite_efficientvit_b1.py': 'ssdlite_efficientvit_b1.py',
}


def paper_sibling(name: str) -> Path:
    return CONFIG_DIR / name.replace('.py', '_paper.py')


def macs_and_merging_masks(path: Path) -> tuple:
    """MACs of one input of the config's size and the names of the mask
    modules that merge on it (synthetic valid statistics)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        loaded = load_config_model(str(path))
        inputs = loaded.dummy_inputs()
        macs = count_complexity(loaded.model, inputs).macs
    merged = merging_by_mask(loaded.model, lambda: loaded.model(inputs))
    return macs, {name for name, merging in merged.items() if merging}


@pytest.mark.parametrize('name', sorted(SSDLITE_PAIRS))
def test_deployed_setting_merges_less_at_no_more_macs(name):
    deployed, paper = CONFIG_DIR / name, paper_sibling(name)
    assert paper.is_file(), f'the paper setting of {name} is missing'
    deployed_macs, deployed_masks = macs_and_merging_masks(deployed)
    paper_macs, paper_masks = macs_and_merging_masks(paper)
    assert deployed_masks, f'{name} does not merge at all'
    assert deployed_masks < paper_masks
    plain_macs, _ = macs_and_merging_masks(CONFIG_DIR / SSDLITE_PAIRS[name])
    assert deployed_macs <= paper_macs < plain_macs

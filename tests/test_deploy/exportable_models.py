"""Seeded demo models for the export tests (weights made here, in eval
mode), with or without class statistics that visibly change the merge."""
import warnings
from pathlib import Path

import torch

from ltm_mm.analysis.flops import build_model
from ltm_mm.apis import load_config
from ltm_mm.deploy import DeployableNetwork
from ltm_mm.models.layers.merge_mask import LearnableMergeMask

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'configs' / 'demo'


def demo_model(config: str, statistics: bool = False, seed: int = 0):
    """The model of ``configs/demo/<config>.py``, seeded weights; with
    ``statistics``, every LTM layer gets class statistics and a score MLP
    large enough that the IB step moves the merge."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = build_model(load_config(str(DEMO / f'{config}.py')))
    if statistics:
        strong_statistics(model, seed)
    return model.eval()


def strong_statistics(model, seed: int = 0) -> None:
    """Class statistics whose ``phi`` is far from one-hot (``beta`` of
    ``10 / D`` per token, ``P_ref = 1``) and a score MLP whose scores
    ``-2 <MLP(z), u>`` are of the order of the window logits, so that the IB
    step changes the merge."""
    generator = torch.Generator().manual_seed(seed)
    masks = [m for m in model.modules() if isinstance(m, LearnableMergeMask)]
    assert masks
    for mask in masks:
        stats = mask.statistics
        classes, dim = stats.centroids.shape
        stats.update(
            torch.randn(classes, dim, generator=generator),
            torch.randn(classes, classes, generator=generator).log_softmax(0),
            torch.randn(stats.input_centroids.shape, generator=generator),
            beta=10.0 / dim, reference_num_merged=1.0)
        stats.set_valid(True)
        with torch.no_grad():
            mask.mlp_out.weight.normal_(0, 300.0 / dim, generator=generator)


def network(config: str, statistics: bool = False, seed: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return DeployableNetwork(demo_model(config, statistics, seed)).eval()

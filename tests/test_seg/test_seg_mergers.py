"""The baseline-merger segmentation demo configs train, and the comparison
script's segmentation runs differ from the demo recipe only where it says."""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper

from ltm_mm.analysis.merger_comparison import run_config
from ltm_mm.models.layers.mergers import MERGERS

from project_scripts import load_script
from seg_models import build_segmentor, load_cfg, packed_batch, random_images


def _compare_mergers():
    return load_script('benchmarks/compare_mergers.py')


@pytest.mark.parametrize('merger', ['pool', 'tome'])
def test_baseline_seg_config_trains_one_iteration(merger):
    torch.set_num_threads(1)
    cfg = load_cfg(f'demo/deeplabv3_{merger}-mobilevit-xxs-d8_demo-seg.py')
    model = build_segmentor(cfg)
    backbone = model.backbone
    assert backbone.merger == merger
    # the LTM demo's ratios: the first layer of each block merges
    merging = [m for m in backbone.modules()
               if isinstance(m, MERGERS[merger])]
    assert len(merging) == 3
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = [p.detach().clone() for p in model.decode_head.parameters()]
    data = packed_batch(random_images([(64, 64), (64, 64)]),
                        with_labels=True)
    losses = model.train_step(data, optim)
    loss = float(losses['decode.loss_ce'])
    assert math.isfinite(loss) and loss > 0
    assert any(not torch.equal(b, p) for b, p in zip(
        before, model.decode_head.parameters()))


def test_seg_comparison_runs_override_only_ratios_and_epochs():
    cfg = run_config('mobilevit-xxs', 'pool', 0.5, 2)
    assert cfg.model.backbone.merger == 'pool'
    assert cfg.model.backbone.merge_ratios == [0.5] * 9
    assert cfg.model.backbone.output_stride == 8
    assert cfg.train_cfg.max_epochs == 2 and cfg.train_cfg.val_interval == 3
    cosine, = [s for s in cfg.param_scheduler
               if s['type'] == 'CosineAnnealingLR']
    assert cosine['T_max'] == 2 and cosine['end'] == 2
    plain = run_config('mobilevit-xxs', 'plain', None, 2)
    assert plain.model.backbone.merge_ratios == 1.0
    assert plain.train_dataloader == cfg.train_dataloader


def test_seg_comparison_arguments():
    compare = _compare_mergers()
    args = compare.parse_args(['--task', 'seg'])
    assert (args.backbone, args.epochs) == ('mobilevit-xxs', 16)
    args = compare.parse_args(['--backbone', 'mobilevit-xxs'])
    assert args.task == 'seg'
    args = compare.parse_args([])
    assert (args.task, args.backbone, args.epochs) == ('det', 'mobilevit-xs',
                                                        8)
    for bad in (['--task', 'seg', '--backbone', 'efficientvit-b1'],
                ['--backbone', 'mobilevit-s'], ['--ratios', '0']):
        with pytest.raises(SystemExit):
            compare.parse_args(bad)

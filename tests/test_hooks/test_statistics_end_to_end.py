"""Pre-train -> statistics -> COCO fine-tune -> bit-identical statistics.

On locally generated data (no download): an LTM-MobileViT-XS classifier
pre-trains for 2 short epochs (the first a warm-up without merging) under
the real mmengine Runner and LTMStatisticsHook; SSDLite LTM-MobileViT-XS is
then fine-tuned from that checkpoint, and its statistics must equal the
pre-trained ones bit for bit after training, in the saved checkpoint and
after ``--resume``.
"""
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ltm_mm.datasets import demo_classification, demo_shapes
from ltm_mm.models.layers import LearnableMergeMask
from statistics_keys import STAT_KEY, backbone_statistics

ROOT = Path(__file__).resolve().parents[2]
CLS_CONFIG = ROOT / 'configs' / 'demo' / 'ltm-mobilevit-xs_demo-cls.py'
DET_CONFIG = ROOT / 'configs' / 'demo' / 'ssdlite_ltm-mobilevit-xs_demo.py'


class MergeProbe(Hook):
    """Records, per training epoch, whether any LTM layer merged and whether
    the statistics were valid while it did."""

    def __init__(self):
        self.epochs = {}
        self._handles = []

    def before_train_epoch(self, runner):
        masks = [m for m in runner.model.modules()
                 if isinstance(m, LearnableMergeMask)]
        epoch = self.epochs.setdefault(runner.epoch, dict(
            merged=False, valid=all(m.statistics.is_valid() for m in masks)))

        def on_forward(module, args, output):
            if module.training and output is not None:
                epoch['merged'] = True

        self._handles = [m.register_forward_hook(on_forward) for m in masks]

    def after_train_epoch(self, runner):
        for handle in self._handles:
            handle.remove()


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp('e2e')
    data = root / 'cls'
    demo_classification.generate(str(data), num_classes=4, num_train=4,
                                 num_val=2, size=128)
    cfg = Config.fromfile(str(CLS_CONFIG))
    cfg.work_dir = str(root / 'pretrain')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data)
    cfg.train_cfg.val_interval = 100  # no validation needed here
    probe = MergeProbe()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        runner = Runner.from_cfg(cfg)
        runner.register_hook(probe, priority='LOW')
        runner.train()
    ckpt = root / 'pretrain' / 'epoch_2.pth'
    return root, ckpt, probe.epochs


def test_warmup_epoch_runs_without_merging_then_merges_with_statistics(
        pretrained):
    _, _, epochs = pretrained
    assert epochs[0] == dict(merged=False, valid=False)
    assert epochs[1] == dict(merged=True, valid=True)


def test_pretrained_checkpoint_has_valid_statistics(pretrained):
    _, ckpt, _ = pretrained
    stats = backbone_statistics(torch.load(ckpt)['state_dict'])
    valid = [v for k, v in stats.items() if k.endswith('valid')]
    assert len(valid) == 9 and all(bool(v) for v in valid)
    for key, value in stats.items():
        if key.endswith('log_q'):
            assert torch.isfinite(value).all() and value.shape == (4, 4)


def _train_detector(root, ckpt, work_dir, *extra):
    data = root / 'det'
    demo_shapes.generate(str(data), num_train=4, num_val=2)
    # the demo detector, initialised from the pre-trained backbone and its
    # statistics, which the hook keeps frozen
    config = root / 'det_from_pretrained.py'
    config.write_text(
        f'_base_ = {str(DET_CONFIG)!r}\n'
        f'model = dict(backbone=dict(num_classes=4, init_cfg=dict('
        f'type="Pretrained", checkpoint={str(ckpt)!r}, '
        f'prefix="backbone.")))\n'
        f'custom_hooks = [dict(type="ltm_mm.LTMStatisticsHook", '
        f'update=False, require_statistics=True)]\n')
    command = [
        sys.executable, str(ROOT / 'tools' / 'train.py'), str(config),
        '--work-dir', str(work_dir), '--cfg-options',
        f'train_dataloader.dataset.'
        f'data_root={data}', f'val_dataloader.dataset.data_root={data}',
        f'test_dataloader.dataset.data_root={data}',
        f'val_evaluator.ann_file={data}/annotations/instances_val.json',
        f'test_evaluator.ann_file={data}/annotations/instances_val.json',
        'train_dataloader.batch_size=2', *extra
    ]
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[
        -3000:]
    return result.stdout + result.stderr


def test_detector_statistics_stay_bit_identical(pretrained):
    root, ckpt, _ = pretrained
    expected = backbone_statistics(torch.load(ckpt)['state_dict'])
    work_dir = root / 'det_run'
    log = _train_detector(root, ckpt, work_dir, 'train_cfg.max_epochs=1')
    assert 'statistics valid, frozen' in log
    # the demo config keeps one checkpoint, latest_checkpoint.pth
    first_path = work_dir / 'after_epoch_1.pth'
    shutil.copy(work_dir / 'latest_checkpoint.pth', first_path)
    first = torch.load(first_path)
    assert first['meta']['epoch'] == 1
    got = backbone_statistics(first['state_dict'])
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    # the detector did train: a non-statistics weight changed
    assert any(not torch.equal(v, torch.load(ckpt)['state_dict'].get(
        k, v)) for k, v in first['state_dict'].items()
        if k.startswith('backbone.') and STAT_KEY not in k)
    # resume one more epoch from that checkpoint
    log = _train_detector(root, ckpt, work_dir, 'train_cfg.max_epochs=2',
                          '--resume', str(first_path))
    assert 'resumed epoch: 1' in log
    second = torch.load(work_dir / 'latest_checkpoint.pth')
    assert second['meta']['epoch'] == 2
    resumed = backbone_statistics(second['state_dict'])
    for key in expected:
        assert torch.equal(resumed[key], expected[key]), key

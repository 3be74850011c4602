"""The configs of ``make demo`` in miniature: stage 1 pre-trains the LTM
classifier on generated objects (warm-up epoch, then merging with the
statistics it collected), stage 2 fine-tunes the SSDLite demo from it with
the statistics frozen."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ltm_mm.analysis.attribute_accuracy import attribute_accuracy
from ltm_mm.datasets import demo_objects, demo_shapes
from project_scripts import load_script
from small_demo_configs import ROOT, small_detector_config
from statistics_keys import backbone_statistics

DEMO = ROOT / 'configs' / 'demo'


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    root = tmp_path_factory.mktemp('two_stage')
    data = root / 'objects'
    demo_objects.generate(str(data), num_train=1, num_val=1, size=64)
    cfg = Config.fromfile(str(DEMO / 'ltm-mobilevit-xs_demo-pretrain.py'))
    cfg.work_dir = str(root / 'pretrain')
    cfg.train_dataloader.dataset.data_root = str(data)
    cfg.train_dataloader.batch_size = 12
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=100)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        Runner.from_cfg(cfg).train()
    return root, Path(cfg.work_dir) / 'latest_checkpoint.pth'


def test_stage1_collects_statistics_while_merging(stage1):
    """The classifier restores each block's grid, as the detector does: at
    128 px a sequence's tokens shrink layer after layer until r = 0.7
    cannot shrink them (ceil(h sqrt r) = h): stride 8: 8 -> 7 -> 6; stride
    16: 4x4 stays; stride 32: 2x2 stays.  The same two layers merge in
    stage 2 at 192 px (12 -> 11 -> 10; 6x6 and 3x3 stay).  Every layer's
    statistics are valid either way."""
    _, ckpt = stage1
    stats = backbone_statistics(torch.load(ckpt)['state_dict'])
    valid = {k for k, v in stats.items() if k.endswith('.valid') and v}
    assert len(valid) == 9
    merged = {k.split('.statistics')[0]: bool(v) for k, v in stats.items()
              if k.endswith('merged_at_collection')}
    assert {k for k, v in merged.items() if v} == {
        'layers.2.1.merge_masks.0', 'layers.2.1.merge_masks.1'}
    assert len(merged) == 9
    assert all(v.shape == (12, 12) for k, v in stats.items()
               if k.endswith('log_q'))


def test_stage2_starts_from_stage1_with_frozen_statistics(stage1, tmp_path):
    root, ckpt = stage1
    data = root / 'shapes'
    demo_shapes.generate(str(data), num_train=2, num_val=1)
    path = small_detector_config(
        tmp_path / 'stage2.py', data, max_epochs=1,
        base=DEMO / 'ssdlite_ltm-mobilevit-xs_demo-pretrained.py')
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    cfg.work_dir = str(tmp_path / 'work')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        runner = Runner.from_cfg(cfg)
        runner.train()
    expected = backbone_statistics(torch.load(ckpt)['state_dict'])
    got = backbone_statistics(runner.model.state_dict())
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_classifier_attributes_script_counts_every_image(stage1, capsys):
    """benchmarks/classifier_attributes.py over stage 1's val split (one
    image per class): the matrix counts all 12 and the part accuracies
    agree with it."""
    root, ckpt = stage1
    script = load_script('benchmarks/classifier_attributes.py')
    assert script.main([
        str(DEMO / 'ltm-mobilevit-xs_demo-pretrain.py'), str(ckpt),
        '--cfg-options', f'val_dataloader.dataset.data_root={root}/objects',
        'test_dataloader.dataset.data_root=' + f'{root}/objects']) == 0
    out = capsys.readouterr().out
    assert 'images: 12' in out
    rows = [line.split()[1:] for line in out.splitlines()
            if line.startswith('  ') and '_' in line]
    confusion = np.array(rows, dtype=int)
    assert confusion.shape == (12, 12) and confusion.sum() == 12
    expected = attribute_accuracy(confusion, demo_objects.class_names(),
                                  ('colour', 'shape'))
    for key, value in expected.items():
        assert f'{key} accuracy: {100 * value:.1f}%' in out


def test_classifier_attributes_script_names_a_missing_checkpoint(capsys):
    script = load_script('benchmarks/classifier_attributes.py')
    assert script.main([str(DEMO / 'ltm-mobilevit-xs_demo-pretrain.py'),
                        'missing.pth']) == 2
    assert "checkpoint not found: 'missing.pth'" in capsys.readouterr().err

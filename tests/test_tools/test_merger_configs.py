"""The baseline-merger demo configs train, and the comparison script's
runs differ from the demo recipe only where it says."""
import math
import warnings

import pytest
import torch

from project_scripts import load_script
from small_demo_configs import ROOT, small_detector_config

CONFIGS = [ROOT / 'configs' / 'demo' / f'ssdlite_{merger}-{backbone}_demo.py'
           for merger in ('pool', 'tome')
           for backbone in ('mobilevit-xs', 'efficientvit-b1')]


def _load(name, folder):
    return load_script(f'{folder}/{name}.py')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    data = tmp_path_factory.mktemp('det')
    _load('make_demo_data', 'tools').main([str(data), '--num-train', '2',
                                           '--num-val', '1'])
    return data


@pytest.mark.parametrize('config', CONFIGS, ids=[c.stem for c in CONFIGS])
def test_baseline_config_trains_one_iteration(config, shapes, tmp_path):
    torch.set_num_threads(1)
    path = small_detector_config(tmp_path / 'cfg.py', shapes, max_epochs=1,
                                 base=config)
    train = _load('train', 'tools')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        runner = train.build_runner(train.parse_args(
            [str(path), '--work-dir', str(tmp_path / 'work')]))
        merger = config.stem.split('_')[1].split('-')[0]
        assert runner.model.backbone.merger == merger
        runner.train()
    losses, _ = runner.message_hub.get_scalar('train/loss').data
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0


def test_comparison_runs_override_only_ratios_and_epochs():
    compare = _load('compare_mergers', 'benchmarks')
    cfg = compare.run_config('efficientvit-b1', 'tome', 0.5, 3)
    assert cfg.model.backbone.merger == 'tome'
    assert cfg.model.backbone.merge_ratios == [0.5] * 7
    assert cfg.train_cfg.max_epochs == 3 and cfg.train_cfg.val_interval == 4
    cosine, = [s for s in cfg.param_scheduler
               if s['type'] == 'CosineAnnealingLR']
    assert cosine['T_max'] == 3 and cosine['end'] == 3
    plain = compare.run_config('efficientvit-b1', 'plain', None, 3)
    assert plain.model.backbone.type == 'ltm_mm.EfficientViT'
    assert [compare.run_name(*spec) for spec in compare.runs([0.7, 0.5])] == [
        'plain', 'ltm_r0.7', 'ltm_r0.5', 'pool_r0.7', 'pool_r0.5',
        'tome_r0.7', 'tome_r0.5']


@pytest.mark.parametrize('checkpoint,force,resumed', [
    (True, False, True), (True, True, False), (False, False, False)])
def test_interrupted_comparison_runs_resume(tmp_path, monkeypatch,
                                            checkpoint, force, resumed):
    """A worker whose run folder holds an epoch checkpoint goes on from it
    (the runs take hours on a CPU); --force starts afresh."""
    from mmengine.runner import Runner
    compare = _load('compare_mergers', 'benchmarks')
    if checkpoint:
        (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    seen = {}

    class Stop(Exception):
        pass

    def from_cfg(cfg):
        seen.update(resume=cfg.resume, work_dir=cfg.work_dir,
                    epochs=cfg.train_cfg.max_epochs)
        raise Stop

    monkeypatch.setattr(Runner, 'from_cfg', staticmethod(from_cfg))
    args = compare.parse_args(
        ['--run', 'pool', '--ratio', '0.5', '--epochs', '2', '--threads',
         str(torch.get_num_threads()), '--work-dir', str(tmp_path)] +
        (['--force'] if force else []))
    with pytest.raises(Stop):
        compare.train_and_test(args)
    assert seen == dict(resume=resumed, work_dir=str(tmp_path), epochs=2)


@pytest.mark.parametrize('epochs,reduced', [(3, True), (8, False)])
def test_comparison_table_rows(tmp_path, epochs, reduced):
    """Each row shows its run's metrics, MACs and latency, and the ratios to
    the plain row; a shortened recipe is flagged."""
    compare = _load('compare_mergers', 'benchmarks')
    args = compare.parse_args(['--ratios', '0.5', '--epochs', str(epochs),
                               '--iters', '3', '--threads', '1'])
    specs = list(compare.runs([0.5]))
    metrics = [{'coco/bbox_mAP': m, 'coco/bbox_mAP_50': m + 0.2}
               for m in (0.7, 0.5, 0.55, 0.4)]
    macs = [2.0e9, 1.5e9, 1.6e9, 1.8e9]
    latency = {'cpu': [100.0, 90.0, 80.0, 110.0]}
    out = tmp_path / 'table'
    compare.write_table(args, specs, metrics, macs, latency, out)
    text = out.with_suffix('.md').read_text()
    rows = [line for line in text.splitlines() if line.startswith('| ')]
    assert rows[1:] == [
        '| plain | 1 | 0.700 | 0.900 | 2.000 | 1.000 | 100.0 | 1.00 |',
        '| ltm | 0.5 | 0.500 | 0.700 | 1.500 | 0.750 | 90.0 | 0.90 |',
        '| pool | 0.5 | 0.550 | 0.750 | 1.600 | 0.800 | 80.0 | 0.80 |',
        '| tome | 0.5 | 0.400 | 0.600 | 1.800 | 0.900 | 110.0 | 1.10 |']
    assert ('Reduced run' in text) == reduced
    assert 'without the IB step' in text
    assert '![bbox mAP against MACs](table.png)' in text

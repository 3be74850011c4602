"""The baseline-merger demo configs train, and the comparison script's
runs differ from the demo recipe only where it says."""
import math
import warnings

import pytest
import torch

from ltm_mm.analysis import merger_comparison as comparison
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
    cfg = comparison.run_config('efficientvit-b1', 'tome', 0.5, 3)
    assert cfg.model.backbone.merger == 'tome'
    assert cfg.model.backbone.merge_ratios == [0.5] * 7
    assert cfg.train_cfg.max_epochs == 3 and cfg.train_cfg.val_interval == 4
    cosine, = [s for s in cfg.param_scheduler
               if s['type'] == 'CosineAnnealingLR']
    assert cosine['T_max'] == 3 and cosine['end'] == 3
    plain = comparison.run_config('efficientvit-b1', 'plain', None, 3)
    assert plain.model.backbone.type == 'ltm_mm.EfficientViT'
    names = [comparison.run_name(*spec)
             for spec in comparison.runs([0.7, 0.5])]
    assert names == [
        'plain', 'ltm_r0.7', 'ltm_r0.5', 'pool_r0.7', 'pool_r0.5',
        'tome_r0.7', 'tome_r0.5']


def test_comparison_at_another_input_size(tmp_path):
    """--input-size resizes every run's images and anchors (and nothing
    else), keeps its runs apart from the 320 px ones, and is for detection
    only."""
    base = comparison.run_config('mobilevit-xs', 'pool', 0.7, 8)
    small = comparison.run_config('mobilevit-xs', 'pool', 0.7, 8,
                               input_size=192)
    assert small.model.bbox_head.anchor_generator.strides == [
        16, 32, 64, 96, 192, 192]
    assert small.model.backbone == base.model.backbone
    assert small.optim_wrapper == base.optim_wrapper
    assert [t for t in small.train_dataloader.dataset.pipeline
            if t['type'] == 'Resize'][0]['scale'] == (192, 192)
    assert comparison.Comparison('det', 'mobilevit-xs', 8,
                                 input_size=192).input_hw() == (192, 192)
    script = _load('compare_mergers', 'benchmarks')
    args = script.parse_args(['--input-size', '192'])
    assert script.comparison_of(args).input_hw() == (192, 192)
    with pytest.raises(SystemExit):
        script.parse_args(['--task', 'seg', '--input-size', '192'])


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
        compare.run_worker(args)
    assert seen == dict(resume=resumed, work_dir=str(tmp_path), epochs=2)


@pytest.mark.parametrize('epochs,reduced', [(3, True), (8, False)])
def test_comparison_table_rows(tmp_path, epochs, reduced):
    """Each row shows the mean and standard deviation of its seeds'
    metrics, MACs and latency, and the ratios to the plain row; a shortened
    recipe is flagged."""
    settings = comparison.Comparison('det', 'mobilevit-xs', epochs, seeds=2,
                                  iters=3, threads=1)
    specs = comparison.runs([0.5])
    metrics = [[{'coco/bbox_mAP': m + d, 'coco/bbox_mAP_50': m + 0.2}
                for d in (-0.01, 0.01)] for m in (0.7, 0.5, 0.55, 0.4)]
    macs = [2.0e9, 1.5e9, 1.6e9, 1.8e9]
    latency = {'cpu': [100.0, 90.0, 80.0, 110.0]}
    out = tmp_path / 'table'
    text = comparison.write_table(settings, specs, metrics, macs, latency, out,
                               'python benchmarks/compare_mergers.py')
    assert out.with_suffix('.md').read_text() == text
    rows = [line for line in text.splitlines() if line.startswith('| ')]
    # the sample standard deviation of (m - 0.01, m + 0.01) is 0.0141
    assert rows[1:] == [
        '| plain | 1 | 0.700 ± 0.014 | 0.900 ± 0.000 | 2 | 2.000 | 1.000 | '
        '100.0 | 1.00 |',
        '| ltm | 0.5 | 0.500 ± 0.014 | 0.700 ± 0.000 | 2 | 1.500 | 0.750 | '
        '90.0 | 0.90 |',
        '| pool | 0.5 | 0.550 ± 0.014 | 0.750 ± 0.000 | 2 | 1.600 | 0.800 | '
        '80.0 | 0.80 |',
        '| tome | 0.5 | 0.400 ± 0.014 | 0.600 ± 0.000 | 2 | 1.800 | 0.900 | '
        '110.0 | 1.10 |']
    assert ('Reduced run' in text) == reduced
    assert 'without the IB step' in text and 'seeds 0, 1' in text
    assert '![bbox mAP against MACs](table.png)' in text
    comparison.plot(settings, specs, metrics, macs, out)
    assert out.with_suffix('.png').is_file()


def test_two_stage_rows_and_their_starts(tmp_path):
    """Two-stage mode: every row fine-tunes from a stage-1 classifier; only
    ltm rows with statistics start from checkpoints that carry them."""
    names = [comparison.run_name(*row) for row in comparison.runs([0.7], True)]
    assert names == ['plain', 'ltm_r0.7', 'ltm_r0.7_stage-1',
                     'ltm_r0.7_one-pass', 'pool_r0.7', 'tome_r0.7']

    def hook_of(cfg):
        hooks = [h for h in cfg.custom_hooks
                 if 'LTMStatisticsHook' in h['type']]
        return hooks[0] if hooks else None

    plain = comparison.run_config('mobilevit-xs', 'plain', None, 8, 'plain', 2,
                               'p.pth')
    assert plain.model.backbone.init_cfg.checkpoint == 'p.pth'
    assert plain.model.backbone.type == 'mmpretrain.MobileViT'
    assert plain.randomness.seed == 2
    for merger in ('pool', 'tome'):
        cfg = comparison.run_config('mobilevit-xs', merger, 0.7, 8, 'plain', 0,
                                 'p.pth')
        assert cfg.model.backbone.merger == merger
        assert cfg.model.backbone.init_cfg.checkpoint == 'p.pth'
        assert hook_of(cfg) is None
        # one variable away from the plain run: data and recipe
        assert cfg.train_dataloader == plain.train_dataloader
        assert cfg.model.data_preprocessor == plain.model.data_preprocessor
    bare = comparison.run_config('mobilevit-xs', 'ltm', 0.7, 8, 'plain', 0,
                              'p.pth')
    assert hook_of(bare)['require_statistics'] is False
    assert bare.model.backbone.merge_ratios == [0.7] * 9
    for start in ('stage-1', 'one-pass'):
        cfg = comparison.run_config('mobilevit-xs', 'ltm', 0.7, 8, start, 0,
                                 'l.pth')
        assert hook_of(cfg)['require_statistics'] is True
        assert cfg.model.backbone.init_cfg.checkpoint == 'l.pth'
    with pytest.raises(ValueError, match='no class statistics'):
        comparison.run_config('mobilevit-xs', 'pool', 0.7, 8, 'one-pass', 0,
                           'l.pth')
    with pytest.raises(ValueError, match='two-stage runs exist'):
        comparison.run_config('efficientvit-b1', 'ltm', 0.7, 8, 'plain', 0,
                           'p.pth')


def test_two_stage_arguments(tmp_path):
    compare = _load('compare_mergers', 'benchmarks')
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    args = compare.parse_args(['--stage1-plain', str(ckpt), '--stage1-ltm',
                               str(ckpt), '--seeds', '3'])
    assert args.two_stage and args.seeds == 3
    for bad in (['--stage1-plain', str(ckpt)],
                ['--stage1-plain', str(ckpt), '--stage1-ltm',
                 str(tmp_path / 'missing.pth')],
                ['--stage1-plain', str(ckpt), '--stage1-ltm', str(ckpt),
                 '--backbone', 'efficientvit-b1'],
                ['--seeds', '0']):
        with pytest.raises(SystemExit):
            compare.parse_args(bad)


@pytest.mark.parametrize('task,backbone,start,shipped', [
    ('det', 'mobilevit-xs', 'plain', 'configs/ltm_ssdlite_mobilevit_xs.py'),
    ('det', 'efficientvit-b1', 'scratch',
     'configs/ltm_ssdlite_efficientvit_b1.py'),
    ('seg', 'mobilevit-xs', 'plain', 'configs/seg/'
     'deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py'),
    ('seg', 'mobilevit-xxs', 'scratch', 'configs/seg/'
     'deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py')])
def test_shipped_rows_merge_as_the_shipped_configs(task, backbone, start,
                                                   shipped):
    """A ``shipped`` row takes the per-layer ratios of the task's shipped
    LTM config for every merger, and only them."""
    from mmengine.config import Config
    expected = list(Config.fromfile(ROOT / shipped).model.backbone
                    .merge_ratios)
    assert 1.0 in expected and min(expected) == 0.5
    for merger in ('ltm', 'pool', 'tome'):
        cfg = comparison.run_config(backbone, merger, 'shipped', 8, start, 1,
                                    'p.pth', task=task)
        uniform = comparison.run_config(backbone, merger, 0.5, 8, start, 1,
                                        'p.pth', task=task)
        assert cfg.model.backbone.merge_ratios == expected
        cfg.model.backbone.merge_ratios = uniform.model.backbone.merge_ratios
        assert cfg.to_dict() == uniform.to_dict()
    assert comparison.run_name('pool', 'shipped', start) == 'pool_shipped'
    assert comparison.run_name('ltm', 'shipped', 'stage-1') == \
        'ltm_shipped_stage-1'


@pytest.mark.parametrize('task,backbone,two_stage', [
    ('det', 'mobilevit-xs', False), ('det', 'efficientvit-b1', False),
    ('det', 'mobilevit-xs', True), ('seg', 'mobilevit-xxs', False),
    ('seg', 'mobilevit-xs', True)])
def test_layer_count_is_the_configs_merge_ratio_count(task, backbone,
                                                      two_stage):
    """The counted layers are the LTM demo config's merge ratios, as
    written in the config file."""
    from mmengine.config import Config
    layers = comparison.layer_count(task, backbone, two_stage)
    ltm = (comparison.TWO_STAGE[task].ltm if two_stage else
           comparison.TASKS[task].backbones[backbone][1].format('ltm'))
    assert len(Config.fromfile(ROOT / ltm).model.backbone.merge_ratios) == \
        layers
    settings = comparison.Comparison(task, backbone, 8, two_stage=two_stage)
    assert settings.layers() == layers


def test_layer_count_of_an_unknown_backbone_names_the_known_ones():
    with pytest.raises(ValueError, match='has no backbone .*mobilevit-xxs'):
        comparison.layer_count('seg', 'mobilevit-xs', two_stage=False)


def test_shipped_ratio_arguments_rows_and_table(tmp_path):
    compare = _load('compare_mergers', 'benchmarks')
    assert compare.parse_args(['--ratios', '0.7', 'shipped']).ratios == [
        0.7, 'shipped']
    assert compare.parse_args(['--run', 'ltm', '--ratio', 'shipped']
                              ).ratio == 'shipped'
    for bad in ('1.0', '0', 'paper', '-0.5'):
        with pytest.raises(SystemExit):
            compare.parse_args(['--ratios', '0.7', bad])
    names = [comparison.run_name(*row)
             for row in comparison.runs([0.7, 'shipped'], True)]
    assert names == [
        'plain', 'ltm_r0.7', 'ltm_r0.7_stage-1', 'ltm_r0.7_one-pass',
        'ltm_shipped', 'ltm_shipped_stage-1', 'ltm_shipped_one-pass',
        'pool_r0.7', 'pool_shipped', 'tome_r0.7', 'tome_shipped']
    settings = comparison.Comparison('det', 'mobilevit-xs', 8, seeds=1,
                                     two_stage=True)
    specs = [comparison.Row('plain', None, 'plain'),
             comparison.Row('pool', 'shipped', 'plain')]
    metrics = [[{'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.7}]] * 2
    text = comparison.write_table(settings, specs, metrics, [2e9, 1.5e9],
                                  {'cpu': [10.0, 9.0]}, tmp_path / 't', 'cmd')
    assert '| pool | shipped | plain classifier | 0.500 ± 0.000 |' in text
    assert ('`shipped`: the per-layer merge ratios of '
            '`configs/ltm_ssdlite_mobilevit_xs.py`, '
            '[0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0].') in text
    assert 'every layer` or the shipped ratios below)' in text
    assert text.splitlines()[0].endswith(
        'fine-tuned from stage-1 classifiers, shipped merge ratios')
    uniform = comparison.write_table(settings, specs[:1], metrics[:1], [2e9],
                                     {'cpu': [10.0]}, tmp_path / 'u', 'cmd')
    assert 'every layer`)' in uniform and 'shipped' not in uniform
    comparison.plot(settings, specs, metrics, [2e9, 1.5e9], tmp_path / 't')
    assert (tmp_path / 't.png').is_file()


def test_shipped_rows_cost_less_than_plain_at_the_two_stage_size():
    """At stage 2's 192 px the shipped ratios merge (12x12 -> 9x9 and
    6x6 -> 5x5 tokens per sequence): fewer MACs than plain for every
    merger, and more than the paper's r = 0.7 in every layer saves."""
    torch.set_num_threads(1)
    settings = comparison.Comparison('det', 'mobilevit-xs', 8,
                                     two_stage=True, iters=1, threads=1)
    specs = [comparison.Row('plain', None, 'plain'),
             comparison.Row('pool', 'shipped', 'plain'),
             comparison.Row('tome', 'shipped', 'plain'),
             comparison.Row('ltm', 'shipped', 'stage-1'),
             comparison.Row('ltm', 0.7, 'stage-1')]
    macs, latency = comparison.cost(settings, specs)
    assert len(latency['cpu']) == len(specs)
    plain, *shipped, paper = macs
    for merger, shipped_macs in zip(('pool', 'tome', 'ltm'), shipped):
        assert shipped_macs < plain, merger
        assert shipped_macs < paper, merger

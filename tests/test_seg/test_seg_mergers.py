"""The baseline-merger segmentation demo configs train, and the comparison
script's segmentation runs differ from the demo recipe only where it says."""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper

from ltm_mm.analysis.merger_comparison import run_config
from ltm_mm.models.backbones import LTMMobileViT
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


def test_seg_two_stage_rows_fine_tune_the_stage1_classifiers():
    """Two-stage segmentation: DeepLabv3 MobileViT-XS (output stride 8) from
    the classifiers of `make demo`; each merger one variable away from the
    plain run."""
    plain = run_config('mobilevit-xs', 'plain', None, 16, 'plain', 1,
                       'p.pth', task='seg')
    assert plain.model.type == 'EncoderDecoder'
    assert plain.model.backbone.arch == 'x_small'
    assert plain.model.backbone.output_stride == 8
    assert plain.model.backbone.init_cfg.checkpoint == 'p.pth'
    assert plain.model.backbone.merge_ratios == 1.0
    assert plain.randomness.seed == 1
    for merger in ('pool', 'tome', 'ltm'):
        cfg = run_config('mobilevit-xs', merger, 0.7, 16, 'plain', 1,
                         'p.pth', task='seg')
        assert cfg.model.backbone.merge_ratios == [0.7] * 9
        assert cfg.model.backbone.init_cfg.checkpoint == 'p.pth'
        assert cfg.train_dataloader == plain.train_dataloader
        assert cfg.model.decode_head == plain.model.decode_head
        hooks = [h for h in cfg.custom_hooks
                 if 'LTMStatisticsHook' in h['type']]
        if merger == 'ltm':  # no statistics in the plain classifier
            assert hooks[0]['require_statistics'] is False
            assert cfg.model.backbone.get('merger', 'ltm') == 'ltm'
            assert cfg.model.backbone.detach_score_inputs is True
        else:
            assert hooks == [] and cfg.model.backbone.merger == merger
            # the IB step's option goes with the IB step: the backbone
            # builds
            assert 'detach_score_inputs' not in cfg.model.backbone
            LTMMobileViT(**{k: v for k, v in cfg.model.backbone.items()
                            if k not in ('type', 'init_cfg')})
    stage1 = run_config('mobilevit-xs', 'ltm', 0.7, 16, 'stage-1', 0,
                        'l.pth', task='seg')
    assert stage1.custom_hooks[0]['require_statistics'] is True
    assert stage1.model.backbone.init_cfg.checkpoint == 'l.pth'
    # from scratch, segmentation has MobileViT-XXS only
    with pytest.raises(ValueError, match='no backbone'):
        run_config('mobilevit-xs', 'pool', 0.7, 16, task='seg')


def test_seg_two_stage_arguments_and_worker(tmp_path, monkeypatch):
    compare = _compare_mergers()
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    stage1 = ['--stage1-plain', str(ckpt), '--stage1-ltm', str(ckpt)]
    args = compare.parse_args(['--task', 'seg', '--ratios', '0.7'] + stage1)
    assert (args.task, args.backbone, args.epochs) == ('seg', 'mobilevit-xs',
                                                        16)
    assert compare.comparison_of(args).input_hw() == (128, 128)
    with pytest.raises(SystemExit):  # XXS has no stage-1 classifier
        compare.parse_args(['--task', 'seg', '--backbone', 'mobilevit-xxs'] +
                           stage1)
    # the parent hands the task to each run's worker, which builds the
    # segmentation config from it
    commands = []
    monkeypatch.setattr(compare.subprocess, 'run',
                        lambda command, **kw: commands.append(command))
    run_dir = tmp_path / 'pool_r0.7' / 'seed0'
    run_dir.mkdir(parents=True)
    (run_dir / 'metrics.json').write_text('{"mIoU": 30.0}')
    row = compare.Row('pool', 0.7, 'plain')
    args.force = True
    assert compare.run_row(args, tmp_path, row, 0) == {'mIoU': 30.0}
    command, = commands
    worker = compare.parse_args(command[2:])
    assert worker.run == 'pool' and worker.task == 'seg'
    cfg = compare.run_config(worker.backbone, worker.run, worker.ratio,
                             worker.epochs, worker.start, worker.seed,
                             worker.checkpoint, worker.input_size,
                             compare.ROOT, worker.task)
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.backbone.merger == 'pool'
    assert cfg.model.backbone.init_cfg.checkpoint == str(ckpt)

"""tools/collect_statistics.py: class statistics from one pass of a
pre-trained classifier over a classification data set, no training."""
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from ltm_mm.datasets import demo_classification
from ltm_mm.models.layers import LearnableMergeMask
from ltm_mm.models.layers.pool_merger import AreaPoolPlan
from project_scripts import ROOT, load_script
from statistics_keys import STAT_KEY

CLS_CONFIG = ROOT / 'configs' / 'demo' / 'ltm-mobilevit-xs_demo-cls.py'
NUM_CLASSES = 4

tool = load_script('tools/collect_statistics.py')


def _data_options(data):
    return [f'{loader}.dataset.data_root={data}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')]


def _classifier():
    cfg = Config.fromfile(str(CLS_CONFIG))
    init_default_scope('mmpretrain')
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return cfg, MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('collect')
    data = root / 'cls'
    demo_classification.generate(str(data), num_classes=NUM_CLASSES,
                                 num_train=3, num_val=2, size=128)
    cfg, model = _classifier()
    checkpoint = root / 'pretrained.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='kept')),
               checkpoint)
    return root, data, checkpoint


def _run(setup, *extra, out='out.pth'):
    root, data, checkpoint = setup
    out = root / out
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        code = tool.main([str(CLS_CONFIG), str(checkpoint), '--out', str(out),
                          '--batch-size', '4', *extra, '--cfg-options',
                          *_data_options(data)])
    return code, out


def _reference_centroids(setup):
    """Per class and layer, the mean over sequences of the merged-token mean
    of area pooling (the initial LTM merge), from the layers' actual inputs:
    written without the tool, the hook or the accumulator."""
    from mmengine.runner import Runner
    root, data, _ = setup
    cfg, model = _classifier()
    state = torch.load(setup[2], map_location='cpu')['state_dict']
    model.load_state_dict(state)
    masks = [m for m in model.modules() if isinstance(m, LearnableMergeMask)]
    means = {id(m): [] for m in masks}

    def capture(module, args, output):
        tokens, source_hw = args[0], args[1]
        plan = AreaPoolPlan(tuple(source_hw), module.merged_hw(source_hw))
        merged = tokens if plan.merged_hw == tuple(source_hw) else \
            plan.merge(tokens)
        means[id(module)].append(merged.mean(1))

    handles = [m.register_forward_hook(capture) for m in masks]
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.dataset = dict(loader_cfg.dataset, data_root=str(data),
                              pipeline=cfg.test_dataloader.dataset.pipeline)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
    labels = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for batch in Runner.build_dataloader(loader_cfg):
            batch = model.data_preprocessor(batch, False)
            labels += [int(s.gt_label) for s in batch['data_samples']]
            model(batch['inputs'], batch['data_samples'], mode='tensor')
    for handle in handles:
        handle.remove()
    labels = torch.tensor(labels)
    centroids = []
    for mask in masks:
        merged = torch.cat(means[id(mask)])  # (images * S, D)
        per_image = merged.shape[0] // labels.numel()
        sequence_labels = labels.repeat_interleave(per_image)
        centroids.append(torch.stack([
            merged[sequence_labels == a].mean(0) for a in range(NUM_CLASSES)
        ]))
    return centroids


def test_one_pass_writes_the_statistics_of_the_data(setup):
    code, out = _run(setup)
    assert code == 0
    written = torch.load(out, map_location='cpu')
    source = torch.load(setup[2], map_location='cpu')
    state = written['state_dict']
    # the weights are the pre-trained ones, bit for bit
    for key, value in source['state_dict'].items():
        if STAT_KEY not in key:
            assert torch.equal(state[key], value), key
    assert written['meta']['note'] == 'kept'
    info = written['meta']['ltm_statistics']
    assert info['passes'] == 1 and info['split'] == 'train'
    assert info['classes_seen'] == NUM_CLASSES
    _, model = _classifier()
    model.load_state_dict(state)
    masks = [m for m in model.modules() if isinstance(m, LearnableMergeMask)]
    assert masks and all(m.statistics.is_valid() for m in masks)
    assert all(bool(m.statistics.seen.all()) for m in masks)
    for mask, expected in zip(masks, _reference_centroids(setup)):
        torch.testing.assert_close(mask.statistics.centroids, expected,
                                   atol=1e-4, rtol=1e-4)


def test_a_second_pass_takes_q_from_phi(setup):
    first = torch.load(_run(setup, out='one.pth')[1])['state_dict']
    code, out = _run(setup, '--passes', '2', out='two.pth')
    assert code == 0
    second = torch.load(out)['state_dict']
    log_q = [k for k in second if k.endswith('.statistics.log_q')]
    assert log_q
    # pass 1: smoothed identity; pass 2: Q from phi, no longer the identity
    assert not torch.allclose(first[log_q[0]], second[log_q[0]])
    assert torch.load(out)['meta']['ltm_statistics']['passes'] == 2


def test_the_statistics_load_into_the_detector(setup):
    """The written checkpoint is a pre-trained LTM backbone for the SSDLite
    demo: its statistics arrive bit for bit."""
    code, out = _run(setup, out='for_det.pth')
    assert code == 0
    cfg = Config.fromfile(str(ROOT / 'configs' / 'demo' /
                              'ssdlite_ltm-mobilevit-xs_demo-pretrained.py'))
    cfg.model.backbone.num_classes = NUM_CLASSES
    cfg.model.backbone.init_cfg.checkpoint = str(out)
    init_default_scope('mmdet')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        detector = MODELS.build(cfg.model)
        detector.init_weights()
    written = torch.load(out)['state_dict']
    loaded = {k: v for k, v in detector.backbone.state_dict().items()
              if STAT_KEY in k}
    assert loaded
    for key, value in loaded.items():
        assert torch.equal(value, written['backbone.' + key]), key


def test_refuses_to_overwrite_its_input(setup, capsys):
    root, data, checkpoint = setup
    code = tool.main([str(CLS_CONFIG), str(checkpoint), '--out',
                      str(checkpoint)])
    assert code == 2
    assert 'is the input checkpoint' in capsys.readouterr().err


def test_mismatched_classes_are_named(setup, capsys):
    code, _ = _run(setup, out='bad.pth')  # baseline: works
    assert code == 0
    root, data, checkpoint = setup
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        code = tool.main([str(CLS_CONFIG), str(checkpoint), '--out',
                          str(root / 'bad5.pth'), '--cfg-options',
                          *_data_options(data),
                          'model.backbone.num_classes=5'])
    assert code == 2
    err = capsys.readouterr().err
    assert '4 classes' in err and 'num_classes=5' in err
    assert not (root / 'bad5.pth').exists()


def test_missing_checkpoint_is_named(tmp_path, capsys):
    code = tool.main([str(CLS_CONFIG), str(tmp_path / 'none.pth'), '--out',
                      str(tmp_path / 'out.pth')])
    assert code == 2
    assert 'none.pth' in capsys.readouterr().err

"""``tools/train.py --amp`` trains the LTM SSDLite demo detector on CPU.

mmengine 0.10.7's AmpOptimWrapper refuses to start without a GPU; on CPU
``--amp`` selects ``ltm_mm.CPUAmpOptimWrapper`` (bfloat16 autocast, the
only dtype of CPU autocast, no loss scaling).
"""
import math
import warnings

import pytest
import torch
from mmengine.config import Config

from ltm_mm.apis import enable_amp
from ltm_mm.engine import CPUAmpOptimWrapper
from project_scripts import load_script
from small_demo_configs import DET_CONFIG, ROOT, small_detector_config


def _tool(name):
    return load_script(f'tools/{name}.py')


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU path')
def test_amp_trains_the_ltm_detector_on_cpu_with_finite_losses(tmp_path):
    torch.set_num_threads(1)
    data = tmp_path / 'det'
    _tool('make_demo_data').main([str(data), '--num-train', '4',
                                  '--num-val', '1'])
    config = small_detector_config(tmp_path / 'det.py', data, max_epochs=1)
    train = _tool('train')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        runner = train.build_runner(train.parse_args(
            [str(config), '--amp', '--work-dir', str(tmp_path / 'work')]))
        # the backbone's convolutions really run in bfloat16
        dtypes = set()
        conv = runner.model.backbone.stem.conv
        handle = conv.register_forward_hook(
            lambda module, args, out: dtypes.add(out.dtype))
        runner.train()
        handle.remove()
    assert isinstance(runner.optim_wrapper, CPUAmpOptimWrapper)
    assert dtypes == {torch.bfloat16}
    losses, counts = runner.message_hub.get_scalar('train/loss').data
    assert len(losses) == 2  # 4 images, batch 2
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)
    for name, param in runner.model.named_parameters():
        assert torch.isfinite(param).all(), name
        assert param.dtype == torch.float32, name


def test_enable_amp_picks_the_wrapper_for_the_device(monkeypatch):
    cfg = Config.fromfile(str(DET_CONFIG))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'ltm_mm.CPUAmpOptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    cfg = Config.fromfile(str(DET_CONFIG))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_cpu_amp_wrapper_rejects_float16():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match='only bfloat16'):
        CPUAmpOptimWrapper(optimizer=optimizer, dtype='float16')
    wrapper = CPUAmpOptimWrapper(optimizer=optimizer)
    with wrapper.optim_context(model):
        assert model(torch.ones(1, 2)).dtype == torch.bfloat16

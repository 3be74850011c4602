"""LTMStatisticsHook names idle LTM mask parameters under DDP without
find_unused_parameters, before DDP's own error (1-process gloo group)."""
import re
import socket
import types
import warnings

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel
from torch import nn

from ltm_mm.hooks import LTMStatisticsHook
from ltm_mm.models.backbones import LTMMobileViT


@pytest.fixture
def process_group():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:'
                                  f'{port}', rank=0, world_size=1)
    yield
    torch_dist.destroy_process_group()


class Net(nn.Module):

    def __init__(self, merge_ratios=(0.7, ) * 9):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = LTMMobileViT(
            'xx_small', merge_ratios=list(merge_ratios), num_classes=3)

    def forward(self, images):
        return sum(out.mean() for out in self.backbone(images))


def _start(model, find_unused):
    ddp = MMDistributedDataParallel(model, find_unused_parameters=find_unused)
    hook = LTMStatisticsHook(update=False, require_statistics=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        hook.before_train(types.SimpleNamespace(model=ddp))
    return ddp, hook


def _iterate(ddp, size, iterations):
    images = torch.randn(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for _ in range(iterations):
            ddp(images).backward()


MLP = 'mlp_in.bias, mlp_in.weight, mlp_out.bias, mlp_out.weight'


def test_idle_mask_parameters_raise_with_the_fix(process_group):
    # at 128x128 only the stage-3 grids (8x8 per patch position) shrink;
    # without statistics no mask MLP runs
    ddp, hook = _start(Net(), find_unused=False)
    with pytest.raises(RuntimeError) as error:
        _iterate(ddp, 128, 2)
    message = str(error.value)
    assert "model_wrapper_cfg = dict(type='MMDistributedDataParallel', " \
        "find_unused_parameters=True)" in message
    idle = dict(re.findall(r'(\d+) \(([a-z_., ]+)\)', message))
    assert idle == {'0': MLP, '1': MLP,
                    **{str(i): MLP + ', theta' for i in range(2, 9)}}
    assert hook._ddp_watch.handles == []  # checked once, hooks removed


def test_no_error_when_every_mask_parameter_is_used(process_group):
    # merging in the first layer of stages 3 and 4 only: at 256x256 their
    # grids (per patch position 16x16, 8x8) both shrink
    model = Net(merge_ratios=[0.7, 1, 0.7, 1, 1, 1, 1, 1, 1])
    for name, param in model.named_parameters():
        if '.mlp_' in name:  # idle without statistics: frozen here
            param.requires_grad_(False)
    ddp, hook = _start(model, find_unused=False)
    _iterate(ddp, 256, 2)
    assert hook._ddp_watch.handles == []


def test_nothing_watched_with_find_unused_parameters(process_group):
    ddp, hook = _start(Net(), find_unused=True)
    assert hook._ddp_watch is None
    _iterate(ddp, 128, 2)

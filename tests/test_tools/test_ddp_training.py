"""LTM configs train under DDP: 2 gloo processes through mmengine's Runner.

Each run starts two processes, initialises the gloo process group itself
(mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device``, so on CPU
the group must exist before the Runner is built; the Runner then skips
``init_dist``) and trains the config as it is, wrapped in
``MMDistributedDataParallel`` with the config's own wrapper settings.  The
only change to them: CPU modules take no ``device_ids`` (DDP rejects the
``[LOCAL_RANK]`` that mmengine passes by default).

Mask parameters of the LTM layers are idle in some iterations (warm-up
epoch, no class statistics yet, grids that the ratio does not shrink), so
without ``find_unused_parameters`` DDP stops at the second iteration.
"""
import os
import socket
import warnings
from pathlib import Path

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from project_scripts import load_script
from small_demo_configs import (ROOT, small_classifier_config,
                                small_detector_config)

WORLD_SIZE = 2


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _run_tool(name, *args):
    """``python tools/NAME.py ARGS`` in this process."""
    load_script(f'tools/{name}.py').main([str(a) for a in args])


def cpu_model_wrapper_cfg(cfg):
    """The config's DDP wrapper settings, made valid for CPU modules.

    Without ``model_wrapper_cfg``, :meth:`mmengine.runner.Runner.wrap_model`
    builds ``MMDistributedDataParallel(broadcast_buffers=False,
    find_unused_parameters=cfg.find_unused_parameters)``; with it, it fills
    in ``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module.
    """
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        wrapper = dict(type='MMDistributedDataParallel',
                       broadcast_buffers=False,
                       find_unused_parameters=cfg.get(
                           'find_unused_parameters', False))
    return dict(wrapper, device_ids=None)


def _worker(rank, port, config, work_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')
    torch_dist.init_process_group('gloo', rank=rank, world_size=WORLD_SIZE)
    try:
        from mmengine.config import Config
        from mmengine.runner import Runner

        import ltm_mm  # noqa: F401
        cfg = Config.fromfile(config)
        cfg.work_dir = str(work_dir)
        cfg.launcher = 'pytorch'
        cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg)
        runner = Runner.from_cfg(cfg)
        runner.train()
        model = runner.model
        torch.save(dict(
            wrapper=type(model).__name__,
            find_unused=model.find_unused_parameters,
            iters=runner.iter,
            params={k: v.detach().clone()
                    for k, v in model.module.named_parameters()},
            statistics={k: v.clone()
                        for k, v in model.module.state_dict().items()
                        if '.statistics.' in k},
        ), Path(work_dir) / f'rank{rank}.pth')
    finally:
        torch_dist.destroy_process_group()


def _train_two_ranks(config, work_dir):
    mp.spawn(_worker, args=(_free_port(), str(config), str(work_dir)),
             nprocs=WORLD_SIZE, join=True)
    return [torch.load(Path(work_dir) / f'rank{r}.pth')
            for r in range(WORLD_SIZE)]


def _assert_same_parameters(ranks):
    first, second = ranks
    assert first['params'].keys() == second['params'].keys()
    for key, value in first['params'].items():
        assert torch.equal(value, second['params'][key]), key
    for key, value in first['statistics'].items():
        assert torch.equal(value, second['statistics'][key]), key


def _assert_merging_layers_trained(params):
    """MobileViT-XS at 128x128: the stage-3 grids merge (8x8 -> 7x7),
    the later ones (4x4, 2x2) stay as they are, so their masks are idle."""
    from ltm_mm.ops.mask_weights import initial_theta
    thetas = {k: v for k, v in params.items() if k.endswith('.theta')}
    assert len(thetas) == 9
    changed = {k for k, v in thetas.items()
               if not torch.equal(v, initial_theta(v.shape[0]))}
    assert changed == {'backbone.layers.2.1.merge_masks.0.theta',
                       'backbone.layers.2.1.merge_masks.1.theta'}


def test_ltm_ssdlite_demo_trains_under_ddp(tmp_path):
    data = tmp_path / 'det'
    # 8 images: 4 per rank, 2 iterations of batch 2 per epoch
    _run_tool('make_demo_data', data, '--num-train', 8, '--num-val', 1)
    config = small_detector_config(tmp_path / 'det.py', data, max_epochs=2)
    ranks = _train_two_ranks(config, tmp_path / 'work')
    for result in ranks:
        assert result['wrapper'] == 'MMDistributedDataParallel'
        assert result['find_unused'] is True
        assert result['iters'] == 4
    _assert_same_parameters(ranks)
    _assert_merging_layers_trained(ranks[0]['params'])


def test_ltm_pretraining_with_warmup_trains_under_ddp(tmp_path):
    data = tmp_path / 'cls'
    # 4 classes x 2 images: 4 per rank, 2 iterations per epoch
    _run_tool('make_demo_classification_data', data, '--num-train', 2,
              '--num-val', 1, '--size', 128)
    config = small_classifier_config(tmp_path / 'cls.py', data, max_epochs=2)
    ranks = _train_two_ranks(config, tmp_path / 'work')
    for result in ranks:
        assert result['wrapper'] == 'MMDistributedDataParallel'
        assert result['find_unused'] is True
        assert result['iters'] == 4  # 2 warm-up + 2 merging iterations
    _assert_same_parameters(ranks)
    # the statistics of the warm-up epoch were all-reduced and are valid
    valid = [v for k, v in ranks[0]['statistics'].items()
             if k.endswith('valid')]
    assert len(valid) == 9 and all(bool(v) for v in valid)
    # the merging epoch trained the window logits of the merging layers
    _assert_merging_layers_trained(ranks[0]['params'])

"""Statistics from 2 gloo processes on two halves == 1 process on all."""
import os
import socket
import types
import warnings

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

NUM_CLASSES = 6
NUM_IMAGES = 12


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _dataset():
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(NUM_IMAGES, 3, 64, 64, generator=gen)
    labels = torch.arange(NUM_IMAGES) % NUM_CLASSES
    return images, labels


def collect(indices):
    """Run the real hook over ``indices`` of the data set; return buffers."""
    from ltm_mm.hooks import LTMStatisticsHook
    from ltm_mm.models.backbones import LTMMobileViT
    warnings.simplefilter('ignore')
    torch.manual_seed(0)
    model = LTMMobileViT('xx_small', merge_ratios=[0.5] * 9,
                         num_classes=NUM_CLASSES).eval()
    images, labels = _dataset()
    hook = LTMStatisticsHook(update=True)
    hook._masks = model.merge_mask_modules()
    hook.num_classes = NUM_CLASSES
    runner = types.SimpleNamespace(
        epoch=1, model=model,
        logger=types.SimpleNamespace(info=lambda msg: None))
    hook.before_train_epoch(runner)
    with torch.no_grad():
        for start in range(0, len(indices), 2):
            batch = indices[start:start + 2]
            model(images[batch])
            hook._labels = torch.nn.functional.one_hot(
                labels[batch], NUM_CLASSES).float()
            hook.after_train_iter(runner, start // 2)
    hook.after_train_epoch(runner)
    return {k: v.clone() for k, v in model.state_dict().items()
            if '.statistics.' in k}


def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    indices = list(range(NUM_IMAGES))
    half = indices[rank::world_size]
    stats = collect(half)
    torch.save(stats, os.path.join(out_dir, f'rank{rank}.pth'))
    # no rank tears gloo down while the other still talks to it (once in a
    # CI run a rank aborted in teardown: "terminate called without an
    # active exception")
    torch_dist.barrier()
    torch_dist.destroy_process_group()


def test_two_processes_on_halves_equal_one_process_on_all(tmp_path):
    single = collect(list(range(NUM_IMAGES)))
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    for rank in range(2):
        dist_stats = torch.load(tmp_path / f'rank{rank}.pth')
        assert dist_stats.keys() == single.keys()
        for key, value in single.items():
            torch.testing.assert_close(dist_stats[key], value, atol=1e-5,
                                       rtol=1e-5, msg=key)
    valid = [v for k, v in single.items() if k.endswith('valid')]
    assert valid and all(bool(v) for v in valid)
    # the statistics are informative, not defaults
    centroids = [v for k, v in single.items() if k.endswith('.centroids')]
    assert all(c.abs().sum() > 0 for c in centroids)

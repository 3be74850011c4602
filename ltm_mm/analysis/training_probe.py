"""A short training probe: a config's mean losses over its first iterations.

:func:`probe` trains a config's model from its initialisation on its own
train dataloader, seeded, and returns the mean classification and box
losses of every window of iterations, so that configs (an LTM detector and
its plain baseline) can be compared on how they start to learn.  The logic
behind ``benchmarks/training_probe.py``.
"""
import itertools
import statistics

from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from mmengine.runner.utils import set_random_seed

from ltm_mm.apis import check_data_roots
from ltm_mm.apis.cli import load_config


def endless(loader):
    """The batches of ``loader``, epoch after epoch, without end."""
    while True:
        yield from loader


def probe(config_path: str, iters: int, every: int, seed: int,
          cfg_options: dict = None) -> list:
    """``[(iteration, mean loss_cls, mean loss_bbox), ...]`` per window."""
    cfg = load_config(config_path, cfg_options)
    check_data_roots(cfg, ['train_dataloader'])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # torch, numpy (the pipelines' random flips) and random alike
    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    cls_losses, box_losses, rows = [], [], []
    for step, batch in enumerate(itertools.islice(endless(loader), iters)):
        losses = model.train_step(batch, optim_wrapper)
        cls_losses.append(sum(v.item() for k, v in losses.items()
                              if 'loss_cls' in k))
        box_losses.append(sum(v.item() for k, v in losses.items()
                              if 'loss_bbox' in k))
        if (step + 1) % every == 0:
            rows.append((step + 1, statistics.mean(cls_losses[-every:]),
                         statistics.mean(box_losses[-every:])))
    return rows

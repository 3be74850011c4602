"""Shared pieces of ``tools/train.py`` and ``tools/test.py``.

Errors a user can make on the command line (a missing config, checkpoint or
data root) are raised as :class:`CLIError` with a message that names the
path; the tools print it and exit with status 2 instead of a traceback.
"""
import os
import os.path as osp
from typing import Iterator, Optional

from mmengine.config import Config, ConfigDict


class CLIError(Exception):
    """A user error on the command line, reported without a traceback."""


def check_file_exists(path: str, what: str) -> None:
    if not osp.isfile(path):
        raise CLIError(f'{what} not found: {path!r}. Check the path '
                       f'(it is resolved from {os.getcwd()!r}).')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    check_file_exists(path, 'config file')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def apply_common_overrides(cfg: Config, config_path: str,
                           work_dir: Optional[str], launcher: str) -> None:
    """``--launcher`` and ``--work-dir`` (CLI > config > config name)."""
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def enable_amp(cfg: Config) -> None:
    """``--amp``: mixed precision for the optimizer wrapper of ``cfg``.

    With CUDA, mmengine's ``AmpOptimWrapper`` (float16, dynamic loss
    scaling), as MMDetection's ``--amp``.  Without it, that wrapper refuses
    to start, so the CPU gets :class:`ltm_mm.engine.CPUAmpOptimWrapper`
    (bfloat16 autocast, the only CPU autocast dtype; no loss scaling).
    """
    import torch
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'ltm_mm.CPUAmpOptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
        if cfg.optim_wrapper.get('dtype') is not None:
            cfg.optim_wrapper.dtype = 'bfloat16'


def _dataset_cfgs(cfg: Config, loader_keys) -> Iterator[dict]:
    for key in loader_keys:
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader.get('dataset')
        while isinstance(dataset, (dict, ConfigDict)):
            yield dataset
            # wrappers (RepeatDataset, ClassBalancedDataset, ...)
            dataset = dataset.get('dataset')


def check_data_roots(cfg: Config, loader_keys) -> None:
    """Fail early, naming the path, when a dataset's files are missing."""
    for dataset in _dataset_cfgs(cfg, loader_keys):
        data_root = dataset.get('data_root') or ''
        if data_root and not osp.isdir(data_root):
            raise CLIError(
                f'data root not found: {data_root!r} (dataset '
                f'{dataset.get("type")}). Download or generate the data, or '
                f'point the config at it with --cfg-options.')
        ann_file = dataset.get('ann_file')
        if ann_file:
            path = ann_file if osp.isabs(ann_file) else osp.join(
                data_root, ann_file)
            if not osp.isfile(path):
                raise CLIError(f'annotation file not found: {path!r} '
                               f'(dataset {dataset.get("type")}).')


def check_classification_config(cfg: Config, needs: str,
                                 backbone: str = '') -> None:
    """Refuse a config outside mmpretrain's scope: ``needs`` says what needs
    image-level labels (``'class statistics need'``), ``backbone`` what
    the config's backbone must be, if anything."""
    if cfg.get('default_scope') != 'mmpretrain':
        raise CLIError(f'{needs} image-level labels: use an mmpretrain '
                       f'classification config{backbone}')


def ordered_loader(cfg: Config, split: str, batch_size: Optional[int] = None):
    """The config's ``<split>_dataloader`` read with its test pipeline (no
    augmentation), in order, its dataset looked up in the config's scope:
    for tools that run a model once over a data set."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if not cfg.get(key):
        raise CLIError(f'the config has no {key}')
    check_data_roots(cfg, [key])
    loader = cfg[key].copy()
    dataset = loader.dataset.copy()
    dataset.pipeline = cfg.test_dataloader.dataset.pipeline
    loader.dataset = dataset
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    if batch_size is not None:
        loader.batch_size = batch_size
    if cfg.get('default_scope'):
        init_default_scope(cfg.default_scope)
    return Runner.build_dataloader(loader)

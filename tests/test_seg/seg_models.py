"""Build the segmentors of configs/ for tests (CPU, no weights loaded)."""
import warnings
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmseg.structures import SegDataSample

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def load_cfg(name: str) -> Config:
    cfg = Config.fromfile(str(CONFIGS / name))
    cfg.model.backbone.init_cfg = None  # no checkpoint files in tests
    return cfg


def build_segmentor(cfg: Config, seed: int = 0):
    """``cfg.model`` in the mmseg scope, SyncBN as BN (one process)."""
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    model.init_weights()
    return revert_sync_batchnorm(model)


def packed_batch(images, with_labels: bool = False, num_classes: int = 4,
                 seed: int = 0) -> dict:
    """``images``: uint8 ``(3, H, W)`` tensors -> a dataloader batch."""
    from mmengine.structures import PixelData
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for image in images:
        height, width = image.shape[-2:]
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=(height, width),
                                 ori_shape=(height, width),
                                 pad_shape=(height, width)))
        if with_labels:
            labels = torch.randint(0, num_classes, (1, height, width),
                                   generator=gen)
            sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


def random_images(sizes, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                          generator=gen) for h, w in sizes]

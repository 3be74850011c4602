"""A deterministic ImageNet-style folder of synthetic images (tests, demo).

Each class is a sinusoidal grating with its own orientation, frequency and
colour, drawn with random phase, contrast and noise, so a small network can
tell the classes apart within a few epochs.  Layout (mmpretrain
``CustomDataset``)::

    OUT/train/class_00/00000.png ...
    OUT/val/class_00/00000.png ...
"""
import json
import math
import os.path as osp
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image

MANIFEST = 'demo_classification.json'


def class_names(num_classes: int) -> Tuple[str, ...]:
    return tuple(f'class_{i:02d}' for i in range(num_classes))


def render_grating(rng: np.random.Generator, class_index: int,
                   num_classes: int, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8 image of class ``class_index``."""
    angle = math.pi * class_index / num_classes
    frequency = 3 + 2 * (class_index % 3)
    hue = np.array([math.cos(2 * math.pi * class_index / num_classes + s)
                    for s in (0, 2.1, 4.2)])
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 2 * math.pi)
    wave = np.sin(2 * math.pi * frequency *
                  (xx * math.cos(angle) + yy * math.sin(angle)) + phase)
    contrast = rng.uniform(0.5, 1.0)
    image = 0.5 + 0.25 * contrast * wave[..., None] * (1 + 0.5 * hue)
    image = image + rng.normal(0, 0.05, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def generate(out_dir: str, num_classes: int = 4, num_train: int = 8,
             num_val: int = 4, size: int = 64, seed: int = 0) -> dict:
    """Write the folder (skipped when the manifest says it is up to date)."""
    params = dict(num_classes=num_classes, num_train=num_train,
                  num_val=num_val, size=size, seed=seed)
    root = Path(out_dir)
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == params:
        return params
    if num_classes < 2 or num_train < 1 or num_val < 1 or size < 8:
        raise ValueError(f'need >= 2 classes, >= 1 image per split and '
                         f'size >= 8, got {params}')
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        for index, name in enumerate(class_names(num_classes)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for item in range(count):
                image = render_grating(rng, index, num_classes, size)
                Image.fromarray(image).save(osp.join(folder,
                                                     f'{item:05d}.png'))
    manifest.write_text(json.dumps(params))
    return params

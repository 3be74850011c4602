"""A deterministic ImageNet-style folder of synthetic object images: the
stage-1 (pre-training) data of the two-stage demo.

Each image shows one shape of the detection demo (:mod:`.demo_shapes`:
square, circle, triangle) on the detection demo's textured backgrounds, in
one of four colour families; the class is the pair, ``3 x 4 = 12`` classes
(``red_square``, ...).  A classifier trained on them learns the shapes and
colours the detection demo's objects are made of, so the class statistics
it collects describe those objects.  Layout (mmpretrain ``CustomDataset``)::

    OUT/train/blue_circle/00000.png ...
    OUT/val/blue_circle/00000.png ...
    OUT/demo_objects.json                 (the parameters; see generate())

Image ``i`` of class ``c`` in a split is drawn from its own RNG seeded by
``(seed, split, c, i)``, so the first images do not depend on how many are
generated.
"""
import json
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from .demo_shapes import CLASSES as SHAPES
from .demo_shapes import render_background, shape_polygon

MANIFEST = 'demo_objects.json'
SPLITS = ('train', 'val')
FORMAT_VERSION = 1  # bump when the drawing changes, to invalidate old data
#: Colour families (BGR centres); each object's colour is jittered around
#: its family's.
COLOURS = {
    'red': (40., 40., 210.),
    'green': (50., 190., 40.),
    'blue': (210., 80., 30.),
    'yellow': (30., 210., 220.),
}
_JITTER = 35.0
_SHIFT = 4  # cv2.fillPoly fixed-point bits


def class_names() -> Tuple[str, ...]:
    """``colour_shape`` for every colour family and shape, sorted: the class
    order of mmpretrain's ``CustomDataset`` (folder names, sorted)."""
    return tuple(sorted(f'{colour}_{shape}' for colour in COLOURS
                        for shape in SHAPES))


def render_object(rng: np.random.Generator, class_index: int, size: int,
                  object_size: Tuple[float, float]) -> np.ndarray:
    """``(size, size, 3)`` BGR uint8 image of class ``class_index``."""
    colour_name, shape = class_names()[class_index].split('_')
    image = render_background(rng, size)
    extent = rng.uniform(*object_size)
    polygon = shape_polygon(rng, shape, extent)
    span = (polygon.max(0) - polygon.min(0)).max()
    centre = rng.uniform(span / 2 + 1, size - span / 2 - 1, 2)
    colour = np.clip(np.array(COLOURS[colour_name]) +
                     rng.uniform(-_JITTER, _JITTER, 3), 0, 255)
    points = np.round((polygon + centre) * 2**_SHIFT).astype(np.int32)
    cv2.fillPoly(image, [points], tuple(map(float, colour)), cv2.LINE_AA,
                 _SHIFT)
    image = image + rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def generate(out_dir: str, num_train: int = 80, num_val: int = 20,
             size: int = 128, seed: int = 0) -> dict:
    """Write both splits (``num_train`` and ``num_val`` images per class)
    under ``out_dir`` and return the parameters; skipped when the manifest
    records the same parameters."""
    params = dict(version=FORMAT_VERSION, classes=list(class_names()),
                  num_train=num_train, num_val=num_val, size=size, seed=seed)
    root = Path(out_dir)
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == params:
        return params
    if num_train < 1 or num_val < 1 or size < 64:
        raise ValueError(f'need >= 1 image per class and split and size >= '
                         f'64, got {params}')
    # objects from a fifth to about half of the image, as the detection
    # demo's 40-160 px shapes at 320 px
    object_size = (size / 5, size / 2)
    for split_index, split in enumerate(SPLITS):
        count = num_train if split == 'train' else num_val
        for class_index, name in enumerate(class_names()):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for item in range(count):
                rng = np.random.default_rng(
                    [seed, split_index, class_index, item])
                image = render_object(rng, class_index, size, object_size)
                cv2.imwrite(str(folder / f'{item:05d}.png'), image)
    manifest.write_text(json.dumps(params))
    return params

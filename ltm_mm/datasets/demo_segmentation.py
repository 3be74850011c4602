"""A deterministic semantic segmentation dataset of synthetic shapes (the
segmentation demo and the tests), in MMSegmentation's folder layout.

The images are those of :mod:`ltm_mm.datasets.demo_shapes` (textured, noisy
background; filled squares, circles and triangles of random colour, size,
position and rotation), drawn smaller; the label map gives every pixel its
shape class, or 0 (background).  Each label map is filled from the very
polygon the shape was drawn from, at the same 1/16-px vertex precision, so
the labels are exact up to the anti-aliased rim.  Layout (mmseg
``BaseSegDataset``, ``reduce_zero_label=False``)::

    OUT/img_dir/train/000000.jpg ...   OUT/ann_dir/train/000000.png ...
    OUT/img_dir/val/000000.jpg ...     OUT/ann_dir/val/000000.png ...
    OUT/demo_seg_data.json             (the parameters; see generate())

Image ``i`` of a split is drawn from its own RNG seeded by ``(seed, split,
i)``, so the first images do not depend on how many are generated.
"""
import json
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from .demo_shapes import _SHIFT, JPEG_QUALITY, SPLITS, render_image
from .demo_shapes import CLASSES as SHAPES

#: label 0 is the background; label i >= 1 is ``demo_shapes.CLASSES[i-1]``
CLASSES = ('background', *SHAPES)
#: one RGB colour per class, for mmseg's visualiser
PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]]
MANIFEST = 'demo_seg_data.json'
FORMAT_VERSION = 1  # bump when the drawing changes, to invalidate old data
#: a split's 32-bit seed offset, so its images differ from the detection
#: demo's (same generator, other stream)
_STREAM = 7919


def image_dir(split: str) -> str:
    """Image folder of ``split``, relative to the data root."""
    return f'img_dir/{split}'


def label_dir(split: str) -> str:
    """Label-map folder of ``split``, relative to the data root."""
    return f'ann_dir/{split}'


def render_sample(rng: np.random.Generator, size: int
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """A BGR uint8 ``(size, size, 3)`` image and its uint8 ``(size, size)``
    label map (values in ``range(len(CLASSES))``).

    Shapes are 3/16 to 1/2 of the image side; 1 to 4 per image.
    """
    image, objects = render_image(
        rng, size, num_objects=(1, 4),
        object_size=(size * 3 / 16, size / 2))
    labels = np.zeros((size, size), np.uint8)
    for obj in objects:  # disjoint: render_image keeps a gap between boxes
        vertices = np.round(obj['polygon'] * 2**_SHIFT).astype(np.int32)
        cv2.fillPoly(labels, [vertices], int(obj['category_id']),
                     cv2.LINE_8, _SHIFT)
    return image, labels


def generate_split(root: Path, split: str, num_images: int, seed: int,
                   size: int) -> None:
    """Write the images and label maps of ``split`` under ``root``."""
    images, labels = root / image_dir(split), root / label_dir(split)
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for index in range(num_images):
        rng = np.random.default_rng(
            [seed, _STREAM + SPLITS.index(split), index])
        image, label_map = render_sample(rng, size)
        name = f'{index:06d}'
        cv2.imwrite(str(images / f'{name}.jpg'), image,
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        cv2.imwrite(str(labels / f'{name}.png'), label_map)


def generate(out_dir: str, num_train: int = 400, num_val: int = 100,
             seed: int = 0, size: int = 128) -> dict:
    """Write both splits under ``out_dir`` and return the parameters.

    Skipped (quickly) when ``out_dir/demo_seg_data.json`` records the same
    parameters.
    """
    params = dict(version=FORMAT_VERSION, classes=list(CLASSES),
                  num_train=num_train, num_val=num_val, seed=seed, size=size)
    root = Path(out_dir)
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == params:
        return params
    if num_train < 1 or num_val < 1 or size < 64:
        raise ValueError(f'need >= 1 image per split and size >= 64 (the '
                         f'smallest shapes are 3/16 of it), got {params}')
    if manifest.is_file():
        manifest.unlink()  # a crash below must not leave a stale manifest
    for split, count in zip(SPLITS, (num_train, num_val)):
        generate_split(root, split, count, seed, size)
    manifest.write_text(json.dumps(params))
    return params

"""A deterministic COCO-format detection + instance segmentation dataset of
synthetic shapes (the demo and the tests).

Each image is a noisy, textured background with a few non-overlapping filled
shapes of random colour, size, position and rotation; the class of a shape
is its geometry only (:data:`CLASSES`).  Every shape is drawn from the very
polygon stored as its COCO ``segmentation``, so masks, boxes and areas are
exact.  Layout (mmdet ``CocoDataset``)::

    OUT/annotations/instances_train.json   OUT/train/000000.jpg ...
    OUT/annotations/instances_val.json     OUT/val/000000.jpg ...
    OUT/demo_data.json                     (the parameters; see generate())

Image ``i`` of a split is drawn from its own RNG seeded by ``(seed, split,
i)``, so the first images do not depend on how many are generated.
"""
import json
import math
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

CLASSES = ('square', 'circle', 'triangle')
MANIFEST = 'demo_data.json'
SPLITS = ('train', 'val')
FORMAT_VERSION = 1  # bump when the drawing changes, to invalidate old data
JPEG_QUALITY = 95
_CIRCLE_VERTICES = 48
_SHIFT = 4  # cv2.fillPoly fixed-point bits: vertices at 1/16 px


def ann_file(split: str) -> str:
    """Annotation file of ``split``, relative to the data root."""
    return f'annotations/instances_{split}.json'


def shape_polygon(rng: np.random.Generator, category: str,
                  size: float) -> np.ndarray:
    """``(K, 2)`` float vertices (x, y) of a randomly rotated shape whose
    bounding box is centred at the origin and ``size`` on its longer side."""
    if category == 'square':
        corners = np.array([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]])
        angle = rng.uniform(0, math.pi / 2)
    elif category == 'circle':
        angles = np.linspace(0, 2 * math.pi, _CIRCLE_VERTICES,
                             endpoint=False)
        corners = np.stack([np.cos(angles), np.sin(angles)], 1)
        angle = 0.0
    elif category == 'triangle':  # equilateral
        angles = -math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        corners = np.stack([np.cos(angles), np.sin(angles)], 1)
        angle = rng.uniform(0, 2 * math.pi)
    else:
        raise ValueError(f'unknown shape {category!r}; choose from {CLASSES}')
    rotation = np.array([[math.cos(angle), -math.sin(angle)],
                         [math.sin(angle), math.cos(angle)]])
    polygon = corners @ rotation.T
    low, high = polygon.min(0), polygon.max(0)
    return (polygon - (low + high) / 2) * (size / (high - low).max())


def polygon_area(polygon: np.ndarray) -> float:
    """Shoelace area of a ``(K, 2)`` simple polygon."""
    x, y = polygon[:, 0], polygon[:, 1]
    return float(
        abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` float image in [0, 255]: a colour gradient, a
    random grating and pixel noise, plus a few thin clutter lines."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 215, 3)
    tilt = rng.uniform(-50, 50, (2, 3))
    image = base + xx[..., None] * tilt[0] + yy[..., None] * tilt[1]
    angle, frequency = rng.uniform(0, math.pi), rng.uniform(2, 10)
    wave = np.sin(2 * math.pi * frequency *
                  (xx * math.cos(angle) + yy * math.sin(angle)) +
                  rng.uniform(0, 2 * math.pi))
    image = image + rng.uniform(5, 25) * wave[..., None]
    for _ in range(rng.integers(0, 4)):
        start, end = rng.integers(0, size, (2, 2))
        cv2.line(image, tuple(map(int, start)), tuple(map(int, end)),
                 tuple(map(float, rng.uniform(0, 255, 3))),
                 int(rng.integers(1, 4)), cv2.LINE_AA)
    return image


def _distinct_colour(rng: np.random.Generator,
                     background: np.ndarray) -> np.ndarray:
    """A random colour at least 80 (L1 over BGR) from ``background``."""
    for _ in range(100):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - background).sum() >= 80:
            break
    return colour


def _place(rng: np.random.Generator, size: int, extent: float,
           boxes: List[np.ndarray], gap: float = 4) -> Optional[np.ndarray]:
    """Centre of a ``extent``-sized box inside the image, ``gap`` px away
    from ``boxes`` (x1, y1, x2, y2), or None when 50 tries fail."""
    half = extent / 2
    for _ in range(50):
        centre = rng.uniform(half + 1, size - half - 1, 2)
        box = np.concatenate([centre - half, centre + half])
        if all(box[0] > b[2] + gap or b[0] > box[2] + gap or
               box[1] > b[3] + gap or b[1] > box[3] + gap for b in boxes):
            return centre
    return None


def render_image(rng: np.random.Generator, size: int = 320,
                 num_objects: Tuple[int, int] = (1, 4),
                 object_size: Tuple[float, float] = (40, 160)
                 ) -> Tuple[np.ndarray, List[dict]]:
    """One BGR uint8 ``(size, size, 3)`` image and its objects, each
    ``dict(category_id, polygon)`` with a ``(K, 2)`` polygon in pixels.

    ``num_objects`` and ``object_size`` are inclusive ranges; an object that
    finds no free place is dropped, but every image keeps at least one.
    """
    image = render_background(rng, size)
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    objects, boxes = [], []
    for _ in range(count):
        label = int(rng.integers(len(CLASSES)))
        extent = rng.uniform(*object_size)
        polygon = shape_polygon(rng, CLASSES[label], extent)
        span = float((polygon.max(0) - polygon.min(0)).max())
        centre = _place(rng, size, span, boxes)
        if centre is None:
            continue
        polygon = np.round(polygon + centre, 2)
        boxes.append(np.concatenate([polygon.min(0), polygon.max(0)]))
        inside = polygon.mean(0).astype(int)
        colour = _distinct_colour(rng, image[inside[1], inside[0]])
        cv2.fillPoly(image, [np.round(polygon * 2**_SHIFT).astype(np.int32)],
                     tuple(map(float, colour)), cv2.LINE_AA, _SHIFT)
        objects.append(dict(category_id=label + 1, polygon=polygon))
    image = image + rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8), objects


def coco_annotation(ann_id: int, image_id: int, category_id: int,
                    polygon: np.ndarray) -> dict:
    """COCO instance record of one polygon (bbox ``[x, y, w, h]``)."""
    x1, y1 = polygon.min(0)
    x2, y2 = polygon.max(0)
    return dict(
        id=ann_id, image_id=image_id, category_id=category_id,
        bbox=[round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)],
        area=round(polygon_area(polygon), 2),
        segmentation=[[round(float(v), 2) for v in polygon.reshape(-1)]],
        iscrowd=0)


def generate_split(root: Path, split: str, num_images: int, seed: int,
                   size: int = 320) -> dict:
    """Write the images of ``split`` and return its COCO dict."""
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, SPLITS.index(split), index])
        image, objects = render_image(rng, size)
        file_name = f'{index:06d}.jpg'
        cv2.imwrite(str(folder / file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        images.append(dict(id=index + 1, file_name=file_name, width=size,
                           height=size))
        for obj in objects:
            annotations.append(coco_annotation(
                len(annotations) + 1, index + 1, obj['category_id'],
                obj['polygon']))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASSES)]
    return dict(images=images, annotations=annotations,
                categories=categories)


def generate(out_dir: str, num_train: int = 400, num_val: int = 100,
             seed: int = 0, size: int = 320) -> dict:
    """Write both splits under ``out_dir`` and return the parameters.

    Skipped (quickly) when ``out_dir/demo_data.json`` records the same
    parameters and both annotation files exist.
    """
    params = dict(version=FORMAT_VERSION, classes=list(CLASSES),
                  num_train=num_train, num_val=num_val, seed=seed, size=size)
    root = Path(out_dir)
    manifest = root / MANIFEST
    if (manifest.is_file() and json.loads(manifest.read_text()) == params
            and all((root / ann_file(s)).is_file() for s in SPLITS)):
        return params
    if num_train < 1 or num_val < 1 or size < 200:
        raise ValueError(f'need >= 1 image per split and size >= 200 (the '
                         f'shapes are up to 160 px), got {params}')
    if manifest.is_file():
        manifest.unlink()  # a crash below must not leave a stale manifest
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    for split, count in zip(SPLITS, (num_train, num_val)):
        coco = generate_split(root, split, count, seed, size)
        (root / ann_file(split)).write_text(json.dumps(coco))
    manifest.write_text(json.dumps(params))
    return params

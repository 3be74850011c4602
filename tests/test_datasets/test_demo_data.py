"""The synthetic shapes dataset is valid, exact COCO and deterministic."""
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from ltm_mm.datasets import demo_shapes
from ltm_mm.datasets.demo_shapes import CLASSES, SPLITS, ann_file, generate
from project_scripts import load_script

NUM_TRAIN, NUM_VAL = 8, 4


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    generate(str(root), num_train=NUM_TRAIN, num_val=NUM_VAL, seed=0)
    return root


def _read(root, split):
    return json.loads((root / ann_file(split)).read_text())


@pytest.mark.parametrize('split,count',
                         [('train', NUM_TRAIN), ('val', NUM_VAL)])
def test_split_loads_with_pycocotools(data_root, split, count):
    coco = COCO(str(data_root / ann_file(split)))
    assert len(coco.getImgIds()) == count
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(CLASSES)
    for image in coco.loadImgs(coco.getImgIds()):
        assert (data_root / split / image['file_name']).is_file()
        assert len(coco.getAnnIds(imgIds=image['id'])) >= 1


@pytest.mark.parametrize('split', SPLITS)
def test_annotations_are_consistent(data_root, split):
    coco = _read(data_root, split)
    images = {image['id']: image for image in coco['images']}
    category_ids = {c['id'] for c in coco['categories']}
    assert len({a['id'] for a in coco['annotations']}) == \
        len(coco['annotations'])
    for ann in coco['annotations']:
        image = images[ann['image_id']]
        assert ann['category_id'] in category_ids
        assert ann['iscrowd'] == 0
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0
        assert 0 <= x and x + w <= image['width']
        assert 0 <= y and y + h <= image['height']
        assert 0 < ann['area'] <= w * h
        for polygon in ann['segmentation']:
            points = np.array(polygon).reshape(-1, 2)
            assert len(points) >= 3
            assert (points >= [x - 1, y - 1]).all()
            assert (points <= [x + w + 1, y + h + 1]).all()


def test_masks_match_areas_and_pixels(data_root):
    """The rasterised polygon covers its area and the shape is drawn there
    (its pixels differ from the surrounding background)."""
    from pycocotools import mask as mask_utils
    coco = COCO(str(data_root / ann_file('train')))
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        assert mask.sum() == pytest.approx(ann['area'], rel=0.1, abs=30)
        box = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))
        assert box == pytest.approx(ann['bbox'], abs=1.5)
        info = coco.loadImgs(ann['image_id'])[0]
        image = cv2.imread(str(data_root / 'train' / info['file_name']))
        assert image.shape == (info['height'], info['width'], 3)
        inner = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
        ring = cv2.dilate(mask, np.ones((9, 9), np.uint8)).astype(bool) & \
            ~cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool)
        contrast = np.abs(image[inner].mean(0) - image[ring].mean(0)).sum()
        assert contrast > 30


def test_polygon_area_of_unit_square():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=float)
    assert demo_shapes.polygon_area(square) == 4
    assert demo_shapes.polygon_area(square[::-1]) == 4


@pytest.mark.parametrize('category', CLASSES)
def test_shapes_fit_their_size(category):
    rng = np.random.default_rng(0)
    for _ in range(20):
        polygon = demo_shapes.shape_polygon(rng, category, 100)
        extent = polygon.max(0) - polygon.min(0)
        assert extent.max() == pytest.approx(100, abs=0.5)
        assert extent.min() > 70


def test_unknown_shape_raises():
    with pytest.raises(ValueError, match='hexagon'):
        demo_shapes.shape_polygon(np.random.default_rng(0), 'hexagon', 10)


def test_generation_is_deterministic(data_root, tmp_path):
    generate(str(tmp_path), num_train=NUM_TRAIN, num_val=NUM_VAL, seed=0)
    for split in SPLITS:
        assert (tmp_path / ann_file(split)).read_bytes() == \
            (data_root / ann_file(split)).read_bytes()
        for path in sorted((data_root / split).iterdir()):
            assert (tmp_path / split / path.name).read_bytes() == \
                path.read_bytes()


def test_seed_changes_the_data(data_root, tmp_path):
    generate(str(tmp_path), num_train=1, num_val=1, seed=1)
    assert (tmp_path / 'val' / '000000.jpg').read_bytes() != \
        (data_root / 'val' / '000000.jpg').read_bytes()


def test_first_images_do_not_depend_on_the_count(data_root, tmp_path):
    generate(str(tmp_path), num_train=2, num_val=1, seed=0)
    assert (tmp_path / 'train' / '000001.jpg').read_bytes() == \
        (data_root / 'train' / '000001.jpg').read_bytes()


def test_regeneration_is_skipped_by_the_manifest(data_root):
    stamp = (data_root / ann_file('train')).stat().st_mtime_ns
    params = generate(str(data_root), num_train=NUM_TRAIN, num_val=NUM_VAL,
                      seed=0)
    assert params['num_train'] == NUM_TRAIN
    assert (data_root / ann_file('train')).stat().st_mtime_ns == stamp
    manifest = json.loads((data_root / demo_shapes.MANIFEST).read_text())
    assert manifest == params


def test_changed_parameters_regenerate(tmp_path):
    generate(str(tmp_path), num_train=2, num_val=1, seed=0)
    generate(str(tmp_path), num_train=3, num_val=1, seed=0)
    assert len(_read(tmp_path, 'train')['images']) == 3


def test_bad_counts_raise(tmp_path):
    with pytest.raises(ValueError, match='>= 1 image per split'):
        generate(str(tmp_path), num_train=0, num_val=1)


def test_cli_writes_the_data(tmp_path):
    module = load_script('tools/make_demo_data.py')
    module.main([str(tmp_path), '--num-train', '2', '--num-val', '1',
                 '--seed', '3'])
    assert len(_read(tmp_path, 'train')['images']) == 2
    assert json.loads((tmp_path / demo_shapes.MANIFEST).read_text())[
        'seed'] == 3

"""The stage-1 object images: 12 classes (shape x colour) in mmpretrain's
folder layout, deterministic, and the colour and shape each name says."""
import cv2
import numpy as np
import pytest
from mmpretrain.datasets import CustomDataset

from ltm_mm.datasets import demo_objects
from ltm_mm.datasets.demo_shapes import CLASSES as SHAPES


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('objects')
    demo_objects.generate(str(root), num_train=3, num_val=2, size=96)
    return root


def test_twelve_classes_in_mmpretrain_order(root):
    names = demo_objects.class_names()
    assert len(names) == 12 == len(set(names))
    assert {n.split('_')[1] for n in names} == set(SHAPES)
    dataset = CustomDataset(data_root=str(root), data_prefix='train',
                            pipeline=[])
    assert tuple(dataset.metainfo['classes']) == names
    assert len(dataset) == 12 * 3
    labels = [dataset.get_data_info(i)['gt_label'] for i in range(36)]
    assert sorted(set(labels)) == list(range(12))


def test_object_has_its_class_colour(root):
    for name in demo_objects.class_names():
        image = cv2.imread(str(root / 'val' / name / '00000.png'))
        assert image.shape == (96, 96, 3)
        centre = np.array(demo_objects.COLOURS[name.split('_')[0]])
        # the pixels nearest the family's colour: at least a small object
        distance = np.abs(image.astype(float) - centre).sum(-1)
        assert (distance < 3 * 35 + 60).sum() >= (96 / 5)**2 / 4, name


def test_deterministic_and_skipped_when_up_to_date(root, tmp_path):
    again = tmp_path / 'again'
    demo_objects.generate(str(again), num_train=3, num_val=2, size=96)
    for split in ('train', 'val'):
        for path in sorted((root / split).rglob('*.png')):
            other = again / path.relative_to(root)
            assert np.array_equal(cv2.imread(str(path)),
                                  cv2.imread(str(other))), path
    stamp = (root / demo_objects.MANIFEST).stat().st_mtime_ns
    demo_objects.generate(str(root), num_train=3, num_val=2, size=96)
    assert (root / demo_objects.MANIFEST).stat().st_mtime_ns == stamp


def test_bad_sizes_raise(tmp_path):
    with pytest.raises(ValueError, match='size'):
        demo_objects.generate(str(tmp_path), size=32)
    with pytest.raises(ValueError, match='image per class'):
        demo_objects.generate(str(tmp_path), num_train=0)

"""The synthetic segmentation set: exact label maps, mmseg's folder layout
(loads with BaseSegDataset), deterministic; the demo configs read it."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config

from ltm_mm.datasets import demo_segmentation as demo
from seg_models import CONFIGS

SIZE = 96


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_seg')
    demo.generate(str(root), num_train=6, num_val=2, size=SIZE)
    return root


def test_label_maps_are_exact_and_match_the_image(data_root):
    for index in range(6):
        image = cv2.imread(str(data_root / demo.image_dir('train') /
                               f'{index:06d}.jpg'))
        labels = cv2.imread(str(data_root / demo.label_dir('train') /
                                f'{index:06d}.png'), cv2.IMREAD_UNCHANGED)
        assert image.shape == (SIZE, SIZE, 3)
        assert labels.shape == (SIZE, SIZE) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= set(range(len(demo.CLASSES)))
        assert (labels > 0).any() and (labels == 0).any()
        # each shape is drawn where its label is: it stands out from the
        # background ring around it
        for label in np.unique(labels[labels > 0]):
            mask = (labels == label).astype(np.uint8)
            count, parts = cv2.connectedComponents(mask)
            for part in range(1, count):
                shape = (parts == part).astype(np.uint8)
                inner = cv2.erode(shape, np.ones((3, 3), np.uint8)) > 0
                ring = (cv2.dilate(shape, np.ones((7, 7), np.uint8)) > 0) \
                    & (cv2.dilate(mask, np.ones((3, 3), np.uint8)) == 0) \
                    & (labels == 0)
                if inner.sum() < 20 or ring.sum() < 20:
                    continue
                contrast = np.abs(image[inner].mean(0) -
                                  image[ring].mean(0)).sum()
                assert contrast > 30


def test_generation_is_deterministic_and_skipped_when_done(data_root,
                                                            tmp_path):
    again = tmp_path / 'again'
    demo.generate(str(again), num_train=2, num_val=1, size=SIZE)
    for name in ('000000.png', '000001.png'):
        first = cv2.imread(str(data_root / demo.label_dir('train') / name))
        second = cv2.imread(str(again / demo.label_dir('train') / name))
        assert np.array_equal(first, second)
    stamp = (again / demo.MANIFEST).stat().st_mtime_ns
    demo.generate(str(again), num_train=2, num_val=1, size=SIZE)
    assert (again / demo.MANIFEST).stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match='size >= 64'):
        demo.generate(str(tmp_path / 'tiny'), size=32)


@pytest.mark.parametrize('split,count', [('train', 6), ('val', 2)])
def test_demo_config_dataset_loads_the_split(data_root, split, count):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(str(
        CONFIGS / 'demo' / 'deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py'))
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset_cfg = loader.dataset.copy()
    dataset_cfg.data_root = str(data_root)
    init_default_scope('mmseg')
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == count
    assert dataset.metainfo['classes'] == demo.CLASSES
    sample = dataset[0]
    labels = sample['data_samples'].gt_sem_seg.data
    assert sample['inputs'].shape == (3, SIZE, SIZE)
    assert labels.shape == (1, SIZE, SIZE)
    assert int(labels.max()) < len(demo.CLASSES)

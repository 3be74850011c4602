"""tools/ with segmentation configs: the input size they measure at, MACs
of an LTM/plain pair, and train.py + test.py printing mmseg's mIoU."""
import subprocess
import sys

import pytest
from mmengine.config import Config

from ltm_mm.analysis.flops import config_complexity, input_size_from_config
from ltm_mm.datasets import demo_segmentation
from seg_models import CONFIGS

ROOT = CONFIGS.parent
VOC = 'seg/deeplabv3_{}mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py'


@pytest.mark.parametrize('name,size', [
    (VOC.format(''), (512, 512)),  # whole: the training crop
    ('seg/segformer-head_efficientvit-b1_8xb2-160k_ade20k-512x512.py',
     (512, 512)),
    # slide: one window
    ('seg/segformer-head_efficientvit-b1_8xb1-160k_cityscapes-1024x1024.py',
     (1024, 1024)),
    ('demo/deeplabv3_mobilevit-xxs-d8_demo-seg.py', (128, 128)),
])
def test_segmentor_input_size(name, size):
    assert input_size_from_config(Config.fromfile(str(CONFIGS / name))) == \
        size


def test_ltm_segmentor_costs_fewer_macs_than_plain():
    ltm, plain = (config_complexity(str(CONFIGS / VOC.format(prefix)),
                                    (256, 256)) for prefix in ('ltm-', ''))
    assert ltm.input_shape == plain.input_shape == (1, 3, 256, 256)
    assert ltm.macs < 0.95 * plain.macs
    assert 'embedding_bag' in ''.join(ltm.by_operator)  # merges counted


def _run(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)],
                          capture_output=True, text=True, timeout=900,
                          cwd=cwd)


@pytest.mark.slow  # two fresh interpreters importing mmseg: ~50 s on 2 cores
def test_train_and_test_report_miou(tmp_path):
    data = tmp_path / 'data'
    demo_segmentation.generate(str(data), num_train=4, num_val=2, size=64)
    work = tmp_path / 'work'
    config = CONFIGS / 'demo' / 'deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py'
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={data}',
               f'val_dataloader.dataset.data_root={data}',
               f'test_dataloader.dataset.data_root={data}',
               'train_dataloader.batch_size=2',
               'model.data_preprocessor.size=[64,64]']
    result = _run(ROOT / 'tools' / 'train.py', config, '--work-dir', work,
                  *options, 'train_cfg.max_epochs=1', cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    out = tmp_path / 'predictions.pkl'
    result = _run(ROOT / 'tools' / 'test.py', config, checkpoint,
                  '--work-dir', work, '--out', out, *options, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mIoU' in result.stdout and out.is_file()
    import pickle
    predictions = pickle.loads(out.read_bytes())
    assert len(predictions) == 2
    assert tuple(predictions[0]['pred_sem_seg']['data'].shape) == (1, 64, 64)

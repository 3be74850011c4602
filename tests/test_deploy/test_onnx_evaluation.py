"""``tools/test.py CONFIG model.onnx``: the exported network in ONNX
Runtime, with the config's dataloader, post-processing and COCO metric,
predicts what the checkpoint predicts."""
import pickle
import subprocess
import sys
import warnings

import pytest
import torch

from mmengine.registry import init_default_scope

from exportable_models import DEMO, ROOT, demo_model
from ltm_mm.apis import load_config
from ltm_mm.deploy import DeployedModel
from project_scripts import load_script

CONFIG = """_base_ = {base!r}
data_root = {data!r}
test_dataloader = dict(dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
"""


@pytest.fixture(scope='module')
def detector(tmp_path_factory):
    """A demo SSDLite LTM-MobileViT-XS config on generated images, and a
    checkpoint of seeded weights with class statistics."""
    folder = tmp_path_factory.mktemp('onnx_eval')
    data = folder / 'data'
    load_script('tools/make_demo_data.py').main(
        [str(data), '--num-train', '1', '--num-val', '3'])
    config = folder / 'config.py'
    config.write_text(CONFIG.format(
        base=str(DEMO / 'ssdlite_ltm-mobilevit-xs_demo.py'),
        data=str(data) + '/'))
    model = demo_model('ssdlite_ltm-mobilevit-xs_demo', statistics=True)
    checkpoint = folder / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    onnx_file = folder / 'model.onnx'
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert load_script('tools/export_onnx.py').main(
            [str(config), str(checkpoint), '--out', str(onnx_file),
             '--exporter', 'torchscript']) == 0
    return config, checkpoint, onnx_file, folder


def _test(config, model_file, work_dir):
    test = load_script('tools/test.py')
    out = work_dir / 'predictions.pkl'
    args = test.parse_args([str(config), str(model_file), '--work-dir',
                            str(work_dir), '--out', str(out)])
    runner = test.build_runner(args)
    metrics = runner.test()
    with open(out, 'rb') as f:
        return metrics, pickle.load(f)


def test_onnx_runtime_predicts_what_the_checkpoint_predicts(detector):
    config, checkpoint, onnx_file, folder = detector
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch_metrics, torch_preds = _test(config, checkpoint,
                                           folder / 'torch')
        onnx_metrics, onnx_preds = _test(config, onnx_file, folder / 'onnx')
    assert set(torch_metrics) == set(onnx_metrics)
    for key, value in torch_metrics.items():
        assert onnx_metrics[key] == pytest.approx(value, abs=2e-3), key
    assert len(torch_preds) == len(onnx_preds) == 3
    for want, got in zip(torch_preds, onnx_preds):
        assert got['img_id'] == want['img_id']
        want, got = want['pred_instances'], got['pred_instances']
        assert len(got['scores']) == len(want['scores']) > 0
        torch.testing.assert_close(got['scores'].sort().values,
                                   want['scores'].sort().values,
                                   atol=1e-4, rtol=0)
        # every ONNX box has a checkpoint box of its label within 0.01 px
        for box, label in zip(got['bboxes'], got['labels']):
            same = want['bboxes'][want['labels'] == label]
            assert (same - box).abs().amax(-1).min() < 1e-2


def test_onnx_file_with_the_wrong_config_is_named(detector):
    onnx_file = detector[2]
    init_default_scope('mmseg')
    cfg = load_config(str(DEMO / 'deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py'))
    with pytest.raises(ValueError, match='holds a single_stage network but '
                       'the config builds a segmentor'):
        DeployedModel(cfg.model, str(onnx_file))


# every split on the generated data: with --show-dir the runner also builds
# the training set
SEG_CONFIG = """_base_ = {base!r}
data_root = {data!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
"""


def test_segmentor_in_onnx_runtime_gives_the_checkpoints_miou(tmp_path):
    """mmseg's whole-image inference: ONNX Runtime's logits, resized and
    post-processed by the segmentor, give the checkpoint's per-pixel
    predictions and mIoU; --show-dir paints them."""
    data = tmp_path / 'data'
    load_script('tools/make_demo_seg_data.py').main(
        [str(data), '--num-train', '1', '--num-val', '3'])
    name = 'deeplabv3_ltm-mobilevit-xxs-d8_demo-seg'
    config = tmp_path / 'config.py'
    config.write_text(SEG_CONFIG.format(base=str(DEMO / f'{name}.py'),
                                        data=str(data) + '/'))
    model = demo_model(name, statistics=True)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    onnx_file = tmp_path / 'model.onnx'
    test = load_script('tools/test.py')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert load_script('tools/export_onnx.py').main(
            [str(config), str(checkpoint), '--out', str(onnx_file),
             '--exporter', 'torchscript']) == 0
        torch_metrics, torch_preds = _test(config, checkpoint,
                                           tmp_path / 'torch')
        onnx_metrics = test.build_runner(test.parse_args(
            [str(config), str(onnx_file), '--work-dir',
             str(tmp_path / 'onnx'), '--out',
             str(tmp_path / 'onnx.pkl')])).test()
    with open(tmp_path / 'onnx.pkl', 'rb') as f:
        onnx_preds = pickle.load(f)
    assert onnx_metrics['mIoU'] == pytest.approx(torch_metrics['mIoU'],
                                                 abs=0.2)  # percent
    assert len(onnx_preds) == len(torch_preds) == 3
    for want, got in zip(torch_preds, onnx_preds):
        want = want['pred_sem_seg']['data']
        got = got['pred_sem_seg']['data']
        assert got.shape == want.shape
        assert (got == want).float().mean() > 0.999
    # --show-dir paints ONNX Runtime's predictions (a process of its own:
    # the visualizer is a per-process singleton)
    show = tmp_path / 'painted'
    shown = subprocess.run(
        [sys.executable, 'tools/test.py', str(config), str(onnx_file),
         '--work-dir', str(tmp_path / 'shown'), '--show-dir', str(show)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert len(list(show.rglob('*.png'))) == 3

"""tools/export_onnx.py names what is wrong instead of a traceback."""
import pytest
import torch

from exportable_models import DEMO, demo_model
from project_scripts import load_script

XS = str(DEMO / 'ssdlite_ltm-mobilevit-xs_demo.py')


@pytest.fixture(scope='module')
def export():
    return load_script('tools/export_onnx.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'model.pth'
    torch.save({'state_dict': demo_model(
        'ssdlite_ltm-mobilevit-xs_demo').state_dict()}, path)
    return path


@pytest.mark.parametrize('case,message', [
    ('no_checkpoint', 'checkpoint not found'),
    ('not_onnx', '--out must name a .onnx file'),
    ('tome', 'no stable Sort'),
    ('classifier', 'neither a detector nor a segmentor'),
])
def test_errors_are_named(export, checkpoint, tmp_path, capsys, case,
                          message):
    config, ckpt, out = XS, str(checkpoint), str(tmp_path / 'model.onnx')
    if case == 'no_checkpoint':
        ckpt = str(tmp_path / 'missing.pth')
    elif case == 'not_onnx':
        out = str(tmp_path / 'model.pth')
    elif case == 'tome':
        config = str(DEMO / 'ssdlite_tome-mobilevit-xs_demo.py')
    else:
        config = str(DEMO / 'ltm-mobilevit-xs_demo-pretrain.py')
    assert export.main([config, ckpt, '--out', out]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'model.onnx').exists()


def test_a_checkpoint_of_another_model_does_not_export(export, tmp_path,
                                                       capsys):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': demo_model(
        'ssdlite_pool-mobilevit-xs_demo').state_dict()}, other)
    out = tmp_path / 'm.onnx'
    assert export.main([XS, str(other), '--out', str(out)]) == 2
    error = capsys.readouterr().err
    assert 'does not fit the model' in error and 'missing keys' in error
    assert len(error) < 700 and not out.exists()

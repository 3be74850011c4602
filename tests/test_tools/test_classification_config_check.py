"""The tools that need image-level labels refuse a detection config with
the same clear error (ltm_mm.apis.check_classification_config)."""
import pytest
from mmengine.config import Config

from ltm_mm.apis import CLIError, check_classification_config
from project_scripts import ROOT, load_script

DET_CONFIG = ROOT / 'configs' / 'demo' / 'ssdlite_ltm-mobilevit-xs_demo.py'


def test_only_mmpretrain_configs_pass():
    check_classification_config(Config(dict(default_scope='mmpretrain')),
                                'x needs')
    for scope in ('mmdet', None):
        with pytest.raises(CLIError) as error:
            check_classification_config(Config(dict(default_scope=scope)),
                                        'the IB analysis needs',
                                        ' with an LTM backbone')
        assert str(error.value) == (
            'the IB analysis needs image-level labels: use an mmpretrain '
            'classification config with an LTM backbone')


@pytest.mark.parametrize('script,needs', [
    ('tools/collect_statistics.py', 'class statistics need'),
    ('benchmarks/classifier_attributes.py', 'a confusion matrix needs'),
])
def test_tools_refuse_a_detection_config(script, needs, tmp_path, capsys):
    checkpoint = tmp_path / 'c.pth'
    checkpoint.write_bytes(b'')
    args = [str(DET_CONFIG), str(checkpoint)]
    if 'collect' in script:
        args += ['--out', str(tmp_path / 'out.pth')]
    assert load_script(script).main(args) == 2
    err = capsys.readouterr().err
    assert f'{needs} image-level labels' in err
    assert 'mmpretrain classification config' in err
    assert not (tmp_path / 'out.pth').exists()

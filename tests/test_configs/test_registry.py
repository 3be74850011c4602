import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import DefaultScope


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain', 'mmseg'])
def test_scoped_type_resolves_from_downstream_default_scope(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    name = f'test_ltm_scope_{scope}'
    with DefaultScope.overwrite_default_scope(scope):
        DefaultScope.get_instance(name, scope_name=scope)
        for name in ('LTMMobileViT', 'LTMEfficientViT', 'EfficientViT'):
            arch = 'xx_small' if 'MobileViT' in name else 'b0'
            backbone = MODELS.build(dict(type=f'ltm_mm.{name}', arch=arch))
            assert type(backbone).__name__ == name


def test_custom_imports_registers_the_package_in_a_fresh_interpreter(
        tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text("custom_imports = dict(imports=['ltm_mm'], "
                      "allow_failed_imports=False)\n")
    code = textwrap.dedent(f'''
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmdet.registry import MODELS
        assert 'ltm_mm' not in sys.modules
        Config.fromfile({str(config)!r})
        assert 'ltm_mm' in sys.modules
        init_default_scope('mmdet')
        m = MODELS.build(dict(type='ltm_mm.LTMMobileViT', arch='xx_small'))
        print(type(m).__module__)
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert 'ltm_mm.models.backbones' in out.stdout


def test_registries_are_children_of_mmengine_roots():
    from mmengine.registry import HOOKS as ROOT_HOOKS
    from mmengine.registry import MODELS as ROOT_MODELS

    from ltm_mm.registry import HOOKS, MODELS
    assert MODELS.parent is ROOT_MODELS and MODELS.scope == 'ltm_mm'
    assert HOOKS.parent is ROOT_HOOKS and HOOKS.scope == 'ltm_mm'

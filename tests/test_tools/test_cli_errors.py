"""Bad command lines: a clear message naming the path, non-zero exit."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs' / 'ltm_ssdlite_mobilevit_xs.py'


def _run(*args):
    return subprocess.run([sys.executable, *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_missing_config_is_named(tool, tmp_path):
    missing = tmp_path / 'nope.py'
    extra = [tmp_path / 'ckpt.pth'] if tool == 'test.py' else []
    result = _run(ROOT / 'tools' / tool, missing, *extra)
    assert result.returncode == 2
    assert f'config file not found: {str(missing)!r}' in result.stderr
    assert 'Traceback' not in result.stderr


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / 'missing.pth'
    result = _run(ROOT / 'tools' / 'test.py', CONFIG, missing)
    assert result.returncode == 2
    assert f'checkpoint not found: {str(missing)!r}' in result.stderr


def test_missing_resume_checkpoint_is_named(tmp_path):
    missing = tmp_path / 'resume.pth'
    result = _run(ROOT / 'tools' / 'train.py', CONFIG, '--resume', missing,
                  '--work-dir', tmp_path)
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_missing_data_root_is_named(tmp_path):
    absent = tmp_path / 'no_coco'
    result = _run(ROOT / 'tools' / 'train.py', CONFIG, '--work-dir',
                  tmp_path, '--cfg-options',
                  f'train_dataloader.dataset.data_root={absent}')
    assert result.returncode == 2
    assert f'data root not found: {str(absent)!r}' in result.stderr


def test_missing_annotation_file_is_named(tmp_path):
    result = _run(ROOT / 'tools' / 'train.py', CONFIG, '--work-dir',
                  tmp_path, '--cfg-options',
                  f'train_dataloader.dataset.data_root={tmp_path}')
    assert result.returncode == 2
    assert 'annotation file not found' in result.stderr
    assert 'instances_train2017.json' in result.stderr

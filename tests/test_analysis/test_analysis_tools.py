import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ltm_mm.analysis.ib_estimates import IBEstimator, mutual_information

ROOT = Path(__file__).resolve().parents[2]
DEMO_CLS = ROOT / 'configs' / 'demo' / 'ltm-mobilevit-xs_demo-cls.py'


def test_mutual_information_of_known_tables():
    K = 4
    assert mutual_information(torch.eye(K)) == pytest.approx(math.log(K))
    assert mutual_information(torch.ones(K, K)) == pytest.approx(0.0,
                                                                 abs=1e-12)


def test_estimator_separable_and_independent_cases():
    K = 5
    labels = torch.arange(20) % K
    one_hot = torch.nn.functional.one_hot(labels, K).double()
    log_q = torch.log(torch.eye(K, dtype=torch.float64) * 0.96 + 0.01).t()
    perfect = IBEstimator(K)
    perfect.add(one_hot, one_hot, labels, log_q)
    result = perfect.result()
    assert result['i_y'] == pytest.approx(math.log(K))
    assert result['i_x'] == pytest.approx(math.log(K))
    assert result['ib_loss'] == pytest.approx(0.0, abs=1e-9)
    # IBB = -H(phi(X)) - E log Q(a|y) = 0 - log 0.97
    assert result['ibb'] == pytest.approx(-math.log(0.97))
    uniform = IBEstimator(K)
    flat = torch.full((20, K), 1.0 / K, dtype=torch.float64)
    uniform.add(flat, one_hot, labels, log_q)
    assert uniform.result()['i_y'] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match='labels must lie'):
        uniform.add(flat, one_hot, labels + K, log_q)


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    return struct.unpack('>II', data[16:24])


@pytest.fixture(scope='module')
def tiny_classification(tmp_path_factory):
    """Demo folder data and untrained LTM / plain checkpoints."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import save_checkpoint

    from ltm_mm.datasets.demo_classification import generate
    root = tmp_path_factory.mktemp('ib')
    generate(str(root / 'data'), num_classes=4, num_train=1, num_val=3,
             size=128)
    plain_cfg = root / 'plain.py'
    plain_cfg.write_text(
        f"_base_ = {str(DEMO_CLS)!r}\n"
        "model = dict(backbone=dict(_delete_=True, type='MobileViT', "
        "arch='x_small'))\ncustom_hooks = []\n")
    checkpoints = {}
    for name, path in (('ltm', DEMO_CLS), ('plain', plain_cfg)):
        cfg = Config.fromfile(str(path))
        init_default_scope('mmpretrain')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        checkpoints[name] = (str(path), str(root / f'{name}.pth'))
        save_checkpoint({'state_dict': model.state_dict()},
                        checkpoints[name][1])
    return root, checkpoints


@pytest.mark.parametrize('kind', ['ltm', 'plain'])
def test_analyze_ib_tool_gives_bounded_values_and_a_png(tiny_classification,
                                                        kind):
    root, checkpoints = tiny_classification
    config, checkpoint = checkpoints[kind]
    # the plain run's plot goes to the default place, beside its checkpoint
    out = root / f'{kind}.png' if kind == 'ltm' else \
        Path(checkpoint).parent / 'ib_per_layer.png'
    where = ['--out', str(out)] if kind == 'ltm' else []
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'analyze_ib.py'), config,
         checkpoint, *where, '--cfg-options',
         f'test_dataloader.dataset.data_root={root / "data"}'],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split('|')[1:-1] for line in result.stdout.splitlines()
            if line.startswith('| ') and not line.startswith('| layer')]
    assert len(rows) == 9  # one per transformer layer of MobileViT-XS
    log_k = math.log(4)
    for row in rows:
        i_x, i_y, ib_loss, ibb = map(float, row[4:8])
        assert all(math.isfinite(v) for v in (i_x, i_y, ib_loss, ibb))
        assert 0 <= i_x <= log_k + 1e-9 and 0 <= i_y <= log_k + 1e-9
        assert ib_loss == pytest.approx(i_x - i_y, abs=2e-4)
    assert _png_size(out) == (640, 400)
    merging = {row[2].strip() for row in rows}
    assert merging == ({'False'} if kind == 'plain' else {'True'})


def test_analyze_ib_rejects_missing_checkpoint(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'analyze_ib.py'),
         str(DEMO_CLS), str(tmp_path / 'missing.pth')],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2
    assert 'missing.pth' in result.stderr


def test_visualize_merging_writes_a_png_of_the_expected_size(
        tiny_classification):
    root, checkpoints = tiny_classification
    config, checkpoint = checkpoints['ltm']
    out = root / 'merging.png'
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'visualize_merging.py'),
         config, checkpoint, '--targets', '3', '--out', str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _png_size(out) == (900, 320)  # 3 panels x 3 in x 100 dpi


def test_target_heatmaps_are_columns_of_g():
    from ltm_mm.analysis.merge_weights import target_heatmaps
    from ltm_mm.models.layers import LearnableMergeMask
    mask = LearnableMergeMask(8, 0.5).eval()
    with pytest.warns(UserWarning):
        plan = mask(torch.randn(2, 64, 8), (8, 8))
    maps = target_heatmaps(plan, [0, 5], sequence=1)
    assert maps.shape == (2, 8, 8)
    torch.testing.assert_close(maps.sum((1, 2)), torch.ones(2))
    torch.testing.assert_close(maps[1].reshape(-1), plan.dense()[1][:, 5])
    with pytest.raises(ValueError, match='outside'):
        target_heatmaps(plan, [999])

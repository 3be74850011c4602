"""The training probe (ltm_mm.analysis.training_probe) and
benchmarks/training_probe.py, on a few generated images."""
import math
from pathlib import Path

import pytest

from ltm_mm.analysis.training_probe import probe
from ltm_mm.apis import CLIError
from ltm_mm.datasets import demo_shapes
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
LTM_DEMO = str(ROOT / 'configs' / 'demo' / 'ssdlite_ltm-mobilevit-xs_demo.py')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    data = tmp_path_factory.mktemp('shapes')
    demo_shapes.generate(str(data), num_train=4, num_val=1)
    return data


def test_probe_reports_each_window_and_is_seeded(shapes):
    options = {'train_dataloader.dataset.data_root': str(shapes),
               'train_dataloader.batch_size': 2}
    first = probe(LTM_DEMO, iters=4, every=2, seed=0, cfg_options=options)
    assert [row[0] for row in first] == [2, 4]
    for _, cls_loss, box_loss in first:
        assert math.isfinite(cls_loss) and cls_loss > 0
        assert math.isfinite(box_loss) and box_loss > 0
    # the same seed gives the same run (up to the order of multithreaded
    # float sums), so configs start from equal footing
    again = probe(LTM_DEMO, iters=2, every=2, seed=0, cfg_options=options)
    assert again[0] == pytest.approx(first[0], rel=1e-3)


def test_probe_names_missing_data(tmp_path):
    config = str(ROOT / 'configs' / 'demo' / 'ssdlite_mobilevit-xs_demo.py')
    options = {'train_dataloader.dataset.data_root': str(tmp_path / 'none')}
    with pytest.raises(CLIError, match='data root not found'):
        probe(config, iters=1, every=1, seed=0, cfg_options=options)


def test_script_prints_a_row_per_window(shapes, capsys):
    load_script('benchmarks/training_probe.py').main([
        LTM_DEMO, '--iters', '2', '--every', '2', '--threads', '1',
        '--cfg-options', f'train_dataloader.dataset.data_root={shapes}',
        'train_dataloader.batch_size=2'])
    lines = capsys.readouterr().out.splitlines()  # after mmdet's own
    start = lines.index('mean loss_cls / loss_bbox per 2 iterations, seed 0')
    assert lines[start + 1:start + 4] == [
        f'A = {LTM_DEMO}', '| iteration | A cls | A box |', '|---|---|---|']
    rows = lines[start + 4:]
    assert len(rows) == 1 and rows[0].startswith('| 2 | ')
    cls_loss, box_loss = (float(cell) for cell in
                         rows[0].strip('| ').split(' | ')[1:])
    assert cls_loss > 0 and box_loss > 0

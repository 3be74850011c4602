"""benchmarks/efficientvit_block_parts.py times the parts that make up an
LTM-EfficientViT block (ltm_mm.analysis.block_timing): they must compose to
the block it reports."""
import warnings

import pytest
import torch

from ltm_mm.analysis.block_timing import PARTS, part_calls
from project_scripts import load_script


@pytest.fixture(scope='module')
def parts():
    return load_script('benchmarks/efficientvit_block_parts.py')


def test_parts_compose_to_the_block():
    from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
    from ltm_mm.models.backbones import LTMEfficientViT
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = LTMEfficientViT(arch='b1', merge_ratios=[0.5] * 7).eval()
    fill_synthetic_statistics(model)
    block = model.stages[2].blocks[1]
    x = torch.randn(2, block.merge_mask.mlp_in.in_features, 8, 10)
    with torch.inference_mode():
        out = dict(zip(PARTS, (call() for call in part_calls(block, x))))
        context = out['context']
        # plain block = Z + MBConv(Z); LTM block = Z + unmerge(MBConv(merge))
        torch.testing.assert_close(out['plain block'],
                                   context + out['MBConv full'])
        torch.testing.assert_close(out['LTM block'],
                                   context + out['unmerge'])
        # the mask module after the context module makes the same plan
        torch.testing.assert_close(out['context + mask'].weights,
                                   out['mask'].weights)
        assert out['MBConv merged'].shape[-2:] == (6, 8)  # ceil(sqrt(.5) hw)
        assert out['merge'].shape == (2, 6 * 8, x.shape[1])
        assert out['unmerge'].shape == x.shape
        assert not torch.allclose(out['LTM block'], out['plain block'])


def test_script_prints_a_row_per_merging_block(parts, capsys):
    torch.set_num_threads(1)
    parts.main(['--size', '128x128', '--reps', '1', '--calls', '1',
                '--num-classes', '10'])
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith('| block'))
    assert '| mask | mask after context | merge |' in header
    rows = [line for line in lines if line.startswith('| stages.')]
    assert [row.split(' | ')[0] for row in rows] == [
        '| stages.2.blocks.1', '| stages.2.blocks.2', '| stages.2.blocks.3',
        '| stages.3.blocks.1', '| stages.3.blocks.2', '| stages.3.blocks.3',
        '| stages.3.blocks.4']
    assert [row.split(' | ')[1] for row in rows] == ['8x8'] * 3 + ['4x4'] * 4
    assert all(len(row.split(' | ')) == 12 for row in rows)  # all timed


def test_script_says_when_a_grid_is_too_small(parts, capsys):
    torch.set_num_threads(1)
    # stride 32 of 64x64 is 2x2: ceil(2 sqrt(0.5)) = 2, nothing to merge
    parts.main(['--size', '64x64', '--reps', '1', '--calls', '1',
                '--num-classes', '10'])
    out = capsys.readouterr().out
    assert '| stages.3.blocks.1 | 2x2 | grid too small to merge |' in out
    assert '| stages.2.blocks.1 | 4x4 | grid too small' not in out


def test_script_rejects_a_ratio_outside_0_1(parts):
    with pytest.raises(SystemExit):
        parts.main(['--ratio', '1.0'])

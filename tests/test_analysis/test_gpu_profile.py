"""benchmarks/gpu_profile.py, tried on the CPU with small models, and its
merge primitives (ltm_mm.analysis.profiling)."""
import pytest
import torch

import ltm_mm.ops.merge as merge_ops
from ltm_mm.analysis.profiling import merge_primitive
from project_scripts import load_script


@pytest.fixture(scope='module')
def gpu_profile():
    return load_script('benchmarks/gpu_profile.py')


def test_profiles_ltm_plain_and_the_other_merge(gpu_profile, tiny_configs,
                                                tmp_path, capsys):
    ltm, plain = tiny_configs(64)
    out = tmp_path / 'profile.txt'
    code = gpu_profile.main([str(ltm), str(plain), '--device', 'cpu',
                             '--batch', '2', '--iters', '1', '--warmup', '0',
                             '--rows', '200', '--merge-primitive',
                             'embedding_bag', 'inlined_gather', '--out',
                             str(out)])
    assert code == 0
    sections = out.read_text().split('\n\n== ')
    assert [s.split(' (')[0].lstrip('= ') for s in sections] == [
        str(ltm), str(ltm), str(ltm), str(plain)]
    assert 'merge embedding_bag' in sections[1].splitlines()[0]
    assert 'merge inlined_gather' in sections[2].splitlines()[0]
    for section in sections:
        assert '(batch 2, amp off, compile off' in section.splitlines()[0]
    # eager runs label the modules: the mask module only in the LTM model
    assert '## LearnableMergeMask' in sections[0]
    assert '## LearnableMergeMask' not in sections[3]
    assert '## MobileVitBlock' in sections[3]
    assert capsys.readouterr().out.count('\n') == 4


def test_the_merge_primitive_is_restored():
    original = merge_ops._weighted_row_sum, merge_ops.computed_once
    with merge_primitive('embedding_bag'):
        assert merge_ops._weighted_row_sum is merge_ops.bagged_row_sum
    assert (merge_ops._weighted_row_sum, merge_ops.computed_once) == original
    with merge_primitive('inlined_gather'):
        assert merge_ops._weighted_row_sum is original[0]
        tensor = torch.ones(3)
        assert merge_ops.computed_once(tensor) is tensor
    assert (merge_ops._weighted_row_sum, merge_ops.computed_once) == original
    with pytest.raises(KeyError):
        with merge_primitive('embedding_bag'):
            raise KeyError('inside')
    assert merge_ops._weighted_row_sum is original[0]


def test_frozen_weights_need_compile(gpu_profile, capsys):
    with pytest.raises(SystemExit):
        gpu_profile.parse_args(['a.py', 'b.py', '--out', 'x', '--device',
                                'cpu', '--freeze'])
    assert '--freeze needs --compile' in capsys.readouterr().err
    args = gpu_profile.parse_args(['a.py', 'b.py', '--out', 'x', '--device',
                                   'cpu', '--compile', 'default',
                                   '--freeze'])
    assert args.freeze


def test_help_names_the_two_configs(gpu_profile, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_profile.parse_args(['--help'])
    assert exit_info.value.code == 0
    assert 'CONFIG CONFIG' in capsys.readouterr().out

"""MAC counting: attention and merging counted exactly, MobileViT against
mmpretrain's metafile, and tools/get_flops.py."""
import subprocess
import sys
from pathlib import Path

import mmpretrain
import pytest
import torch
import torch.nn.functional as F
import yaml
from mmengine.config import Config
from mmpretrain.models.backbones import MobileViT

from ltm_mm.analysis.flops import (TensorForward, build_model,
                                   count_complexity, input_size_from_config,
                                   load_config_model)
from ltm_mm.ops import merge_tokens, unmerge_tokens, window_table
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
MIM_CONFIGS = Path(mmpretrain.__file__).parent / '.mim' / 'configs'
PATCH, HEADS = 2, 4  # mmpretrain MobileVitBlock defaults


class Op(torch.nn.Module):
    """Calls ``op`` on its inputs (the first output if it returns several)."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, *inputs):
        out = self.op(*inputs)
        return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize('op, value_dim', [
    (F.scaled_dot_product_attention, 6),
    (torch.ops.aten._scaled_dot_product_attention_math, 6),
    (torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, 4),
])
def test_attention_count_equals_the_formula(op, value_dim):
    batch, heads, queries, keys, dim = 2, 3, 5, 7, 4
    inputs = (torch.randn(batch, heads, queries, dim),
              torch.randn(batch, heads, keys, dim),
              torch.randn(batch, heads, keys, value_dim))
    result = count_complexity(Op(op), inputs)
    assert result.macs == batch * heads * queries * keys * (dim + value_dim)
    assert result.uncounted == {}
    assert result.params == 0
    assert result.input_shape == (batch, heads, queries, dim)


def test_attention_can_be_left_uncounted():
    inputs = tuple(torch.randn(1, 2, 8, 4) for _ in range(3))
    result = count_complexity(Op(F.scaled_dot_product_attention),
                              inputs, count_attention=False)
    assert result.macs == 0
    assert result.uncounted == {'aten::scaled_dot_product_attention': 1}


class MergeUnmerge(torch.nn.Module):

    def __init__(self, table, direction):
        super().__init__()
        self.table, self.direction = table, direction

    def forward(self, tokens, weights):
        if self.direction == 'merge':
            return merge_tokens(tokens, weights, self.table)
        return unmerge_tokens(tokens, weights, self.table)


@pytest.mark.parametrize('direction', ['merge', 'unmerge'])
def test_token_merging_is_counted_per_gathered_row(direction):
    batch, dim = 2, 16
    table = window_table((8, 8), (6, 6), 3, torch.device('cpu'))
    num_merged, num_slots = table.source_index.shape  # (P, k * k)
    weights = torch.rand(batch, num_merged, num_slots)
    if direction == 'merge':
        tokens = torch.randn(batch, 64, dim)
        expected = batch * num_merged * num_slots * dim  # P * k * k * D
    else:
        tokens = torch.randn(batch, num_merged, dim)
        expected = batch * table.reverse_slot.numel() * dim  # N * C * D
    result = count_complexity(MergeUnmerge(table, direction),
                              (tokens, weights))
    assert result.by_operator == {'embedding_bag': expected}


def test_cdist_is_counted():
    result = count_complexity(Op(torch.cdist),
                              (torch.randn(3, 5, 4), torch.randn(3, 7, 4)))
    assert result.by_operator == {'cdist': 3 * 5 * 7 * 4}


def attention_macs(arch: str, size: int) -> int:
    """Closed form over the arch table: B * H * N * N * (d + d) per layer,
    with B = patch area (batch 1), N patches, d = dim / H."""
    total, side = 0, size // 2  # stem: stride 2
    for layer in MobileViT.arch_settings[arch]:
        side //= layer[2]
        if layer[0] == 'mobilevit':
            dim, num_layers = layer[3], layer[5]
            tokens = (side // PATCH)**2
            head_dim = dim // HEADS
            total += num_layers * (PATCH * PATCH * HEADS * tokens * tokens *
                                   2 * head_dim)
    return total


def mobilevit_classifier(arch):
    channels = MobileViT.arch_settings[arch][-1][1] * 4  # last_exp_factor
    cfg = Config(dict(default_scope='mmpretrain', model=dict(
        type='ImageClassifier',
        backbone=dict(type='MobileViT', arch=arch),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000,
                  in_channels=channels))))
    return TensorForward(build_model(cfg))


@pytest.fixture(scope='module')
def mobilevit_s_256(tmp_path_factory):
    """mmpretrain's MobileViT-S config, input size from its pipeline."""
    config = tmp_path_factory.mktemp('mobilevit') / 'mobilevit_s.py'
    config.write_text(
        "_base_ = 'mmpretrain::mobilevit/mobilevit-small_8xb128_in1k.py'\n")
    loaded = load_config_model(str(config))
    assert loaded.input_size == (256, 256)
    model, inputs = loaded.model, loaded.dummy_inputs()
    return {name: count_complexity(model, inputs, **kwargs)
            for name, kwargs in [('default', {}),
                                 ('no_attention', dict(count_attention=False)),
                                 ('norms', dict(count_norms=True))]}


def test_mobilevit_s_256_macs(mobilevit_s_256):
    default = mobilevit_s_256['default']
    assert default.macs / 1e9 == pytest.approx(2.00, abs=0.03)
    assert mobilevit_s_256['no_attention'].macs / 1e9 == pytest.approx(
        1.82, abs=0.03)
    assert (default.macs - mobilevit_s_256['no_attention'].macs ==
            attention_macs('small', 256) ==
            default.by_operator['scaled_dot_product_attention'])
    assert set(default.uncounted) <= {'aten::add', 'aten::mul',
                                      'aten::sigmoid'}


def test_mobilevit_s_with_norms_matches_the_metafile(mobilevit_s_256):
    metafile = yaml.safe_load(
        (MIM_CONFIGS / 'mobilevit' / 'metafile.yml').read_text())
    meta = next(m['Metadata'] for m in metafile['Models']
                if m['Name'] == 'mobilevit-small_3rdparty_in1k')
    result = mobilevit_s_256['norms']
    assert result.macs == pytest.approx(meta['FLOPs'], rel=0.01)
    assert result.params == pytest.approx(meta['Parameters'], rel=0.01)
    assert result.macs > mobilevit_s_256['default'].macs


@pytest.mark.parametrize('arch', ['x_small', 'xx_small'])
def test_attention_share_of_other_archs(arch):
    model, inputs = mobilevit_classifier(arch), torch.randn(1, 3, 128, 128)
    with_attention = count_complexity(model, inputs)
    without = count_complexity(model, inputs, count_attention=False)
    assert with_attention.macs - without.macs == attention_macs(arch, 128)


def _pipeline_cfg(*steps):
    return Config(dict(test_dataloader=dict(
        dataset=dict(type='RepeatDataset', dataset=dict(pipeline=[
            dict(type='LoadImageFromFile'), *steps,
            dict(type='PackInputs')])))))


@pytest.mark.parametrize('steps, expected', [
    ([dict(type='ResizeEdge', scale=288, edge='short'),
      dict(type='CenterCrop', crop_size=256)], (256, 256)),
    ([dict(type='Resize', scale=(1333, 800), keep_ratio=True)], (800, 1333)),
    ([dict(type='Resize', scale=(320, 320), keep_ratio=False)], (320, 320)),
    ([dict(type='RandomFlip', prob=0.5)], None),
])
def test_input_size_from_test_pipeline(steps, expected):
    assert input_size_from_config(_pipeline_cfg(*steps)) == expected


def run_tool(tool, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / 'tools' / tool), *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)


def load_tool(name):
    """``tools/<name>.py`` as a module, to call its ``main`` in-process."""
    return load_script(f'tools/{name}.py')


def _row(stdout, name):
    line = next(line for line in stdout.splitlines()
                if line.startswith(name))
    return line[len(name):].split()


def test_get_flops_compares_two_configs(tmp_path, tiny_configs):
    ltm, plain = tiny_configs()
    result = run_tool('get_flops.py', ltm, '--compare', plain)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f'A = {ltm}' in out and f'B = {plain}' in out
    assert _row(out, '  ') == ['A', 'B', 'ratio', 'A/B']
    assert _row(out, 'input') == ['1x3x128x128', '1x3x128x128']
    macs_a, macs_b, ratio = map(float, _row(out, 'GMACs'))
    assert macs_a < macs_b  # merging removes work
    # the printed GMACs are rounded to 1e-3: bound the ratio's error
    rounding = 5e-4 * (1 / macs_b + macs_a / macs_b**2)
    assert ratio == pytest.approx(macs_a / macs_b, abs=rounding + 1e-3)
    params_a, params_b, params_ratio = map(float, _row(out, 'params (M)'))
    assert params_a > params_b  # the merge masks
    assert params_ratio == pytest.approx(params_a / params_b, abs=2e-3)
    # the same count as in-process
    plain_model = TensorForward(build_model(Config.fromfile(str(plain))))
    expected = count_complexity(plain_model, torch.randn(1, 3, 128, 128))
    assert macs_b == pytest.approx(expected.macs / 1e9, abs=1e-3)


def test_get_flops_shape_overrides_the_pipeline(tmp_path, capsys, tiny_configs):
    _, plain = tiny_configs()
    assert load_tool('get_flops').main(
        [str(plain), '--shape', '96', '64']) == 0
    out = capsys.readouterr().out
    assert _row(out, 'input') == ['1x3x96x64']
    assert 'ratio' not in out


def test_get_flops_names_a_missing_config_with_exit_code_2(tmp_path, tiny_configs):
    missing = tmp_path / 'missing.py'
    _, plain = tiny_configs()
    result = run_tool('get_flops.py', plain, '--compare', missing)
    assert result.returncode == 2
    assert f'config file not found: {str(missing)!r}' in result.stderr
    assert 'Traceback' not in result.stderr


def test_get_flops_names_a_missing_first_config(tmp_path, capsys, tiny_configs):
    missing = tmp_path / 'missing.py'
    _, plain = tiny_configs()
    assert load_tool('get_flops').main(
        [str(missing), '--compare', str(plain)]) == 2
    assert f'config file not found: {str(missing)!r}' in \
        capsys.readouterr().err


def test_get_flops_asks_for_shape_when_the_pipeline_has_none(tmp_path,
                                                             capsys):
    config = tmp_path / 'no_pipeline.py'
    config.write_text("default_scope = 'mmpretrain'\nmodel = dict("
                      "type='ImageClassifier', backbone=dict(type='MobileViT',"
                      " arch='xx_small'))\n")
    assert load_tool('get_flops').main([str(config)]) == 2
    err = capsys.readouterr().err
    assert '--shape H W' in err and str(config) in err


def test_macs_decrease_monotonically_as_the_ratio_decreases():
    """The r sweep of docs/benchmarks.md (paper Table V), on MobileViT-XXS."""
    from ltm_mm.analysis.synthetic_statistics import \
        fill_synthetic_statistics
    from ltm_mm.models.backbones import LTMMobileViT
    macs = []
    for ratio in (1.0, 0.8, 0.6, 0.4):
        model = LTMMobileViT('xx_small', merge_ratios=[ratio] * 9,
                             restore_resolution=False).eval()
        fill_synthetic_statistics(model)
        macs.append(count_complexity(model, torch.randn(1, 3, 256,
                                                        256)).macs)
    assert all(a > b for a, b in zip(macs, macs[1:])), macs


def test_baddbmm_is_counted():
    class ScoreLayer(torch.nn.Module):
        def forward(self, hidden, weights):
            bias = weights.new_zeros(hidden.shape[0], 1, 1)
            return torch.baddbmm(bias, hidden, weights)

    hidden, weights = torch.randn(3, 50, 8), torch.randn(3, 8, 1)
    assert count_complexity(ScoreLayer(), (hidden, weights)).macs == \
        3 * 50 * 8 * 1

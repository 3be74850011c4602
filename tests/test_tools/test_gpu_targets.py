"""The GPU targets in one run (ltm_mm.analysis.gpu_targets, and
benchmarks/gpu_targets.py's command line), tried on the CPU."""
import pytest
import torch

from ltm_mm.analysis import gpu_targets
from project_scripts import load_script


@pytest.fixture(scope='module')
def script():
    return load_script('benchmarks/gpu_targets.py')


def test_ratios_are_those_the_benchmark_tool_prints():
    """The ratio of the medians and the median of the per-round ratios."""
    from ltm_mm.analysis.config_benchmark import latency_ratios
    from ltm_mm.analysis.latency import summarize
    ltm = summarize([0.200, 0.210, 0.190], 1)
    plain = summarize([0.250, 0.200, 0.200], 1)
    ratios = latency_ratios({1: (ltm, plain)})
    assert list(ratios) == [1]
    ratio, paired = ratios[1]
    assert ratio == pytest.approx(0.200 / 0.200)
    # per round: 0.8, 1.05, 0.95
    assert paired == pytest.approx(0.95)


def test_targets_are_judged_against_their_thresholds():
    table = gpu_targets.targets_table({
        'ssdlite-s-compiled-fp16': {1: (0.98, 0.97), 32: (0.96, 0.94)},
        'ssdlite-s-compiled-fp16-frozen': {1: (1.02, 1.01),
                                           32: (0.95, 0.96)}})
    rows = {line.split(' | ')[0].lstrip('| '): line
            for line in table.splitlines()[2:]}
    compiled = 'SSDLite-S 320, compiled reduce-overhead, fp16, batch '
    assert rows[compiled + '1'].endswith(
        '| 0.980 (0.970) | 1.020 (1.010) | <= 1.00 | yes |')
    # judged on the ratio of the medians, the measure; with frozen
    # weights (the same compiler setting for both models) it is met
    assert rows[compiled + '32'].endswith(
        '| 0.960 (0.940) | 0.950 (0.960) | <= 0.95 | yes |')
    assert rows[compiled + '8'].endswith(
        '| not measured | not measured | <= 1.00 | - |')
    fp32 = 'SSDLite-S 320, compiled reduce-overhead, fp32, batch 1'
    assert rows[fp32].endswith('| not measured | not measured | <= 1.00 | - |')
    # eager targets: their variant replays the mask modules from graphs
    table = gpu_targets.targets_table({
        'ssdlite-s-eager-fp16': {32: (1.20, 1.21)},
        'ssdlite-s-eager-fp16-graphs': {32: (1.08, 1.09)},
        'mask-rcnn-b1-eager-fp16-graphs': {2: (1.04, 1.03)}})
    rows = {line.split(' | ')[0].lstrip('| '): line
            for line in table.splitlines()[2:]}
    assert rows['SSDLite-S 320, eager, fp16, batch 32'].endswith(
        '| 1.200 (1.210) | 1.080 (1.090) | <= 1.10 | yes |')
    assert rows['Mask R-CNN B1 800x1333, eager, fp16, batch 2'].endswith(
        '| not measured | 1.040 (1.030) | <= 1.00 | **no** |')
    assert len(rows) == len(gpu_targets.TARGETS)
    assert all(gpu_targets.variant_of(step) for _, step, _, _ in
               gpu_targets.TARGETS)


@pytest.mark.parametrize('suffix,option', [('-frozen', 'freeze'),
                                           ('-graphs', 'eval_cuda_graphs')])
def test_variants_are_their_steps_with_one_option_more(suffix, option):
    variants = [name for name in gpu_targets.STEPS if name.endswith(suffix)]
    assert variants
    for name in variants:
        configs, batches, options = gpu_targets.STEPS[name]
        base_configs, base_batches, base_options = \
            gpu_targets.STEPS[name[:-len(suffix)]]
        assert (configs, batches) == (base_configs, base_batches)
        assert options == {**base_options, option: True}
        assert not base_options.get(option)


def test_a_failed_step_is_reported_and_the_next_one_runs(
        script, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(script.STEPS, 'broken', (
        ('configs/absent.py', 'configs/ssdlite_mobilevit_s.py'), (1, ), {}))
    out = tmp_path / 'gpu.md'
    code = script.main([
        '--device', 'cpu', '--steps', 'broken', 'ssdlite-s-eager-fp16-graphs',
        'ssdlite-s-eager-fp32', '--max-batch', '1', '--iters', '1',
        '--warmup', '0', '--out', str(out)])
    assert code == 1
    page = out.read_text()
    assert page.startswith('## GPU: cpu, torch ')
    broken, refused, timed = page.split('### broken')[1].split(
        '### ssdlite-s-eager')
    assert '(failed, exit 2)' in broken and 'configs/absent.py' in broken
    # the tool refused its arguments: reported, and the next step ran
    assert '(failed, exit 2)' in refused and 'needs --device cuda' in refused
    assert ('`python tools/benchmark.py configs/ltm_ssdlite_mobilevit_s.py '
            '--compare configs/ssdlite_mobilevit_s.py --batch-sizes 1 '
            '--warmup 0 --iters 1`') in timed
    row = next(line for line in timed.splitlines()
               if line.split()[:1] == ['1'])
    # the row the tool printed: A/B and paired A/B, as the page judges them
    ratio, paired = (float(cell) for cell in row.split()[7:9])
    assert ratio > 0 and paired > 0
    # batch 8 and 32 were left out: the fp32 step is no target anyway
    assert '| not measured | not measured | <= 0.95 | - |' in page


def test_every_step_starts_without_compiled_graphs(script, tmp_path,
                                                  monkeypatch):
    """Graphs of earlier steps would count against dynamo's recompile
    limit, past which a compiled step runs eager (as happened on a GPU)."""
    events = []
    monkeypatch.setattr(script, 'fresh_compilation',
                        lambda: events.append('reset'))
    monkeypatch.setattr(script, 'run_timing_step',
                        lambda options: events.append(options.config) or
                        ('', 0, {}))
    script.main(['--device', 'cpu', '--steps', 'ssdlite-s-eager-fp32',
                 'ssdlite-b1-eager-fp16', '--out', str(tmp_path / 'gpu.md')])
    assert events == ['reset', 'configs/ltm_ssdlite_mobilevit_s.py',
                      'reset', 'configs/ltm_ssdlite_efficientvit_b1.py']


def test_cuda_is_required_unless_the_cpu_is_asked_for(script, capsys):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(SystemExit):
        script.parse_args([])
    assert '--device cpu runs the steps' in capsys.readouterr().err


def test_make_page_copies_the_gpu_pages(tmp_path):
    """``make bench`` (benchmarks/make_page.py) puts every GPU page it
    finds beside its plots into docs/benchmarks.md."""
    gpu_targets.write_page(tmp_path / 'gpu_targets.md', '## GPU: H200',
                           [], {})
    (tmp_path / 'mergers_x.md').write_text('## not a GPU page\n')
    from ltm_mm.analysis.benchmark_page import copied_sections
    sections = copied_sections(tmp_path, 'gpu_*.md')
    assert len(sections) == 1
    assert sections[0].startswith('## GPU: H200')
    assert '| not measured |' in sections[0]

"""benchmarks/gpu_targets.py: the GPU targets in one run, tried on the CPU."""
import pytest
import torch

from project_scripts import load_script

BENCHMARK_OUTPUT = """\
device cpu, torch 2.14.1, threads 1, amp off, compile off, ...
A = configs/ltm_ssdlite_mobilevit_s.py
B = configs/ssdlite_mobilevit_s.py
input 320x320, latency in ms: median (IQR)
batch                A ms    A img/s                B ms    B img/s  latency A/B        paired A/B  kernels A/B
    1      200.00 (2.00)        5.0      217.60 (3.00)        4.6        0.919     0.921 (0.010)      346/284
   32     8000.00 (9.00)        4.0     8000.00 (9.00)        4.0        1.000     0.990 (0.020)      346/284
"""


@pytest.fixture(scope='module')
def gpu_targets():
    return load_script('benchmarks/gpu_targets.py')


def test_ratios_are_read_from_the_benchmark_table(gpu_targets):
    assert gpu_targets.parse_ratios(BENCHMARK_OUTPUT) == {
        1: (0.919, 0.921), 32: (1.0, 0.99)}


def test_targets_are_judged_against_their_thresholds(gpu_targets):
    table = gpu_targets.targets_table(
        {'ssdlite-s-compiled-fp16': {1: (0.98, 0.97), 32: (0.96, 0.94)}})
    rows = {line.split(' | ')[0].lstrip('| '): line
            for line in table.splitlines()[2:]}
    compiled = 'SSDLite-S 320, compiled reduce-overhead, fp16, batch '
    assert rows[compiled + '1'].endswith('| 0.980 (0.970) | <= 1.00 | yes |')
    # judged on the ratio of the medians, the measure
    assert rows[compiled + '32'].endswith(
        '| 0.960 (0.940) | <= 0.95 | **no** |')
    assert rows[compiled + '8'].endswith('| not measured | <= 1.00 | - |')
    assert len(rows) == len(gpu_targets.TARGETS)


def test_a_failed_step_is_reported_and_the_next_one_runs(
        gpu_targets, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(gpu_targets.STEPS, 'broken', (
        ('configs/absent.py', 'configs/ssdlite_mobilevit_s.py'), (1, ), ()))
    out = tmp_path / 'gpu.md'
    code = gpu_targets.main([
        '--device', 'cpu', '--steps', 'broken', 'ssdlite-s-eager-fp32',
        '--max-batch', '1', '--iters', '1', '--warmup', '0', '--out',
        str(out)])
    assert code == 1
    page = out.read_text()
    assert page.startswith('## GPU: cpu, torch ')
    broken, timed = page.split('### broken')[1].split('### ssdlite-s-eager')
    assert '(failed, exit 2)' in broken and 'configs/absent.py' in broken
    assert ('`python tools/benchmark.py configs/ltm_ssdlite_mobilevit_s.py '
            '--compare configs/ssdlite_mobilevit_s.py --device cpu '
            '--batch-sizes 1 --iters 1 --warmup 0`') in timed
    ratio, paired = gpu_targets.parse_ratios(timed)[1]
    assert ratio > 0 and paired > 0
    # batch 8 and 32 were left out: the fp32 step is no target anyway
    assert '| not measured | <= 0.95 | - |' in page


def test_cuda_is_required_unless_the_cpu_is_asked_for(gpu_targets, capsys):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(SystemExit):
        gpu_targets.parse_args([])
    assert '--device cpu runs the steps' in capsys.readouterr().err


def test_make_page_copies_the_gpu_pages(gpu_targets, tmp_path):
    """``make bench`` (benchmarks/make_page.py) puts every GPU page it
    finds beside its plots into docs/benchmarks.md."""
    gpu_targets.write_page(tmp_path / 'gpu_targets.md', '## GPU: H200',
                           [], {})
    (tmp_path / 'mergers_x.md').write_text('## not a GPU page\n')
    make_page = load_script('benchmarks/make_page.py')
    sections = make_page.gpu_sections(tmp_path)
    assert len(sections) == 1
    assert sections[0].startswith('## GPU: H200')
    assert '| not measured |' in sections[0]

"""tools/benchmark.py --backend onnxruntime times the exported networks."""
import pytest

from exportable_models import DEMO
from ltm_mm.analysis.config_benchmark import (BenchmarkOptions,
                                              benchmark_configs)
from project_scripts import load_script

LTM = str(DEMO / 'ssdlite_ltm-mobilevit-xs_demo.py')
PLAIN = str(DEMO / 'ssdlite_mobilevit-xs_demo.py')


def test_onnx_runtime_latency_table(capsys):
    results = benchmark_configs(BenchmarkOptions(
        LTM, PLAIN, backend='onnxruntime', exporter='torchscript',
        shape=(128, 128), batch_sizes=(1, 2), iters=2, warmup=1, threads=1))
    assert sorted(results) == [1, 2]
    for first, second in results.values():
        assert first.median_ms > 0 and second.median_ms > 0
        assert first.kernels is None  # ONNX Runtime's are not counted
    out = capsys.readouterr().out
    assert 'backend onnxruntime (torchscript export)' in out
    assert 'input 128x128' in out


@pytest.mark.parametrize('flag', [['--compile', 'default'], ['--amp', 'bf16'],
                                  ['--channels-last']])
def test_pytorch_only_options_are_refused(flag, capsys):
    benchmark = load_script('tools/benchmark.py')
    with pytest.raises(SystemExit):
        benchmark.parse_args([LTM, '--compare', PLAIN, '--backend',
                              'onnxruntime', *flag])
    assert 'runs on the CPU without PyTorch options' in \
        capsys.readouterr().err

"""The options of a config comparison (ltm_mm/analysis/config_benchmark.py)
and the command line that gives them (tools/benchmark.py)."""
import pytest
import torch

from ltm_mm.analysis.config_benchmark import BenchmarkOptions
from project_scripts import load_script


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/benchmark.py')


@pytest.mark.parametrize('fields', [
    dict(),
    dict(batch_sizes=(1, 8, 32), iters=30, warmup=10, amp='fp16',
         compile='reduce-overhead', freeze=True, threads=3),
    dict(shape=(128, 96), no_statistics=True, channels_last=True,
         reuse_freed_memory=True),
    dict(backend='onnxruntime', exporter='torchscript', batch_sizes=(2, )),
])
def test_the_command_line_gives_the_options_back(tool, fields):
    options = BenchmarkOptions('a.py', 'b.py', **fields)
    assert options.problems() == []
    parsed = tool.parse_args(options.command_line())
    if fields.get('shape'):
        parsed.shape = tuple(parsed.shape)
    parsed.batch_sizes = tuple(parsed.batch_sizes)
    assert parsed == options


@pytest.mark.parametrize('fields,problem', [
    (dict(backend='onnxruntime', compile='default', channels_last=True),
     '--backend onnxruntime runs on the CPU without PyTorch options: drop '
     '--compile, --channels-last'),
    (dict(iters=0), '--iters must be >= 1'),
    (dict(threads=0), '--threads must be >= 1'),
    (dict(amp='fp8'), "--amp must be one of ['bf16', 'fp16'], got 'fp8'"),
    (dict(freeze=True), '--freeze folds weights into compiled graphs'),
    (dict(eval_cuda_graphs=True), '--eval-cuda-graphs replays eager mask '
     'modules from CUDA graphs: it needs --device cuda'),
    (dict(batch_sizes=(0, )), '--warmup must be >= 0 and batch sizes >= 1'),
])
def test_unusable_options_say_what_to_change(fields, problem):
    problems = BenchmarkOptions('a.py', 'b.py', **fields).problems()
    assert len(problems) == 1 and problems[0].startswith(problem)


def test_the_cli_refuses_what_the_options_refuse(tool, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(['a.py', '--compare', 'b.py', '--freeze'])
    assert '--freeze folds weights' in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert BenchmarkOptions('a.py', 'b.py', device='cuda').problems() \
            == ['--device cuda: CUDA is not available here']

"""Latency of two configs' models, timed alternately in one process: the
logic behind ``tools/benchmark.py`` and ``benchmarks/gpu_targets.py``
(as mmdet keeps its in ``mmdet/utils/benchmark.py``).

:class:`BenchmarkOptions` holds one comparison's settings and says what is
wrong with them (:meth:`BenchmarkOptions.problems`);
:func:`benchmark_configs` builds both models, times them with
:func:`~ltm_mm.analysis.latency.compare_latency` and reports through a
callable (``print`` by default).  The command line's help
(``tools/benchmark.py``) describes each option.
"""
import contextlib
import os
from dataclasses import dataclass, fields
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ltm_mm.apis import CLIError, check_file_exists
from ltm_mm.engine.cpu_memory import reuse_freed_memory
from ltm_mm.models.backbones.ltm_mixin import LTMBackboneMixin
from ltm_mm.models.layers import find_merge_masks
from ltm_mm.models.layers.eval_graphs import installed_graphs
from .compiled import frozen_weights, strict_compilation
from .flops import load_config_model
from .kernel_count import count_kernels
from .latency import AMP_DTYPES, compare_latency, paired_ratio


def all_cores() -> int:
    """CPU cores this process may use."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class BenchmarkOptions:
    """One comparison: ``config`` (A) against ``compare`` (B); ratios are
    A/B.  Field names are ``tools/benchmark.py``'s options."""
    config: str
    compare: str
    batch_sizes: Sequence[int] = (1, 8)
    shape: Optional[Tuple[int, int]] = None
    warmup: int = 5
    iters: int = 20
    threads: Optional[int] = None  # all usable cores
    device: str = 'cpu'
    amp: Optional[str] = None
    compile: Optional[str] = None
    freeze: bool = False
    eval_cuda_graphs: bool = False
    no_statistics: bool = False
    channels_last: bool = False
    reuse_freed_memory: bool = False
    backend: str = 'pytorch'
    exporter: str = 'dynamo'

    def problems(self) -> List[str]:
        """What makes these options unusable (empty when none), each a
        sentence that says what to change."""
        found = []
        if self.backend == 'onnxruntime':
            torch_only = [flag for flag, on in (
                ('--compile', self.compile), ('--amp', self.amp),
                ('--eval-cuda-graphs', self.eval_cuda_graphs),
                ('--channels-last', self.channels_last),
                ('--device cuda', self.device != 'cpu')) if on]
            if torch_only:
                found.append(f'--backend onnxruntime runs on the CPU without '
                             f'PyTorch options: drop {", ".join(torch_only)}')
        if self.device.startswith('cuda') and not torch.cuda.is_available():
            found.append(f'--device {self.device}: CUDA is not available '
                         f'here')
        if self.threads is not None and self.threads < 1:
            found.append('--threads must be >= 1')
        if self.iters < 1:
            found.append('--iters must be >= 1')
        if self.amp is not None and self.amp not in AMP_DTYPES:
            found.append(f'--amp must be one of {sorted(AMP_DTYPES)}, got '
                         f'{self.amp!r}')
        if self.freeze and not self.compile:
            found.append('--freeze folds weights into compiled graphs: it '
                         'needs --compile')
        if self.eval_cuda_graphs and (self.compile or
                                      not self.device.startswith('cuda')):
            found.append('--eval-cuda-graphs replays eager mask modules from '
                         'CUDA graphs: it needs --device cuda and no '
                         '--compile (reduce-overhead graphs the whole model)')
        if self.warmup < 0 or min(self.batch_sizes) < 1:
            found.append('--warmup must be >= 0 and batch sizes >= 1')
        return found

    def command_line(self) -> List[str]:
        """The ``tools/benchmark.py`` arguments that give these options."""
        argv = [self.config, '--compare', self.compare]
        for field in fields(self)[2:]:
            value = getattr(self, field.name)
            if isinstance(value, list):
                value = tuple(value)
            if value == field.default or value is False or value is None:
                continue
            flag = '--' + field.name.replace('_', '-')
            if value is True:
                argv.append(flag)
            elif isinstance(value, (list, tuple)):
                argv += [flag, *map(str, value)]
            else:
                argv += [flag, str(value)]
        return argv


def describe_device(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return 'cpu'


def latency_ratios(results: dict) -> dict:
    """``{batch: (latency A/B, paired A/B)}`` of :func:`benchmark_configs`
    results, as :func:`format_table` prints them."""
    return {batch: (first.median_ms / second.median_ms,
                    paired_ratio(first, second).median)
            for batch, (first, second) in results.items()}


def format_table(results, names, input_size) -> str:
    """The table of :func:`benchmark_configs` for configs ``names``."""
    lines = [f'{label} = {name}' for label, name in zip('AB', names)]
    lines.append(f'input {input_size[0]}x{input_size[1]}, latency in ms: '
                 f'median (IQR)')
    header = (f'{"batch":>5}  {"A ms":>18}  {"A img/s":>9}  {"B ms":>18}  '
              f'{"B img/s":>9}  {"latency A/B":>11}  {"paired A/B":>16}  '
              f'{"kernels A/B":>11}')
    lines.append(header)
    for batch_size, (first, second) in results.items():
        cells = [f'{batch_size:>5}']
        for stats in (first, second):
            timing = f'{stats.median_ms:.2f} ({stats.iqr_ms:.2f})'
            cells += [f'{timing:>18}', f'{stats.throughput:>9.1f}']
        cells.append(f'{first.median_ms / second.median_ms:>11.3f}')
        paired = paired_ratio(first, second)
        cells.append(f'{f"{paired.median:.3f} ({paired.iqr:.3f})":>16}')
        kernels = '-' if first.kernels is None else \
            f'{first.kernels}/{second.kernels}'
        cells.append(f'{kernels:>11}')
        lines.append('  '.join(cells))
    return '\n'.join(lines)


def use_eval_cuda_graphs(model: torch.nn.Module) -> None:
    """Turn on the CUDA graphs of the mask modules of every LTM backbone in
    ``model`` (none in a plain model)."""
    for module in model.modules():
        if isinstance(module, LTMBackboneMixin):
            module.use_eval_cuda_graphs()


def describe_eval_graphs(model: torch.nn.Module) -> str:
    """How many CUDA graphs ``model``'s mask modules hold, and why any
    turned them off."""
    masks = find_merge_masks(model)
    if not masks:
        return 'no LTM mask modules'
    wrappers = [w for w in map(installed_graphs, masks) if w is not None]
    graphs = sum(len(w.graphs().graphs) for w in wrappers)
    off = sorted({w.graphs().disabled_because for w in wrappers
                  if w.graphs().disabled_because})
    return (f'{len(masks)} LTM mask modules, {graphs} CUDA graphs kept'
            + (f'; off in some: {"; ".join(off)}' if off else ''))


def benchmark_configs(options: BenchmarkOptions,
                      report: Callable[[str], None] = print) -> dict:
    """Times the two configs of ``options`` and reports the settings line
    and the table (:func:`format_table`).

    Returns:
        ``{batch_size: (stats of A, stats of B)}``
        (:func:`~ltm_mm.analysis.latency.compare_latency`).

    Raises:
        CLIError: unusable options (:meth:`BenchmarkOptions.problems`), a
            missing config, one that gives no input size, or a model that
            cannot be exported for ``backend='onnxruntime'``.
    """
    problems = options.problems()
    if problems:
        raise CLIError('; '.join(problems))
    for path in (options.config, options.compare):
        check_file_exists(path, 'config file')
    statistics = not options.no_statistics
    first = load_config_model(options.config, options.shape, statistics)
    second = load_config_model(options.compare, first.input_size,
                               statistics)
    threads = options.threads or all_cores()
    torch.set_num_threads(threads)
    device = torch.device(options.device)
    memory_format = torch.channels_last if options.channels_last else \
        torch.contiguous_format
    models = [m.model.to(device, memory_format=memory_format)
              for m in (first, second)]
    if options.backend == 'onnxruntime':
        from ltm_mm.deploy import onnxruntime_modules
        try:
            models = onnxruntime_modules(models, first.input_size,
                                         options.exporter, threads)
        except (TypeError, ValueError) as error:  # not exportable
            raise CLIError(str(error)) from None
    allocator = 'system'
    if options.reuse_freed_memory:
        allocator = 'reuse freed' if reuse_freed_memory() else \
            'system (not glibc: --reuse-freed-memory does nothing here)'
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    # kernels of compiled CPU code (or ONNX Runtime's) do not pass the
    # dispatcher: not counted
    counter = None if ((options.compile and device.type == 'cpu')
                       or options.backend == 'onnxruntime') else count_kernels
    if options.eval_cuda_graphs:  # eager only (problems())
        for model in models:
            use_eval_cuda_graphs(model)
    if options.compile:
        models = [torch.compile(m.eval(), mode=options.compile)
                  for m in models]
    backend = '' if options.backend == 'pytorch' else \
        f'backend {options.backend} ({options.exporter} export), '
    report(f'device {describe_device(device)}, torch {torch.__version__}, '
           f'threads {torch.get_num_threads()}, amp {options.amp or "off"}, '
           f'{backend}'
           f'compile {options.compile or "off"}'
           f'{" with frozen weights" if options.freeze else ""}'
           f'{", masks from CUDA graphs" if options.eval_cuda_graphs else ""}'
           f', statistics {"none" if options.no_statistics else "synthetic"}'
           f', layout '
           f'{"channels-last" if options.channels_last else "NCHW"}, '
           f'CPU memory {allocator}, '
           f'warm-up {options.warmup}, '
           f'{options.iters} timed forwards per model, alternating A, B')
    checks = contextlib.ExitStack()
    if options.compile:
        # a compiled model past dynamo's recompile limit would run eager
        # (ltm_mm.analysis.compiled): fail rather than time that
        checks.enter_context(strict_compilation())
    if options.freeze:  # models compile at their first call, in the timing
        checks.enter_context(frozen_weights())
    with checks:
        results = compare_latency(
            models, first.input_size, batch_sizes=options.batch_sizes,
            iters=options.iters, warmup=options.warmup, device=device,
            amp=options.amp, kernel_counter=counter,
            memory_format=memory_format)
    report(format_table(results, [options.config, options.compare],
                        first.input_size))
    if options.eval_cuda_graphs:
        for label, model in zip('AB', models):
            report(f'{label}: {describe_eval_graphs(model)}')
    return results

"""The GPU speed targets of docs/speed.md: the logic behind
``benchmarks/gpu_targets.py``.

:data:`STEPS` are the timing steps, in order of importance, each a
``tools/benchmark.py`` comparison of an LTM config with its plain config
(:func:`step_options` makes its :class:`BenchmarkOptions`,
:func:`run_timing_step` runs it in this process); :data:`EQUALITY_STEP`
checks that the compiled LTM detector computes what the eager one does
(:func:`compiled_equals_eager`).  :data:`TARGETS` are the thresholds on
LTM/plain latency, judged by :func:`targets_table`, which also reads each
target's variant (:data:`VARIANTS`); :func:`write_page` writes the page.
The configs are named relative to the project root.
"""
import contextlib
import io
from pathlib import Path

import torch

from ltm_mm.apis import CLIError
from .compiled import strict_compilation
from .config_benchmark import (BenchmarkOptions, benchmark_configs,
                               describe_device, latency_ratios)

SSDLITE_S = ('configs/ltm_ssdlite_mobilevit_s.py',
             'configs/ssdlite_mobilevit_s.py')
SSDLITE_B1 = ('configs/ltm_ssdlite_efficientvit_b1.py',
              'configs/ssdlite_efficientvit_b1.py')
MASK_RCNN_B1 = ('configs/ltm_mask-rcnn_efficientvit-b1_fpn_1x_coco.py',
                'configs/mask-rcnn_efficientvit-b1_fpn_1x_coco.py')

#: name -> (config pair, batch sizes, BenchmarkOptions fields), in order of
#: importance: the targets first
STEPS = {
    'ssdlite-s-compiled-fp16': (SSDLITE_S, (1, 8, 32),
                                dict(amp='fp16', compile='reduce-overhead')),
    # weights, buffers and class statistics as constants of the graphs:
    # what depends on them alone is computed at compile time
    'ssdlite-s-compiled-fp16-frozen': (SSDLITE_S, (1, 8, 32),
                                       dict(amp='fp16',
                                            compile='reduce-overhead',
                                            freeze=True)),
    'ssdlite-s-eager-fp16': (SSDLITE_S, (1, 8, 32), dict(amp='fp16')),
    # each mask module's eval forward replayed from a CUDA graph: one
    # launch instead of twenty-odd, each of which costs the host
    'ssdlite-s-eager-fp16-graphs': (SSDLITE_S, (1, 8, 32),
                                    dict(amp='fp16', eval_cuda_graphs=True)),
    'mask-rcnn-b1-eager-fp16': (MASK_RCNN_B1, (1, 2), dict(amp='fp16')),
    'mask-rcnn-b1-eager-fp16-graphs': (MASK_RCNN_B1, (1, 2),
                                       dict(amp='fp16',
                                            eval_cuda_graphs=True)),
    'ssdlite-s-compiled-fp32': (SSDLITE_S, (1, 8),
                                dict(compile='reduce-overhead')),
    'ssdlite-s-compiled-fp32-frozen': (SSDLITE_S, (1, 8),
                                       dict(compile='reduce-overhead',
                                            freeze=True)),
    'ssdlite-s-eager-fp32': (SSDLITE_S, (1, 8, 32), dict()),
    'ssdlite-b1-eager-fp16': (SSDLITE_B1, (1, 8, 32), dict(amp='fp16')),
    'ssdlite-b1-compiled-fp16': (SSDLITE_B1, (1, 8, 32),
                                 dict(amp='fp16', compile='reduce-overhead')),
    # cuDNN's fp16 convolutions prefer NHWC: both models in channels-last
    'ssdlite-s-compiled-fp16-nhwc': (SSDLITE_S, (1, 8, 32),
                                     dict(amp='fp16',
                                          compile='reduce-overhead',
                                          channels_last=True)),
    'mask-rcnn-b1-eager-fp16-nhwc': (MASK_RCNN_B1, (1, 2),
                                     dict(amp='fp16', channels_last=True)),
}
EQUALITY_STEP = 'ssdlite-s-compiled-equals-eager'

#: (figure, step, batch size, threshold on LTM/plain latency)
TARGETS = [
    ('SSDLite-S 320, compiled reduce-overhead, fp16, batch 32',
     'ssdlite-s-compiled-fp16', 32, 0.95),
    ('SSDLite-S 320, compiled reduce-overhead, fp16, batch 1',
     'ssdlite-s-compiled-fp16', 1, 1.00),
    ('SSDLite-S 320, compiled reduce-overhead, fp16, batch 8',
     'ssdlite-s-compiled-fp16', 8, 1.00),
    # the issue names no precision for batches 1 and 8: both are judged
    ('SSDLite-S 320, compiled reduce-overhead, fp32, batch 1',
     'ssdlite-s-compiled-fp32', 1, 1.00),
    ('SSDLite-S 320, compiled reduce-overhead, fp32, batch 8',
     'ssdlite-s-compiled-fp32', 8, 1.00),
    ('SSDLite-S 320, eager, fp16, batch 32', 'ssdlite-s-eager-fp16', 32,
     1.10),
    ('Mask R-CNN B1 800x1333, eager, fp16, batch 2',
     'mask-rcnn-b1-eager-fp16', 2, 1.00),
]
#: variants of a step (its name plus the suffix: its options plus one),
#: judged against the same threshold: a compiled step with frozen weights
#: (inductor freezing, an inference setting of the compiler applied to
#: both models alike), an eager step with the LTM mask modules replayed
#: from CUDA graphs (the plain model has none; the rest of the LTM model
#: runs eagerly as the plain one does)
VARIANTS = {'-frozen': dict(freeze=True),
            '-graphs': dict(eval_cuda_graphs=True)}
#: compiled outputs must equal eager ones to this absolute tolerance
EQUALITY_ATOL = 1e-4


def step_options(name, device, iters, warmup, max_batch
                 ) -> BenchmarkOptions:
    """The comparison of a timing step."""
    (ltm, plain), batch_sizes, options = STEPS[name]
    sizes = [b for b in batch_sizes if max_batch is None or b <= max_batch]
    return BenchmarkOptions(ltm, plain, batch_sizes=tuple(sizes),
                            iters=iters, warmup=warmup, device=device,
                            **options)


def run_timing_step(options: BenchmarkOptions) -> tuple:
    """One comparison in this process: what it reported, an exit code as
    ``tools/benchmark.py`` would give (2: refused) and
    :func:`~ltm_mm.analysis.config_benchmark.latency_ratios`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), \
            contextlib.redirect_stderr(buffer):
        try:
            results = benchmark_configs(options)
        except CLIError as error:  # e.g. a GPU option on --device cpu
            print(f'error: {error}')
            return buffer.getvalue(), 2, {}
    return buffer.getvalue(), 0, latency_ratios(results)


@torch.no_grad()
def compiled_equals_eager(device: str) -> tuple:
    """Max difference of the compiled (inductor, default mode) and eager
    SSDLite LTM-MobileViT-S outputs, batch 2, float32, eval: a line saying
    it, and whether it is within :data:`EQUALITY_ATOL`."""
    from ltm_mm.analysis.flops import load_config_model
    built = load_config_model(SSDLITE_S[0])
    model = built.model.to(device).eval()
    inputs = torch.randn(2, 3, *built.input_size, device=device,
                         generator=torch.Generator(device).manual_seed(0))
    eager = model(inputs)
    with strict_compilation():  # never eager under a compiled label
        compiled = torch.compile(model)(inputs)
    flat_eager = torch.cat([t.flatten() for t in _tensors(eager)])
    flat_compiled = torch.cat([t.flatten() for t in _tensors(compiled)])
    difference = (flat_compiled - flat_eager).abs().max().item()
    equal = difference <= EQUALITY_ATOL
    return (f'max |compiled - eager| = {difference:.3g} over '
            f'{flat_eager.numel()} outputs (atol {EQUALITY_ATOL}: '
            f'{"ok" if equal else "FAILED"})'), equal


def _tensors(output):
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in _tensors(item)]


def targets_table(ratios_by_step: dict) -> str:
    """Each target's ratio of the medians (the issue's measure) and paired
    ratio, and the same for the step's variant (:data:`VARIANTS`) where it
    has one; a target is met when either ratio of the medians is within its
    threshold."""
    lines = ['| target | LTM/plain latency (paired) | variant: frozen '
             'weights (compiled), mask CUDA graphs (eager) | threshold | '
             'met |', '|---|---|---|---|---|']
    for figure, step, batch, threshold in TARGETS:
        measured = ratios_by_step.get(step, {}).get(batch)
        variant = variant_of(step)
        varied = ratios_by_step.get(variant, {}).get(batch)
        cells = [_ratio_cell(measured),
                 '-' if variant is None else _ratio_cell(varied)]
        ratios = [m[0] for m in (measured, varied) if m is not None]
        met = '-' if not ratios else \
            'yes' if min(ratios) <= threshold else '**no**'
        lines.append(f'| {figure} | {" | ".join(cells)} | '
                     f'<= {threshold:.2f} | {met} |')
    return '\n'.join(lines)


def variant_of(step: str):
    """The name of ``step``'s variant in :data:`STEPS`, or None."""
    names = [step + suffix for suffix in VARIANTS if step + suffix in STEPS]
    return names[0] if names else None


def _ratio_cell(measured) -> str:
    if measured is None:
        return 'not measured'
    ratio, paired = measured
    return f'{ratio:.3f} ({paired:.3f})'


def describe_machine(device: str) -> str:
    """The page's machine: device, CUDA version on a GPU, torch version."""
    machine = describe_device(torch.device(device))
    cuda = f', CUDA {torch.version.cuda}' if device.startswith('cuda') else ''
    return f'{machine}{cuda}, torch {torch.__version__}'


def write_page(out: Path, header: str, sections: list, ratios: dict):
    """``out``: ``header``, the steps' ``sections``, then
    :func:`targets_table` of ``ratios`` (step -> {batch: ratios})."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = '\n\n'.join([header, *sections, '### Targets',
                        targets_table(ratios)])
    out.write_text(text + '\n')

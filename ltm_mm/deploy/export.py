"""Export a :class:`~.network.DeployableNetwork` to ONNX and check it.

Two exporters: ``'dynamo'`` (``torch.onnx.export(..., dynamo=True)``, built
on ``torch.export``; the default) and ``'torchscript'`` (``dynamo=False``,
the tracer mmdeploy uses).  Either way:

* the input size is fixed by the export (``(B, 3, H, W)`` with ``H, W`` of
  the example), the batch is dynamic;
* class statistics, window tables and every weight are constants of the
  graph;
* before the file is written, ``onnx.checker`` checks the model and ONNX
  Runtime runs it on a random batch of two; the export fails, naming the
  output and its largest difference, when ONNX Runtime and PyTorch differ
  by more than ``atol + rtol * |PyTorch|``.

The file carries what evaluation needs in its metadata
(:attr:`~.runtime.OnnxRuntimeNetwork.metadata`): the input size, the output groups, the
network kind, the exporter and whatever the caller adds (the tools add the
config and checkpoint paths).
"""
import json
import os
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence

import torch

from .network import DeployableNetwork, output_names
from .runtime import INPUT_NAME, METADATA_PREFIX, OnnxRuntimeNetwork

EXPORTERS = ('dynamo', 'torchscript')
#: ScatterElements with ``reduction='add'`` (the prior token weights) needs
#: opset 16; 18 is the dynamo exporter's default.
DEFAULT_OPSET = 18


class ExportMismatch(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's beyond the tolerance."""


class ExportReport(NamedTuple):
    path: Path
    exporter: str
    max_abs_diff: float  # over every output, ONNX Runtime against PyTorch
    worst_output: str


def export_onnx(network: DeployableNetwork,
                input_hw: Sequence[int],
                out: str,
                exporter: str = 'dynamo',
                opset: int = DEFAULT_OPSET,
                metadata: Optional[Dict[str, str]] = None,
                atol: float = 1e-4,
                rtol: float = 1e-4) -> ExportReport:
    """Export ``network`` for ``(B, 3, *input_hw)`` inputs to ``out``.

    The export goes to ``out + '.tmp'`` first and replaces ``out`` only
    once it has passed the checker and the comparison, so a failed export
    leaves an existing ``out`` as it was.

    Raises:
        ValueError: unknown exporter or a bad input size.
        ExportMismatch: ONNX Runtime and PyTorch disagree.
    """
    import onnx
    if exporter not in EXPORTERS:
        raise ValueError(f'unknown exporter {exporter!r}; choose from '
                         f'{EXPORTERS}')
    height, width = (int(v) for v in input_hw)
    if height < 32 or width < 32:
        raise ValueError(f'input size must be at least 32x32, got '
                         f'{height}x{width}')
    network.eval()
    # a batch of two: traced with one, the exporters may take the batch
    # for the constant 1 (broadcasting treats size-1 dimensions apart)
    example = torch.randn(2, 3, height, width)
    groups = network.output_groups(example)
    names = output_names(groups)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(out.name + '.tmp')
    with torch.no_grad():
        if exporter == 'dynamo':
            batch = torch.export.Dim('batch', min=1, max=1024)
            program = torch.onnx.export(
                network, (example, ), dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=names,
                dynamic_shapes=({0: batch}, ))
            program.save(str(staged))
        else:
            batch_axis = {0: 'batch'}
            torch.onnx.export(
                network, (example, ), str(staged), dynamo=False,
                opset_version=opset, input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes={name: batch_axis
                              for name in [INPUT_NAME, *names]})
    model = onnx.load(str(staged))
    properties = {
        'input_hw': f'{height},{width}',
        'outputs': json.dumps([list(group) for group in groups]),
        'kind': network.kind,
        'exporter': exporter,
        **(metadata or {})
    }
    onnx.helper.set_model_props(model, {
        METADATA_PREFIX + key: str(value)
        for key, value in properties.items()
    })
    onnx.save(model, str(staged))
    try:
        onnx.checker.check_model(str(staged))
        diff, worst = verify_onnx(network, staged, atol=atol, rtol=rtol)
    except ExportMismatch as error:
        staged.unlink(missing_ok=True)
        raise ExportMismatch(f'{error}; {out} was not written') from None
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, out)
    return ExportReport(out, exporter, diff, worst)


def verify_onnx(network: DeployableNetwork, path, batch_size: int = 2,
                atol: float = 1e-4, rtol: float = 1e-4, seed: int = 0):
    """``(largest difference, its output's name)`` between ONNX Runtime and
    PyTorch on a random batch; raises :class:`ExportMismatch` beyond
    ``atol + rtol * |PyTorch|``."""
    runtime = OnnxRuntimeNetwork(path)
    height, width = runtime.input_hw
    inputs = torch.randn(batch_size, 3, height, width,
                         generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = network(inputs)
    got = runtime.run(inputs)
    worst, worst_name = 0.0, ''
    for name, want, have in zip(runtime.output_names, expected, got):
        if tuple(want.shape) != tuple(have.shape):
            raise ExportMismatch(f'{path}: output {name} has shape '
                                 f'{tuple(have.shape)} in ONNX Runtime and '
                                 f'{tuple(want.shape)} in PyTorch')
        error = (have - want).abs()
        diff = float(error.max()) if error.numel() else 0.0
        if diff >= worst:
            worst, worst_name = diff, name
        excess = error - (atol + rtol * want.abs())
        if excess.numel() and float(excess.max()) > 0:
            raise ExportMismatch(
                f'{path}: ONNX Runtime and PyTorch differ by up to {diff:.3g} '
                f'in output {name} (tolerance {atol:g} + {rtol:g} * '
                f'|PyTorch|)')
    return worst, worst_name

"""Exporting as the first thing a process does leaves it clean: afterwards
the exported model and a freshly built one run eagerly and give exactly
what a process that never exported gives.  (Shape caches shared by every
model in the process used to keep the export's fake tensors.)  The export
is the dynamo ONNX exporter's, on ``torch.export``, before any eager
forward; ONNX Runtime then matches PyTorch."""
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SCRIPT = """
import sys, warnings
import torch
sys.path.insert(0, {here!r})
warnings.simplefilter('ignore')
from exportable_models import network
torch.set_num_threads(2)
generator = torch.Generator().manual_seed(1)
inputs = torch.randn(2, 3, 128, 128, generator=generator)
net = network('ssdlite_ltm-mobilevit-xs_demo', statistics=True)
outputs = {{}}
if {export}:
    with torch.no_grad():
        torch.onnx.export(net, (inputs, ), dynamo=True,
                          input_names=['inputs']).save({onnx!r})
with torch.no_grad():
    outputs['exported_model'] = list(net(inputs))
    fresh = network('ssdlite_ltm-mobilevit-xs_demo', statistics=True)
    outputs['fresh_model'] = list(fresh(inputs))
torch.save(outputs, {out!r})
"""


def _run(tmp_path, export: bool) -> dict:
    out = tmp_path / f'outputs_{export}.pt'
    script = SCRIPT.format(here=str(HERE), export=export,
                           onnx=str(tmp_path / 'model.onnx'), out=str(out))
    subprocess.run([sys.executable, '-c', script], check=True,
                   cwd=HERE.parents[1])
    return torch.load(out)


def test_export_first_leaves_the_process_clean(tmp_path):
    exported = _run(tmp_path, export=True)
    never = _run(tmp_path, export=False)
    import onnxruntime
    session = onnxruntime.InferenceSession(str(tmp_path / 'model.onnx'))
    inputs = torch.randn(2, 3, 128, 128,
                         generator=torch.Generator().manual_seed(1))
    ort_outputs = session.run(None, {'inputs': inputs.numpy()})
    assert len(ort_outputs) == len(never['exported_model']) == 12
    for got, want in zip(ort_outputs, never['exported_model']):
        torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4,
                                   rtol=1e-4)
    for key in ('exported_model', 'fresh_model'):
        for got, want in zip(exported[key], never['exported_model']):
            assert torch.equal(got, want), key
    for got, want in zip(never['fresh_model'], never['exported_model']):
        assert torch.equal(got, want)

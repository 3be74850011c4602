"""Export to ONNX and ONNX Runtime against PyTorch: both exporters, LTM
backbones with and without class statistics, the baseline mergers, and
the errors."""
import warnings

import pytest
import torch
from torch import nn

from exportable_models import demo_model, network, strong_statistics
from ltm_mm.deploy import (DeployableNetwork, ExportMismatch,
                           OnnxRuntimeNetwork, export_onnx, verify_onnx)
from ltm_mm.models.layers import LearnableMergeMask
from ltm_mm.ops.mask_weights import hard_masked_softmax

XS = 'ssdlite_ltm-mobilevit-xs_demo'
B1 = 'ssdlite_ltm-efficientvit-b1_demo'


@pytest.fixture(autouse=True)
def quiet():
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield


def _check(net, size, path, exporter):
    report = export_onnx(net, (size, size), str(path), exporter=exporter)
    assert report.path == path and path.is_file()
    assert report.max_abs_diff < 1e-4
    # an independent comparison at another batch size (the batch is
    # dynamic in the exported graph)
    runtime = OnnxRuntimeNetwork(path)
    inputs = torch.randn(3, 3, size, size)
    with torch.no_grad():
        expected = net(inputs)
    got = runtime.run(inputs)
    assert len(got) == len(expected) == sum(g.count for g in runtime.groups)
    for want, have in zip(expected, got):
        assert have.shape == want.shape
        torch.testing.assert_close(have, want, atol=1e-4, rtol=1e-4)
    return runtime


@pytest.mark.parametrize('statistics', [False, True],
                         ids=['no-statistics', 'statistics'])
@pytest.mark.parametrize('size', [128, 160])
@pytest.mark.parametrize('config', [XS, B1])
def test_torchscript_export_equals_pytorch(config, size, statistics,
                                           tmp_path):
    runtime = _check(network(config, statistics), size,
                     tmp_path / 'model.onnx', 'torchscript')
    assert runtime.input_hw == (size, size)
    assert [g.name for g in runtime.groups] == ['cls_scores', 'bbox_preds']
    assert runtime.metadata['exporter'] == 'torchscript'
    # merges are gathers, not embedding_bag's per-bag Loop (slow in ONNX
    # Runtime)
    import onnx
    ops = {node.op_type for node in
           onnx.load(str(tmp_path / 'model.onnx')).graph.node}
    assert 'Loop' not in ops and 'Gather' in ops


# LTM-MobileViT-XS with the dynamo exporter: test_export_first.py (two
# minutes each on two busy cores, so the others are opt-in)
@pytest.mark.slow
def test_dynamo_export_equals_pytorch(tmp_path):
    runtime = _check(network(B1, statistics=True), 128,
                     tmp_path / 'model.onnx', 'dynamo')
    assert runtime.metadata['exporter'] == 'dynamo'


@pytest.mark.parametrize('exporter', [
    'torchscript', pytest.param('dynamo', marks=pytest.mark.slow)])
def test_pool_merger_exports(exporter, tmp_path):
    _check(network('ssdlite_pool-mobilevit-xs_demo'), 128,
           tmp_path / 'pool.onnx', exporter)


def test_segmentor_exports(tmp_path):
    runtime = _check(network('deeplabv3_ltm-mobilevit-xxs-d8_demo-seg',
                             statistics=True), 128,
                     tmp_path / 'seg.onnx', 'torchscript')
    assert runtime.kind == 'segmentor'
    assert [g.name for g in runtime.groups] == ['seg_logits']


def test_tome_refuses_to_export_and_says_why(tmp_path):
    with pytest.raises(ValueError, match='stable sort.*no stable Sort'):
        DeployableNetwork(demo_model('ssdlite_tome-mobilevit-xs_demo'))


class MergeWeights(nn.Module):
    """``tokens -> G``: one LTM layer's eval merge weights, as a graph
    output (the network's outputs depend on them only weakly at random
    initialisation)."""

    def __init__(self, mask, grid):
        super().__init__()
        self.mask, self.grid = mask, grid

    def forward(self, tokens):
        return self.mask(tokens, self.grid).weights


@pytest.mark.parametrize('exporter', ['torchscript', 'dynamo'])
def test_ib_step_exports(exporter, tmp_path):
    """The merge weights of a layer with statistics (the IB step: phi, u,
    the score MLP, the hard mask) equal PyTorch's in ONNX Runtime, and the
    statistics change them: they are in the graph."""
    import onnxruntime
    model = demo_model(XS)
    strong_statistics(model)
    mask = next(m for m in model.modules()
                if isinstance(m, LearnableMergeMask))
    wrapper = MergeWeights(mask, (12, 12)).eval()
    tokens = torch.randn(2, 144, mask.mlp_in.in_features)
    path = tmp_path / 'mask.onnx'
    with torch.no_grad():
        expected = wrapper(tokens)
        if exporter == 'dynamo':
            torch.onnx.export(wrapper, (tokens, ), dynamo=True,
                              input_names=['tokens']).save(str(path))
        else:
            torch.onnx.export(wrapper, (tokens, ), str(path), dynamo=False,
                              opset_version=18, input_names=['tokens'])
    session = onnxruntime.InferenceSession(str(path))
    got = torch.from_numpy(session.run(None, {'tokens': tokens.numpy()})[0])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    mask.statistics.set_valid(False)
    with torch.no_grad():
        without = wrapper(tokens)
    assert float((without - expected).abs().max()) > 0.05
    # the theta-only weights the hard mask leaves
    prior = mask.window_priors(mask.table((12, 12), (11, 11), 'cpu'),
                               torch.float32)
    torch.testing.assert_close(
        without[0], hard_masked_softmax(prior.logits, prior.keep_floor))


def test_wrong_input_size_is_named(tmp_path):
    path = tmp_path / 'model.onnx'
    export_onnx(network(XS), (128, 128), str(path), exporter='torchscript')
    runtime = OnnxRuntimeNetwork(path)
    with pytest.raises(ValueError, match=r'exported for \(B, 3, 128, 128\)'
                       r'.*--shape 160 128'):
        runtime.run(torch.randn(1, 3, 160, 128))


def test_a_mismatch_fails_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'model.onnx'
    net = network(XS)
    export_onnx(net, (128, 128), str(path), exporter='torchscript')
    before = path.read_bytes()
    # PyTorch's side changes after the export: the comparison must see it
    last_conv = [m for m in net.model.bbox_head.cls_convs[0].modules()
                 if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last_conv.bias.add_(1.0)
    with pytest.raises(ExportMismatch, match='cls_scores.0'):
        verify_onnx(net, path)
    import ltm_mm.deploy.export as export_module
    monkeypatch.setattr(export_module, 'verify_onnx',
                        lambda *a, **k: (_ for _ in ()).throw(
                            ExportMismatch('differ by up to 1')))
    with pytest.raises(ExportMismatch, match='was not written'):
        export_onnx(net, (128, 128), str(path), exporter='torchscript')
    assert path.read_bytes() == before
    assert not (tmp_path / 'model.onnx.tmp').exists()

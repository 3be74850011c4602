"""Mask R-CNN deployed: backbone and FPN in ONNX Runtime, the RPN and RoI
heads in PyTorch with the exported checkpoint's weights, predict what the
PyTorch model predicts."""
import warnings

import torch
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope

from exportable_models import ROOT
from ltm_mm.analysis.flops import build_model
from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.apis import load_config
from ltm_mm.deploy import DeployableNetwork, DeployedModel, export_onnx

CONFIG = ROOT / 'configs' / 'ltm_mask-rcnn_efficientvit-b1_fpn_1x_coco.py'
SIZE = 256


def test_mask_rcnn_predicts_as_pytorch(tmp_path):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = load_config(str(CONFIG))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = build_model(cfg)
        fill_synthetic_statistics(model)
        # a confident RPN and RoI head, so that boxes survive their score
        # thresholds with random weights
        torch.nn.init.constant_(model.roi_head.bbox_head.fc_cls.bias, 0.0)
        model.roi_head.bbox_head.fc_cls.bias.data[0] = 5.0
        checkpoint = tmp_path / 'mask_rcnn.pth'
        torch.save({'state_dict': model.state_dict()}, checkpoint)
        onnx_file = tmp_path / 'mask_rcnn.onnx'
        network = DeployableNetwork(model)
        assert network.kind == 'two_stage'
        export_onnx(network, (SIZE, SIZE), str(onnx_file),
                    exporter='torchscript',
                    metadata=dict(checkpoint=str(checkpoint)))
        init_default_scope('mmdet')
        deployed = DeployedModel(cfg.model, str(onnx_file)).eval()
    meta = dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                pad_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0),
                batch_input_shape=(SIZE, SIZE))
    inputs = torch.randn(2, 3, SIZE, SIZE,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model.predict(
            inputs, [DetDataSample(metainfo=meta) for _ in range(2)])
        got = deployed(inputs, [DetDataSample(metainfo=meta)
                                for _ in range(2)])
    assert len(got) == 2
    for have, expected in zip(got, want):
        have, expected = have.pred_instances, expected.pred_instances
        order = matching_detections(have, expected)
        assert (have.masks[order] == expected.masks).float().mean() > 0.999


def matching_detections(have, expected, score_tol=1e-4, box_tol=1e-2):
    """Index of ``have``'s detection matching each of ``expected``'s,
    asserting they are the same detections in score order up to ties: with
    random weights many scores agree to 1e-7, and the order of such ties
    may differ between ONNX Runtime and PyTorch kernels.  Each expected
    detection is matched to one unused detection of ``have`` with the same
    label, a score within ``score_tol`` and a box within ``box_tol``."""
    assert len(have) == len(expected) > 0
    torch.testing.assert_close(have.scores, expected.scores, atol=score_tol,
                               rtol=score_tol)  # sorted alike
    unused = torch.ones(len(have), dtype=torch.bool)
    order = []
    for score, box, label in zip(expected.scores, expected.bboxes,
                                 expected.labels):
        candidates = unused & (have.labels == label) & (
            (have.scores - score).abs() <= score_tol) & (
                (have.bboxes - box).abs().amax(1) <= box_tol)
        assert candidates.any(), f'no match for box {box.tolist()}'
        order.append(int(candidates.nonzero()[0, 0]))
        unused[order[-1]] = False
    return torch.tensor(order)

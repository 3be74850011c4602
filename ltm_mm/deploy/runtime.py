"""Run an exported network with ONNX Runtime, and evaluate it as an
OpenMMLab model.

:class:`OnnxRuntimeNetwork` runs the graph and gives its outputs back in
groups.  :class:`DeployedModel` is what ``tools/test.py CONFIG model.onnx``
tests: the config's own model supplies the data preprocessor and the
post-processing (``predict_by_feat`` of the detection head, the RPN and
RoI heads of a two-stage detector, the segmentor's resizing and
``postprocess_result``), ONNX Runtime the network, so the dataloader, the
post-processing and the metric are those of a checkpoint's test.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS

from ltm_mm.registry import MODELS
from .network import OutputGroup, network_kind

INPUT_NAME = 'inputs'
METADATA_PREFIX = 'ltm_mm.'


class OnnxRuntimeNetwork:
    """An exported network in an ONNX Runtime session (CPU by default).

    Args:
        path: the ``.onnx`` file written by :func:`~.export.export_onnx`.
        threads: intra-op threads (None: ONNX Runtime's default).
        providers: execution providers, best first.
    """

    def __init__(self, path, threads: Optional[int] = None,
                 providers: Sequence[str] = ('CPUExecutionProvider', )):
        import onnxruntime
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f'no ONNX file at {self.path}')
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(self.path), options, providers=list(providers))
        # the ltm_mm.* metadata of the export, prefix removed
        self.metadata = {
            key[len(METADATA_PREFIX):]: value for key, value in
            self.session.get_modelmeta().custom_metadata_map.items()
            if key.startswith(METADATA_PREFIX)
        }
        missing = [key for key in ('input_hw', 'outputs', 'kind')
                   if key not in self.metadata]
        if missing:
            raise ValueError(
                f'{self.path} has no {", ".join(missing)} metadata: export '
                f'it with tools/export_onnx.py')
        height, width = self.metadata['input_hw'].split(',')
        self.input_hw = (int(height), int(width))
        self.groups = [OutputGroup(name, count) for name, count in
                       json.loads(self.metadata['outputs'])]
        self.kind = self.metadata['kind']
        self.output_names = [o.name for o in self.session.get_outputs()]

    def check_inputs(self, inputs: torch.Tensor) -> None:
        height, width = self.input_hw
        if inputs.dim() != 4 or tuple(inputs.shape[1:]) != (3, height,
                                                            width):
            raise ValueError(
                f'{self.path.name} was exported for (B, 3, {height}, '
                f'{width}) inputs (the input size is fixed per export), got '
                f'{tuple(inputs.shape)}: resize the inputs to {height}x'
                f'{width} or export again with --shape '
                f'{inputs.shape[-2]} {inputs.shape[-1]}')

    def run(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Every output, in the graph's order, as CPU tensors."""
        self.check_inputs(inputs)
        array = inputs.detach().to('cpu', torch.float32).contiguous().numpy()
        return [torch.from_numpy(out) for out in self.session.run(
            None, {INPUT_NAME: array})]

    def __call__(self, inputs: torch.Tensor
                 ) -> Dict[str, List[torch.Tensor]]:
        """The outputs as ``{group name: list of tensors}``."""
        outputs = iter(self.run(inputs))
        return {group.name: [next(outputs) for _ in range(group.count)]
                for group in self.groups}


@MODELS.register_module()
class DeployedModel(BaseModel):
    """A detector or segmentor whose network runs in ONNX Runtime.

    Args:
        model (dict): the config's model; built for its data preprocessor
            and post-processing, never run through the exported part.
        onnx_file (str): the exported network.
        checkpoint (str, optional): weights of the parts that stay in
            PyTorch and have weights (a two-stage detector's RPN and RoI
            heads); defaults to the checkpoint recorded at export.
        threads (int, optional): ONNX Runtime's intra-op threads.
        data_preprocessor (dict, optional): the Runner passes the config's
            top-level one; it fills ``model``'s as in a checkpoint's test.
    """

    def __init__(self, model: dict, onnx_file: str,
                 checkpoint: Optional[str] = None,
                 threads: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
        model = dict(model)
        model.pop('init_cfg', None)  # nothing of it is used
        if data_preprocessor is not None:
            model.setdefault('data_preprocessor', data_preprocessor)
        torch_model = ROOT_MODELS.build(model)
        super().__init__(data_preprocessor=torch_model.data_preprocessor,
                         init_cfg=init_cfg)
        self.torch_model = torch_model.eval()
        self.kind = network_kind(torch_model)
        self.runtime = OnnxRuntimeNetwork(onnx_file, threads=threads)
        if self.runtime.kind != self.kind:
            exported_from = self.runtime.metadata.get('config', 'unknown')
            raise ValueError(
                f'{onnx_file} holds a {self.runtime.kind} network but the '
                f'config builds a {self.kind} model '
                f'({type(torch_model).__name__}): test it with the config '
                f'it was exported from ({exported_from})')
        if self.kind == 'segmentor' and \
                torch_model.test_cfg.get('mode') == 'slide':
            raise ValueError(
                'slide inference runs the network on crops inside the '
                'segmentor; an exported network is tested with whole-image '
                "inference (test_cfg.mode='whole') at its input size")
        if self.kind == 'two_stage':
            self._load_head_weights(checkpoint or
                                    self.runtime.metadata.get('checkpoint'))

    def _load_head_weights(self, checkpoint: Optional[str]) -> None:
        from mmengine.runner import load_checkpoint
        if not checkpoint or not Path(checkpoint).is_file():
            raise FileNotFoundError(
                f'the RPN and RoI heads of {self.runtime.path.name} run in '
                f'PyTorch and need the weights it was exported from; '
                f'checkpoint {checkpoint!r} not found: pass '
                f'model.checkpoint=PATH')
        load_checkpoint(self.torch_model, checkpoint, map_location='cpu')

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'predict'):
        if mode != 'predict':
            raise ValueError(f'an ONNX Runtime model only predicts; got '
                             f'mode={mode!r}')
        outputs = self.runtime(inputs)
        model = self.torch_model
        metas = [sample.metainfo for sample in data_samples]
        with torch.no_grad():
            if self.kind == 'single_stage':
                results = model.bbox_head.predict_by_feat(
                    outputs['cls_scores'], outputs['bbox_preds'],
                    batch_img_metas=metas, rescale=True)
                return model.add_pred_to_datasample(data_samples, results)
            if self.kind == 'two_stage':
                feats = tuple(outputs['feats'])
                proposals = model.rpn_head.predict(feats, data_samples,
                                                   rescale=False)
                results = model.roi_head.predict(feats, proposals,
                                                 data_samples, rescale=True)
                return model.add_pred_to_datasample(data_samples, results)
            seg_logits = model.decode_head.predict_by_feat(
                outputs['seg_logits'][0], metas)
            return model.postprocess_result(seg_logits, data_samples)


class OnnxRuntimeModule(torch.nn.Module):
    """``inputs -> tuple of outputs`` through ONNX Runtime, as a module, so
    that the latency tools time it as they time PyTorch models."""

    def __init__(self, runtime: OnnxRuntimeNetwork):
        super().__init__()
        self.runtime = runtime

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.runtime.run(inputs))


def onnxruntime_modules(models, input_hw, exporter: str = 'dynamo',
                        threads: Optional[int] = None,
                        folder: Optional[str] = None) -> list:
    """Each OpenMMLab model's network exported to ONNX (files in ``folder``,
    a new temporary one by default) and loaded in ONNX Runtime, as
    :class:`OnnxRuntimeModule` s.  Models wrapped in
    :class:`~ltm_mm.analysis.flops.TensorForward` are unwrapped."""
    import os
    import tempfile
    import warnings
    from .export import export_onnx
    from .network import DeployableNetwork
    folder = folder or tempfile.mkdtemp(prefix='ltm_mm_onnx_')
    modules = []
    for index, model in enumerate(models):
        path = os.path.join(folder, f'model_{index}.onnx')
        network = DeployableNetwork(getattr(model, 'model', model))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            export_onnx(network, input_hw, path, exporter=exporter)
        modules.append(OnnxRuntimeModule(OnnxRuntimeNetwork(path,
                                                            threads=threads)))
    return modules

"""Deployment: export a detector's or segmentor's network to ONNX and
evaluate it with ONNX Runtime, post-processing in PyTorch as mmdeploy's
partition does."""
from .export import ExportMismatch, export_onnx, verify_onnx
from .network import DeployableNetwork, OutputGroup
from .runtime import (DeployedModel, OnnxRuntimeModule, OnnxRuntimeNetwork,
                      onnxruntime_modules)

__all__ = [
    'DeployableNetwork', 'OutputGroup', 'export_onnx', 'verify_onnx',
    'ExportMismatch', 'OnnxRuntimeNetwork', 'OnnxRuntimeModule',
    'DeployedModel', 'onnxruntime_modules'
]

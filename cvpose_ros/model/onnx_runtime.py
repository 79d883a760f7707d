"""ONNX Runtime refiner backend: runs a model written by `cvpose-export` (or exported in memory at start-up).

The execution provider follows the `device` parameter as torch's device does:
    auto        TensorRT, then CUDA, when this onnxruntime build offers them and a session can use them; else CPU
    cpu         CPU only
    cuda[:N]    CUDA on GPU N (error when the build has no CUDA provider or the session falls back to CPU)
    tensorrt[:N] TensorRT on GPU N, CUDA and CPU behind it for nodes TensorRT does not take (same errors)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.model.backend import RefinerBackend
from cvpose_ros.model.checkpoint import CheckpointError
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.onnx_export import INPUT_NAMES, OUTPUT_NAMES, onnx_metadata_from_props

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def parse_device(device: str) -> tuple[str, int]:
    """('auto' | 'cpu' | 'cuda' | 'tensorrt', GPU index) from a device string; ValueError when unknown."""
    name = (device or "auto").strip().lower()
    kind, _, index = name.partition(":")
    if kind not in ("auto", "cpu", "cuda", "tensorrt") or (index and (kind in ("auto", "cpu") or not index.isdigit())):
        raise ValueError(f"unknown device {device!r} for runtime onnxruntime; expected 'auto', 'cpu', 'cuda[:N]' "
                         "or 'tensorrt[:N]'")
    return kind, int(index or 0)


def providers_for(device: str, available: Sequence[str]) -> list:
    """The provider list to ask ONNX Runtime for (see the module docstring); ValueError when an explicitly
    requested GPU provider is not part of this onnxruntime build."""
    kind, index = parse_device(device)
    gpu = {"device_id": index}
    if kind == "cpu":
        return [CPU]
    if kind == "auto":
        return [(p, gpu) for p in (TENSORRT, CUDA) if p in available] + [CPU]
    wanted = TENSORRT if kind == "tensorrt" else CUDA
    if wanted not in available:
        raise ValueError(f"device {device!r} needs ONNX Runtime's {wanted}, but this onnxruntime build offers "
                         f"only {list(available)} (install onnxruntime-gpu with CUDA/TensorRT, or use 'cpu' or "
                         "'auto')")
    return ([(TENSORRT, gpu)] if kind == "tensorrt" else []) + [(CUDA, gpu), CPU]


class OnnxRefinerBackend(RefinerBackend):
    """A cvpose-export ONNX model in an ONNX Runtime session.

    checkpoint: the file (an .onnx file, or the torch checkpoint that `model_bytes` was exported from);
    num_threads: intra-op threads on the CPU (None or 0 = ONNX Runtime's default, all cores).
    """

    runtime = "onnxruntime"

    def __init__(self, checkpoint: str | Path, device: str = "auto", num_threads: int | None = None,
                 model_bytes: bytes | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ValueError("runtime onnxruntime needs the onnxruntime package (pip install onnxruntime, or "
                             "'cvpose_ros[onnx]')") from exc
        path = Path(checkpoint)
        if model_bytes is None:
            if not path.is_file():
                raise CheckpointError(path, "file does not exist" if not path.exists() else "not a regular file")
            model_bytes = path.read_bytes()
        providers = providers_for(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = int(num_threads or 0)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(model_bytes, options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for foreign or broken files
            raise CheckpointError(path, f"ONNX Runtime cannot load it: {type(exc).__name__}: "
                                        f"{(str(exc).splitlines() or [''])[0][:200]}") from None
        used = self.session.get_providers()
        kind, index = parse_device(device)
        if kind in ("cuda", "tensorrt") and (TENSORRT if kind == "tensorrt" else CUDA) not in used:
            raise ValueError(f"device {device!r}: ONNX Runtime could not start its "
                             f"{TENSORRT if kind == 'tensorrt' else CUDA} (no usable GPU?) and would run on "
                             f"{used}; use 'cpu' or 'auto'")
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != list(INPUT_NAMES) or [o.name for o in self.session.get_outputs()] != list(OUTPUT_NAMES):
            raise CheckpointError(path, f"ONNX model has inputs {inputs}, expected {list(INPUT_NAMES)} "
                                        "(export it with cvpose-export)")
        self.metadata = onnx_metadata_from_props(self.session.get_modelmeta().custom_metadata_map, path)
        self.spec = FeatureSpec.from_dict(dict(self.metadata["features"]))
        self.layout = str(self.metadata["layout"])
        self.providers = used
        self.device = torch.device(f"cuda:{index}" if used[0] in (CUDA, TENSORRT) else "cpu")
        self.quantized = "cvpose.quantization" in self.session.get_modelmeta().custom_metadata_map
        self.where = f"onnxruntime {used[0].removesuffix('ExecutionProvider')}" + (" int8" if self.quantized else "")
        self._fuse = {flag: np.array(flag) for flag in (True, False)}

    def run(self, cam0, cam1, reprojection_error, valid, R10, t10, fuse):
        feeds = dict(zip(INPUT_NAMES, (cam0, cam1, reprojection_error, valid, R10, t10, self._fuse[bool(fuse)]),
                         strict=True))
        out0, out1 = self.session.run(OUTPUT_NAMES, feeds)
        return out0, out1

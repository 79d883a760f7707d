"""The interface every refiner runtime implements (torch eager, ONNX Runtime), and how a weights file picks one.

A backend holds one layout's CV-UGCN and maps prepared numpy arrays (validated and broadcast by
`cvpose_ros.refine.refiner.Refiner`) to refined poses. Keeping it this small lets `Refiner`, the node and the bench
treat both runtimes alike: validation, the disabled pass-through and diagnostics stay in `Refiner`, the evidence guard
in `frame_processor`. Both runtimes compute the same graph (`model.pipeline.refine_tensors`), so their outputs agree
to float32 rounding (the ONNX export checks it, <= 1e-4 m).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.model.checkpoint import CheckpointError, load_checkpoint, read_metadata
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import refine_tensors

RUNTIMES = ("auto", "torch", "onnxruntime")
ONNX_SUFFIX = ".onnx"


def is_onnx_file(path: str | Path) -> bool:
    """True for an ONNX model file name (the runtime 'auto' runs these with ONNX Runtime)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def weights_metadata(path: str | Path) -> dict:
    """Metadata of a torch checkpoint or of an ONNX model written by `cvpose-export` (CheckpointError if
    unreadable); both give at least 'layout', 'features' and 'model'."""
    if is_onnx_file(path):
        from cvpose_ros.model.onnx_export import read_onnx_metadata

        return read_onnx_metadata(path)
    return read_metadata(path)


def resolve_runtime(runtime: str, path: str | Path) -> str:
    """'torch' or 'onnxruntime' for `path`: 'auto' follows the file type (.onnx -> onnxruntime, else torch).
    ValueError for an unknown runtime or for torch asked to run an ONNX file."""
    name = (runtime or "auto").strip().lower()
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {RUNTIMES}")
    if name == "auto":
        return "onnxruntime" if is_onnx_file(path) else "torch"
    if name == "torch" and is_onnx_file(path):
        raise ValueError(f"runtime 'torch' cannot run the ONNX model {Path(path).name}; use runtime 'onnxruntime' "
                         "(or 'auto'), or give the torch checkpoint")
    return name


class RefinerBackend(ABC):
    """One layout's CV-UGCN behind one call. Not thread-safe: call `run` from one thread at a time."""

    #: runtime name used in parameters, diagnostics and the bench
    runtime: str = "backend"
    layout: str
    spec: FeatureSpec
    metadata: dict
    #: where it runs, for diagnostics: 'cpu', 'cuda:0', or an ONNX Runtime provider list
    where: str
    #: torch device of the outputs' computation ('cpu' or 'cuda:N'; the main provider's device for ONNX Runtime)
    device: torch.device

    @abstractmethod
    def run(self, cam0: np.ndarray, cam1: np.ndarray, reprojection_error: np.ndarray, valid: np.ndarray,
            R10: np.ndarray, t10: np.ndarray, fuse: bool) -> tuple[np.ndarray, np.ndarray]:
        """Refine P >= 1 people: poses (P, J, 3) float64 (NaN allowed at invalid joints), residual (P, 2, J)
        float64, validity (P, 2, J) bool, R10 (P, 3, 3), t10 (P, 3) float64; returns (P, J, 3) float64 per view."""


class TorchRefinerBackend(RefinerBackend):
    """Torch eager on a torch device (the training code's own model; also exports to ONNX)."""

    runtime = "torch"

    def __init__(self, checkpoint: str | Path, device: torch.device) -> None:
        loaded = load_checkpoint(checkpoint, device)
        self.model = loaded.model
        self.spec, self.metadata = loaded.spec, loaded.metadata
        self.layout = loaded.model.layout.name
        self.device = device
        self.where = str(device)

    def run(self, cam0, cam1, reprojection_error, valid, R10, t10, fuse):
        with torch.inference_mode():
            tensors = [torch.tensor(a, device=self.device)  # copies: inputs may be read-only views
                       for a in (cam0, cam1, reprojection_error, valid, R10, t10)]
            out0, out1 = refine_tensors(self.model, *tensors, spec=self.spec, fuse=fuse)
            return out0.cpu().numpy(), out1.cpu().numpy()


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available else CPU; 'cpu', 'cuda', 'cuda:N' are validated (ValueError if unusable)."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValueError(f"unsupported device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__}, "
                         f"built with CUDA {torch.version.cuda}); use 'cpu' or 'auto'")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return resolved


def open_backend(checkpoint: str | Path, runtime: str = "auto", device: str = "auto",
                 num_threads: int | None = None) -> RefinerBackend:
    """The backend that runs `checkpoint` (a torch .pt or an exported .onnx) with `runtime` on `device`.

    num_threads: ONNX Runtime's intra-op threads (torch's are process-wide: `Refiner` sets them). runtime
    'onnxruntime' with a torch checkpoint exports it to ONNX in memory first (and checks the export
    against torch), so the packaged weights run on ONNX Runtime without a separate file.
    """
    chosen = resolve_runtime(runtime, checkpoint)
    if chosen == "torch":
        return TorchRefinerBackend(checkpoint, resolve_device(device))
    from cvpose_ros.model.onnx_runtime import OnnxRefinerBackend

    if is_onnx_file(checkpoint):
        return OnnxRefinerBackend(checkpoint, device, num_threads)
    from cvpose_ros.model.onnx_export import export_onnx

    loaded = load_checkpoint(checkpoint, "cpu")
    try:
        model_bytes = export_onnx(loaded).model_bytes
    except (RuntimeError, ValueError) as exc:  # an exporter failure must name the file
        raise CheckpointError(checkpoint, f"cannot export to ONNX for runtime onnxruntime: {exc}") from exc
    return OnnxRefinerBackend(checkpoint, device, num_threads, model_bytes=model_bytes)

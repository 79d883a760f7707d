"""Refiner: coarse two-view triangulations -> CV-UGCN-refined poses, for a whole frame of people at once.

Weights are per keypoint layout (a checkpoint records its layout): `Refiner` wraps one model run by a runtime
backend (torch eager or ONNX Runtime, `cvpose_ros.model.backend`), `LayoutRefiners`
holds one per layout (packaged defaults, overridden by files) and picks the one matching each frame's layout.
Used by the ROS node and the evaluation tools. Without weights a refiner is disabled and passes the coarse poses
through, so the rest of the system works (triangulation only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike

from cvpose_ros.body.skeleton import LAYOUTS, get_layout
from cvpose_ros.geometry.camera import RigidTransform
from cvpose_ros.geometry.triangulation import PairTriangulation
from cvpose_ros.model.backend import RefinerBackend, open_backend, resolve_device, resolve_runtime, weights_metadata
from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, CheckpointError
from cvpose_ros.model.cvugcn import CVUGCN
from cvpose_ros.model.features import FeatureSpec


def _per_view(values: np.ndarray, people: int, joints: int, name: str) -> np.ndarray:
    """A per-joint array given as (P, J) or (P, 2, J) as a contiguous (P, 2, J) array."""
    if values.shape == (people, joints):
        values = values[:, None]
    elif values.shape != (people, 2, joints):
        raise ValueError(f"{name} must be (P, J) or (P, 2, J) matching the poses ({people}, {joints}, 3), got "
                         f"{values.shape}")
    return np.ascontiguousarray(np.broadcast_to(values, (people, 2, joints)))


def _per_person(values: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """One transform part shared by all people or one per person, as a contiguous (P, ...) float64 array."""
    values = np.asarray(values, dtype=np.float64)
    try:
        return np.ascontiguousarray(np.broadcast_to(values, shape))
    except ValueError:
        raise ValueError(f"{name} must be {shape[1:]} or {shape}, got {values.shape}") from None


class Refiner:
    """Refines every person of a frame in one batch; `enabled` is False (with `reason`) when no weights exist.

    checkpoint: a file path (a torch checkpoint, or an ONNX model written by `cvpose-export`), or None (or "") for
    the packaged default weights of `layout`. An explicitly given path that cannot be loaded raises
    CheckpointError; a missing packaged default only disables refinement. `layout` is the file's own layout when a
    file is given (a different explicit `layout` is an error).
    runtime: 'torch', 'onnxruntime' or 'auto' (= onnxruntime for .onnx files, torch otherwise); onnxruntime with a
    torch checkpoint exports it in memory at start-up (`cvpose_ros.model.backend.open_backend`).
    device: torch's 'auto' | 'cpu' | 'cuda[:N]'; ONNX Runtime also takes 'tensorrt[:N]' ('auto' prefers
    TensorRT, then CUDA, when present).
    fuse_views: average the two refined views in one frame (SPEC section 5 measured about 1 mm better); both
    outputs are then exactly related by cam1_from_cam0.
    num_threads: if set, torch's intra-op CPU threads for the whole process (torch.set_num_threads) and ONNX
    Runtime's for its session. On a shared or small CPU, 1 is much faster for per-frame batches (docs/model.md: 15x
    at batch 1 on a loaded 2-core machine).
    """

    def __init__(self, checkpoint: str | Path | None = None, device: str = "auto", fuse_views: bool = True,
                 num_threads: int | None = None, layout: str | None = None, runtime: str = "auto"):
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(num_threads)
        self.fuse_views = fuse_views
        self.backend: RefinerBackend | None = None
        self.metadata: dict = {}
        use_default = checkpoint is None or str(checkpoint).strip() == ""  # "" = the ROS parameter's default
        self.layout = get_layout(layout or "h36m17").name
        self.checkpoint_path = DEFAULT_CHECKPOINTS[self.layout] if use_default else Path(checkpoint)
        self.runtime = resolve_runtime(runtime, self.checkpoint_path)
        self.device = resolve_device(device) if self.runtime == "torch" else _onnx_device(device)
        if use_default and not self.checkpoint_path.exists():
            self.enabled = False
            self.reason = (f"no packaged {self.layout} weights ({self.checkpoint_path.name}); publishing "
                           f"triangulation only")
            return
        backend = open_backend(self.checkpoint_path, self.runtime, device, num_threads)
        if layout is not None and backend.layout != self.layout:
            raise CheckpointError(self.checkpoint_path, f"weights are for layout {backend.layout!r}, "
                                                        f"expected {self.layout!r}")
        self.backend, self.layout, self.metadata = backend, backend.layout, backend.metadata
        self.device = backend.device
        self.enabled = True
        self.reason = f"refining with {self.checkpoint_path.name} on {backend.where}"

    @property
    def model(self) -> CVUGCN | None:
        """The torch model (None without weights or on ONNX Runtime)."""
        return getattr(self.backend, "model", None)

    @property
    def spec(self) -> FeatureSpec | None:
        """The feature spec the weights were trained with (None without weights)."""
        return None if self.backend is None else self.backend.spec

    def refine(self, tri: PairTriangulation, cam1_from_cam0: RigidTransform) -> tuple[np.ndarray, np.ndarray]:
        """Refined poses (cam0 (P, J, 3), cam1 (P, J, 3)) float64; NaN joints stay NaN; coarse copies if disabled."""
        return self.refine_arrays(tri.cam0, tri.cam1, tri.reprojection_error, tri.valid, cam1_from_cam0.R,
                                  cam1_from_cam0.t)

    def refine_arrays(self, cam0: np.ndarray, cam1: np.ndarray, reprojection_error: np.ndarray, valid: np.ndarray,
                      R10: np.ndarray, t10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Array form of `refine`: poses (P, J, 3), residual and validity (P, J) or (P, 2, J), one transform
        R10 (3, 3), t10 (3) shared by all people or one per person (P, 3, 3), (P, 3). ValueError on bad shapes."""
        cam0 = np.asarray(cam0, dtype=np.float64)
        cam1 = np.asarray(cam1, dtype=np.float64)
        if cam0.ndim != 3 or cam0.shape != cam1.shape or cam0.shape[-1] != 3:
            raise ValueError(f"poses must both be (P, J, 3), got {cam0.shape} and {cam1.shape}")
        if not self.enabled or cam0.shape[0] == 0:
            return cam0.copy(), cam1.copy()
        people, joints = cam0.shape[:2]
        return self.backend.run(
            np.ascontiguousarray(cam0), np.ascontiguousarray(cam1),
            _per_view(np.asarray(reprojection_error, dtype=np.float64), people, joints, "reprojection_error"),
            _per_view(np.asarray(valid, dtype=bool), people, joints, "valid"),
            _per_person(R10, (people, 3, 3), "R10"), _per_person(t10, (people, 3), "t10"), self.fuse_views)


def _onnx_device(device: str) -> torch.device:
    """The torch-style device an ONNX Runtime device string names (validated; 'auto' -> CPU until a session
    says otherwise)."""
    from cvpose_ros.model.onnx_runtime import parse_device

    kind, index = parse_device(device)
    return torch.device(f"cuda:{index}") if kind in ("cuda", "tensorrt") else torch.device("cpu")


def checkpoint_layout(path: str | Path) -> str:
    """The layout a checkpoint or exported ONNX file records (raises CheckpointError for unreadable files)."""
    return str(weights_metadata(path)["layout"])


class LayoutRefiners:
    """One `Refiner` per keypoint layout: the packaged default of each layout, replaced by the given files (each
    file serves the layout it records; two files for one layout are an error). `for_layout` returns the refiner
    of a frame's layout, which may be disabled (no weights: triangulation only, with `reason`)."""

    def __init__(self, checkpoints: list[str | Path] | tuple = (), device: str = "auto", fuse_views: bool = True,
                 num_threads: int | None = None, layouts: tuple[str, ...] = tuple(LAYOUTS), runtime: str = "auto"):
        chosen: dict[str, Path] = {}
        for path in checkpoints:
            if not str(path).strip():
                continue
            resolve_runtime(runtime, path)  # a runtime that cannot run the file says so before it is read
            layout = checkpoint_layout(path)
            if layout in chosen:
                raise CheckpointError(path, f"a second checkpoint for layout {layout!r} (first: {chosen[layout]})")
            chosen[layout] = Path(path)
        self.refiners = {layout: Refiner(chosen.get(layout), device, fuse_views, num_threads, layout, runtime)
                         for layout in dict.fromkeys((*layouts, *chosen))}
        self.device = next(iter(self.refiners.values())).device

    @property
    def enabled(self) -> bool:
        """True when at least one layout has weights."""
        return any(r.enabled for r in self.refiners.values())

    @property
    def reason(self) -> str:
        """One line per layout: which weights serve it, or why it is triangulated only."""
        return "; ".join(f"{layout}: {r.reason}" for layout, r in self.refiners.items())

    def for_layout(self, layout: str) -> Refiner | None:
        """The refiner of `layout` (None for a layout this set does not know)."""
        return self.refiners.get(layout)

"""Batched refinement of triangulated samples and the protocol #1/#2 errors shared by training and evaluation.

Errors follow the Human3.6M protocols: root-relative in each camera's frame (MPJPE, protocol #1) and after a
similarity alignment (P-MPJPE, protocol #2), computed for both views and averaged. Joints that could not be
triangulated are left out of both the coarse and the refined error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.torch_version import TorchVersion

from cvpose_ros.losses import mpjpe, p_mpjpe
from cvpose_ros.model.checkpoint import LoadedCheckpoint, load_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import refine_tensors
from cvpose_ros.torch_geometry import apply_transform
from training.data.samples import TriangulatedSamples


@torch.no_grad()
def refine_all(model: torch.nn.Module | None, spec: FeatureSpec, data: TriangulatedSamples, batch_size: int = 1024,
               device: str | torch.device = "cpu", fuse: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Refined poses (N, J, 3) in camera 0 and camera 1 (float64, NaN at invalid joints); coarse when model is None."""
    coarse0 = torch.where(data.valid[..., None], data.coarse0.double(), float("nan"))
    coarse1 = torch.where(data.valid[..., None], data.coarse1.double(), float("nan"))
    if model is None:
        return coarse0.numpy(), coarse1.numpy()
    was_training = model.training
    model.eval()
    out0, out1 = [], []
    R10 = torch.from_numpy(data.samples.R10).double()
    t10 = torch.from_numpy(data.samples.t10).double()
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        r0, r1 = refine_tensors(model, coarse0[sl].to(device), coarse1[sl].to(device),
                                data.reproj_err[sl].double().to(device), data.valid[sl].to(device),
                                R10[sl].to(device), t10[sl].to(device), spec=spec, fuse=fuse)
        out0.append(r0.cpu())
        out1.append(r1.cpu())
    model.train(was_training)
    return torch.cat(out0).numpy(), torch.cat(out1).numpy()


def ground_truth_both_views(data: TriangulatedSamples) -> tuple[np.ndarray, np.ndarray]:
    """gt3d in camera 0 and camera 1 (float64); raises ValueError without ground truth."""
    s = data.samples
    if s.gt3d is None:
        raise ValueError("these samples have no 3D ground truth: cannot compute MPJPE")
    gt0 = torch.from_numpy(s.gt3d).double()
    gt1 = apply_transform(torch.from_numpy(s.R10).double(), torch.from_numpy(s.t10).double(), gt0)
    return gt0.numpy(), gt1.numpy()


def per_sample_errors(pred0: np.ndarray, pred1: np.ndarray, gt0: np.ndarray,
                      gt1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (N,) MPJPE and P-MPJPE in millimetres, each the mean of the two views (NaN if nothing valid)."""
    def view_mean(fn) -> np.ndarray:
        per_joint = np.stack([fn(pred0, gt0), fn(pred1, gt1)])  # (2, N, J)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (nothing valid) give NaN, on purpose
            return 1000.0 * np.nanmean(np.nanmean(per_joint, axis=2), axis=0)

    return (view_mean(lambda p, g: mpjpe(p, g, reduction="none")),
            view_mean(lambda p, g: p_mpjpe(p, g, reduction="none")))


def summarise(errors: np.ndarray) -> float:
    """Mean over samples with a finite error (NaN when none)."""
    finite = np.isfinite(errors)
    return float(errors[finite].mean()) if finite.any() else float("nan")


def compare(model: torch.nn.Module | None, spec: FeatureSpec, data: TriangulatedSamples,
            device: str | torch.device = "cpu", fuse: bool = True) -> dict[str, np.ndarray]:
    """Per-sample errors (mm) of triangulation and refinement: keys tri_mpjpe, tri_pmpjpe, ref_mpjpe, ref_pmpjpe."""
    gt0, gt1 = ground_truth_both_views(data)
    c0, c1 = refine_all(None, spec, data)
    tri = per_sample_errors(c0, c1, gt0, gt1)
    if model is None:
        ref = tri
    else:
        r0, r1 = refine_all(model, spec, data, device=device, fuse=fuse)
        ref = per_sample_errors(r0, r1, gt0, gt1)
    return {"tri_mpjpe": tri[0], "tri_pmpjpe": tri[1], "ref_mpjpe": ref[0], "ref_pmpjpe": ref[1]}


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """`load_checkpoint`, also accepting files whose metadata stored torch's version object instead of a str
    (written by an early checkpoint module; the allow-listed class is torch's own version string type)."""
    with torch.serialization.safe_globals([TorchVersion]):
        return load_checkpoint(path, device=device)

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

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.geometry.torch_geometry import apply_transform
from cvpose_ros.model.checkpoint import LoadedCheckpoint, load_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.losses import mpjpe, p_mpjpe
from cvpose_ros.model.pipeline import refine_tensors
from cvpose_ros.refine.guard import EvidenceGuard, guard_refinement
from training.data.samples import TriangulatedSamples, camera_from_arrays


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


def per_sample_errors(pred0: np.ndarray, pred1: np.ndarray, gt0: np.ndarray, gt1: np.ndarray,
                      root: tuple[int, ...] = (0,)) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (N,) MPJPE (about the layout's `root` joints) and P-MPJPE in millimetres, each the mean of the
    two views (NaN if nothing valid)."""
    def view_mean(fn) -> np.ndarray:
        per_joint = np.stack([fn(pred0, gt0), fn(pred1, gt1)])  # (2, N, J)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (nothing valid) give NaN, on purpose
            return 1000.0 * np.nanmean(np.nanmean(per_joint, axis=2), axis=0)

    return (view_mean(lambda p, g: mpjpe(p, g, root=root, reduction="none")),
            view_mean(lambda p, g: p_mpjpe(p, g, reduction="none")))


def summarise(errors: np.ndarray) -> float:
    """Mean over samples with a finite error (NaN when none)."""
    finite = np.isfinite(errors)
    return float(errors[finite].mean()) if finite.any() else float("nan")


def compare(model: torch.nn.Module | None, spec: FeatureSpec, data: TriangulatedSamples,
            device: str | torch.device = "cpu", fuse: bool = True, layout: str | None = None,
            guard: EvidenceGuard | None = None) -> dict[str, np.ndarray]:
    """Per-sample errors (mm) of triangulation and refinement: keys tri_mpjpe, tri_pmpjpe, ref_mpjpe, ref_pmpjpe.
    The root of the root-relative error is the model's layout's (or `layout`'s; default h36m17). With `guard`, the
    refined poses pass the node's do-no-harm guard first."""
    model_layout = getattr(getattr(model, "module", model), "layout", None)
    root = model_layout.root if model_layout is not None else get_layout(layout or "h36m17").root
    gt0, gt1 = ground_truth_both_views(data)
    c0, c1 = refine_all(None, spec, data)
    tri = per_sample_errors(c0, c1, gt0, gt1, root)
    if model is None:
        ref = tri
    else:
        r0, r1 = refine_all(model, spec, data, device=device, fuse=fuse)
        if guard is not None and guard.enabled:
            guard_layout = model_layout.name if model_layout is not None else (layout or "h36m17")
            r0, r1 = guard_samples(data, c0, r0, guard, guard_layout)
        ref = per_sample_errors(r0, r1, gt0, gt1, root)
    return {"tri_mpjpe": tri[0], "tri_pmpjpe": tri[1], "ref_mpjpe": ref[0], "ref_pmpjpe": ref[1]}


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """`load_checkpoint`, also accepting files whose metadata stored torch's version object instead of a str
    (written by an early checkpoint module; the allow-listed class is torch's own version string type)."""
    with torch.serialization.safe_globals([TorchVersion]):
        return load_checkpoint(path, device=device)


def _per_sample_projector(K: np.ndarray, dist: np.ndarray):
    """Projection of points (..., N, J, 3) with each sample's own camera (samples grouped by identical lenses)."""
    keys = np.concatenate([K.reshape(len(K), -1), dist.reshape(len(dist), -1)], axis=1)
    unique, group = np.unique(keys, axis=0, return_inverse=True)
    models = [camera_from_arrays(row[:9].reshape(3, 3), row[9:]) for row in unique]

    def project(points: np.ndarray) -> np.ndarray:
        out = np.full(points.shape[:-1] + (2,), np.nan)
        for g, model in enumerate(models):
            sel = group.ravel() == g
            out[..., sel, :, :] = model.project(points[..., sel, :, :])
        return out

    return project


def guard_samples(data: TriangulatedSamples, coarse0: np.ndarray, refined0: np.ndarray,
                  guard: EvidenceGuard, layout: str = "h36m17") -> tuple[np.ndarray, np.ndarray]:
    """`cvpose_ros.refine.guard.guard_refinement` over a sample set (each sample its own cameras, keypoints in
    `layout`): guarded refined poses in camera 0 and camera 1, as the node computes them."""
    s = data.samples
    R10, t10 = s.R10.astype(np.float64), s.t10.astype(np.float64)

    def to_cam1(points: np.ndarray) -> np.ndarray:
        return np.einsum("nij,...nkj->...nki", R10, points) + t10[:, None, :]

    guarded, _ = guard_refinement(coarse0, refined0, data.reproj_err.double().numpy(),
                                  _per_sample_projector(s.K[:, 0], s.dist[:, 0]),
                                  _per_sample_projector(s.K[:, 1], s.dist[:, 1]), to_cam1,
                                  s.kp2d[:, 0].astype(np.float64), s.kp2d[:, 1].astype(np.float64), guard, layout)
    return guarded, to_cam1(guarded)

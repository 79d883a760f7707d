"""Batched confidence-weighted DLT triangulation and the two-view coarse pose of the CV-UGCN method.

Everything is vectorised over people and joints (one batched SVD), float64, metres; NaN marks a missing joint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cvpose_ros.camera import CameraModel, RigidTransform, projection_matrix

# A homogeneous solution with |w| below this (relative to its unit norm) is a point at infinity -> NaN.
_MIN_HOMOGENEOUS_W = 1e-12


def triangulate_dlt(proj: ArrayLike, points: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Triangulate joints seen in V views by weighted linear DLT, solved for all joints at once by batched SVD.

    proj (..., V, 3, 4) projection matrices; points (..., V, J, 2) image points in the coordinates ``proj`` maps
    to; weights (..., V, J) per-observation weights (confidence). Leading dims broadcast against each other.
    Returns (..., J, 3). A joint with fewer than two views of positive weight and finite coordinates is NaN.

    Conditioning: each row is divided by the norm of its first three entries before weighting. That norm does not
    change when the reference frame moves (it only rotates those entries), so the solution is (up to the tiny
    bias of the SVD's unit-norm constraint) the same rigid-transformed in any frame, and pixel-scale projection
    matrices (K [R|t]) are brought to unit scale. Normalising whole rows instead would include the translation and
    favour the view whose camera sits at the reference origin.
    """
    proj = np.asarray(proj, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if proj.ndim < 3 or proj.shape[-2:] != (3, 4):
        raise ValueError(f"proj must have shape (..., V, 3, 4), got {proj.shape}")
    if points.ndim < 3 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., V, J, 2), got {points.shape}")
    if weights.shape[-2:] != points.shape[-3:-1]:
        raise ValueError(f"weights {weights.shape} must be (..., V, J) matching points {points.shape}")
    if proj.shape[-3] != points.shape[-3]:
        raise ValueError(f"proj has {proj.shape[-3]} views but points have {points.shape[-3]}")
    if not np.all(np.isfinite(proj)):
        raise ValueError("projection matrices must be finite")

    observed = np.all(np.isfinite(points), axis=-1) & np.isfinite(weights) & (weights > 0)  # (..., V, J)
    weights = np.where(observed, weights, 0.0)
    points = np.where(observed[..., None], points, 0.0)

    p = proj[..., :, None, :, :]  # (..., V, 1, 3, 4): one matrix per view, shared by its joints
    rows_x = points[..., 0:1] * p[..., 2, :] - p[..., 0, :]  # (..., V, J, 4)
    rows_y = points[..., 1:2] * p[..., 2, :] - p[..., 1, :]
    rows = np.stack([rows_x, rows_y], axis=-2)  # (..., V, J, 2, 4)
    norms = np.linalg.norm(rows[..., :3], axis=-1, keepdims=True)  # frame-independent scale of each row
    rows = rows * (weights[..., None, None] / np.where(norms > 0, norms, 1.0))
    # (..., V, J, 2, 4) -> (..., J, 2V, 4): all views' rows of one joint form one small system.
    rows = np.moveaxis(rows, -4, -3)
    system = rows.reshape(rows.shape[:-3] + (2 * rows.shape[-3], 4))
    _, _, vh = np.linalg.svd(system, full_matrices=False)
    homogeneous = vh[..., -1, :]  # right singular vector of the smallest singular value

    enough_views = observed.sum(axis=-2) >= 2  # (..., J)
    enough_views = np.broadcast_to(enough_views, homogeneous.shape[:-1])
    w = homogeneous[..., 3:4]
    finite = enough_views[..., None] & (np.abs(w) > _MIN_HOMOGENEOUS_W)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(finite, homogeneous[..., :3] / np.where(finite, w, 1.0), np.nan)


@dataclass
class PairTriangulation:
    """Coarse poses of P people from two views, in each camera's optical frame (metres)."""

    cam0: np.ndarray  # (P, J, 3) coarse pose in camera 0's frame; NaN for invalid joints
    cam1: np.ndarray  # (P, J, 3) coarse pose in camera 1's frame; NaN for invalid joints
    reprojection_error: np.ndarray  # (P, J) pixels, mean over the two views; NaN for invalid joints
    valid: np.ndarray  # (P, J) bool


def triangulate_pair(cam0: CameraModel, cam1: CameraModel, cam1_from_cam0: RigidTransform, kp0: ArrayLike,
                     conf0: ArrayLike, kp1: ArrayLike, conf1: ArrayLike,
                     min_confidence: float = 0.1) -> PairTriangulation:
    """Triangulate matched people seen by two calibrated cameras (SPEC section 1, step 1).

    kp0, kp1 (P, J, 2) raw (distorted) pixels; conf0, conf1 (P, J). A keypoint with NaN coordinates or confidence
    below ``min_confidence`` is missing. Keypoints are undistorted with each camera's lens model and triangulated
    twice by confidence-weighted DLT: in camera 0's frame (P0 = [I|0], P1 = [R10|t10]) and in camera 1's frame
    (P0 = [R01|t01], P1 = [I|0]). A joint is valid when both views see it and both estimates lie in front of both
    cameras. The reprojection error projects each frame's estimate through its own camera's lens model and
    averages the two pixel distances.
    """
    kp0, kp1, conf0, conf1 = (np.asarray(a, dtype=np.float64) for a in (kp0, kp1, conf0, conf1))
    if kp0.ndim < 2 or kp0.shape[-1] != 2:
        raise ValueError(f"kp0 must have shape (P, J, 2), got {kp0.shape}")
    if kp1.shape != kp0.shape:
        raise ValueError(f"kp0 {kp0.shape} and kp1 {kp1.shape} must have the same shape (P, J, 2)")
    if conf0.shape != kp0.shape[:-1] or conf1.shape != kp0.shape[:-1]:
        raise ValueError(f"conf0 {conf0.shape} and conf1 {conf1.shape} must have shape {kp0.shape[:-1]} (P, J)")

    weights = np.stack([conf0, conf1], axis=-2)  # (P, 2, J)
    with np.errstate(invalid="ignore"):
        weights = np.where(weights >= min_confidence, weights, 0.0)
    normalised = np.stack([cam0.undistort_points(kp0), cam1.undistort_points(kp1)], axis=-3)  # (P, 2, J, 2)

    cam0_from_cam1 = cam1_from_cam0.inverse()
    identity = projection_matrix(RigidTransform.identity())
    proj = np.stack([
        np.stack([identity, projection_matrix(cam1_from_cam0)]),  # in camera 0's frame
        np.stack([projection_matrix(cam0_from_cam1), identity]),  # in camera 1's frame
    ])  # (2 frames, 2 views, 3, 4)
    proj = proj.reshape((2,) + (1,) * (kp0.ndim - 2) + (2, 3, 4))  # broadcast over the people dims
    both = triangulate_dlt(proj, normalised, weights)  # (2 frames, P, J, 3)
    in_cam0, in_cam1 = both[0], both[1]

    # Each estimate must lie in front of both cameras (depth in the other camera via the rigid transform).
    depths = np.stack([in_cam0[..., 2], cam1_from_cam0.apply(in_cam0)[..., 2],
                       in_cam1[..., 2], cam0_from_cam1.apply(in_cam1)[..., 2]])
    with np.errstate(invalid="ignore"):
        valid = np.all(depths > 0, axis=0)  # NaN compares False
    in_cam0 = np.where(valid[..., None], in_cam0, np.nan)
    in_cam1 = np.where(valid[..., None], in_cam1, np.nan)

    error = 0.5 * (reprojection_error(cam0, in_cam0, kp0) + reprojection_error(cam1, in_cam1, kp1))
    return PairTriangulation(cam0=in_cam0, cam1=in_cam1, reprojection_error=error, valid=valid)


def reprojection_error(camera: CameraModel, points_cam: ArrayLike, pixels: ArrayLike) -> np.ndarray:
    """Pixel distance (...,) between ``camera.project(points_cam)`` (..., 3) and observed raw pixels (..., 2).

    NaN where the point is missing, behind the camera or the observation is missing.
    """
    projected = camera.project(points_cam)
    return np.linalg.norm(projected - np.asarray(pixels, dtype=np.float64), axis=-1)


def reproject(camera: CameraModel, points_ref: ArrayLike, cam_from_ref: RigidTransform | None = None) -> np.ndarray:
    """Project points (..., 3) given in a reference frame into ``camera`` (raw pixels (..., 2), NaN if behind).

    ``cam_from_ref`` maps the reference frame into the camera's optical frame (None: already in the camera frame).
    """
    points = np.asarray(points_ref, dtype=np.float64)
    if cam_from_ref is not None:
        points = cam_from_ref.apply(points)
    return camera.project(points)

"""N-view geometry on calibrated cameras (no rclpy, no torch): triangulate, reproject, align unsynchronised views.

Arrays carry a leading view axis: pixels (V, ..., J, 2) raw (distorted) pixels, confidence (V, ..., J), NaN =
missing, and a list of V `CalibratedCamera`s sharing one world frame (metres). `triangulate_views` is the public
N-view triangulation: confidence-weighted DLT over every view that sees a joint, optionally dropping, per joint,
a view whose reprojection residual is far above the others' (a detector's outlier in one camera; 4+ views), or
reweighting every observation by its residual (Cauchy, 3+ views).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvpose_ros.calibration.types import CalibratedCamera
from cvpose_ros.geometry.camera import projection_matrix
from cvpose_ros.geometry.triangulation import solve_normal_equations
from cvpose_ros.nanstats import nanmedian_last

# Per-view outlier rejection: a view is dropped for a joint when its residual against the other views' point exceeds
# `OUTLIER_MIN_PX`, `OUTLIER_MIN_FRACTION` x the person's size in that view and `OUTLIER_FACTOR` x the other views'
# median residual. The size-relative floor keeps a detector's steady offset (a view that marks the near surface of
# the body, tens of pixels on a close person) from reading as an outlier: with a fixed 20 px floor, 4 Panoptic studio
# cameras 2-3 m from seated people dropped a view on 65 % of the joints and lost 12 mm (53 -> 65 mm); with a quarter
# of the person's size they tie no rejection there (49 mm) and gain 0.3-2.3 mm on the corner rig and with
# `cpn_like` errors (bench/multiview_panoptic.py, docs/refiner_node.md). It needs `OUTLIER_MIN_VIEWS` views of the
# joint: with three, the two others always agree with their own point, so nothing tells an outlier from noise
# (measured on the real 4-camera recording: rejecting among three views made held-out reprojection worse).
OUTLIER_MIN_VIEWS = 4
OUTLIER_MIN_PX = 20.0
OUTLIER_MIN_FRACTION = 0.25
OUTLIER_FACTOR = 3.0
# Robust weighting (`robust=True`): iteratively reweighted DLT, each observation's confidence times the Cauchy weight
# 1 / (1 + (r / s)^2) of its residual r, with s = `ROBUST_SCALE` x the person's size in that view (the larger side
# of their keypoints' bounding box): a view far off on a joint fades out smoothly, from three views on, where the
# hard leave-one-out rejection cannot tell (see above).
ROBUST_SCALE = 0.1
ROBUST_ITERATIONS = 5


def _masked(pixels: np.ndarray, confidence: np.ndarray, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with NaN and confidence 0 wherever a joint is non-finite or below `min_confidence`."""
    conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
    pix = np.asarray(pixels, dtype=np.float64)
    ok = np.isfinite(pix).all(axis=-1) & (conf >= min_confidence) & (conf > 0)
    return np.where(ok[..., None], pix, np.nan), np.where(ok, conf, 0.0)


def _rays(cameras: Sequence[CalibratedCamera], pix: np.ndarray) -> np.ndarray:
    """Normalised image coordinates (V, ..., J, 2) of every view's pixels (undistorted once per frame)."""
    return np.stack([cam.model.undistort_points(p) for cam, p in zip(cameras, pix, strict=True)])


def _projections(cameras: Sequence[CalibratedCamera]) -> np.ndarray:
    """(V, 3, 4) [R | t] of every camera for normalised coordinates."""
    return np.stack([projection_matrix(cam.cam_from_world) for cam in cameras])


def _system(proj: np.ndarray, rays: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each view's and joint's unweighted 4x4 DLT normal matrix (V, ..., J, 4, 4), built once per frame from the
    rows `x P[2] - P[0]`, `y P[2] - P[1]`, each divided by the norm of its first three entries (as
    `triangulate_dlt` scales them, so the solution does not depend on the frame); and (V, ..., J) which
    observations are usable. Any weighting, leave-one-out or reweighting is then a weighted sum of these."""
    observed = np.isfinite(rays).all(axis=-1) & (conf > 0)
    xy = np.where(observed[..., None], rays, 0.0)
    p = proj.reshape(proj.shape[:1] + (1,) * (rays.ndim - 2) + proj.shape[1:])        # (V, 1.., 1, 3, 4)
    rows = np.stack([xy[..., 0:1] * p[..., 2, :] - p[..., 0, :], xy[..., 1:2] * p[..., 2, :] - p[..., 1, :]],
                    axis=-2)
    norms = np.linalg.norm(rows[..., :3], axis=-1, keepdims=True)
    rows = rows / np.where(norms > 0, norms, 1.0)
    return np.einsum("...ri,...rj->...ij", rows, rows), observed


def _solve(normal: np.ndarray, weights: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Weighted DLT from the views' normal matrices (V, ..., J, 4, 4) with weights (V, ..., J): (..., J, 3), the
    closed-form least squares of `triangulate_dlt` (same solution on the same observations). NaN with fewer than
    two weighted views or (nearly) parallel rays."""
    used = observed & (weights > 0)
    w = np.where(used, weights, 0.0)
    points, solvable = solve_normal_equations(np.einsum("v...,v...ij->...ij", w * w, normal))
    return np.where(((used.sum(axis=0) >= 2) & solvable)[..., None], points, np.nan)


def _plane_residual(proj: np.ndarray, rays: np.ndarray, points: np.ndarray, focal: np.ndarray) -> np.ndarray:
    """(V, ..., J) distance between each view's undistorted ray and the projection of `points` (..., J, 3) (or one
    point set per view, (V, ..., J, 3)), in pixels of the undistorted image (normalised x the focal lengths):
    the reprojection error up to the lens's local stretch, without a trip through the lens model. NaN where the
    ray or point is missing; inf where the point lies behind the camera."""
    p = proj.reshape(proj.shape[:1] + (1,) * (rays.ndim - 2) + proj.shape[1:])        # (V, 1.., 1, 3, 4)
    cam = np.einsum("...ij,...j->...i", p[..., :3], points) + p[..., 3]             # (V, ..., J, 3)
    f = focal.reshape(focal.shape[:1] + (1,) * (rays.ndim - 2) + focal.shape[1:])  # (V, 1.., 1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.linalg.norm((cam[..., :2] / cam[..., 2:3] - rays) * f, axis=-1)
        return np.where(cam[..., 2] > 0, error, np.where(np.isnan(error), np.nan, np.inf))


def _leave_one_out(normal: np.ndarray, conf: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(V, ..., J, 3): each joint triangulated without each view in turn: the weighted normal matrix of all views
    minus the left-out view's, solved in closed form (`solve_normal_equations`). No per-subset solve over the
    views, so the cost stays linear in views."""
    w = np.where(observed, conf, 0.0)
    weighted = (w * w)[..., None, None] * normal                                        # (V, ..., J, 4, 4)
    points, solvable = solve_normal_equations(weighted.sum(axis=0)[None] - weighted)
    enough = (observed.sum(axis=0)[None] - observed) >= 2
    return np.where((enough & solvable)[..., None], points, np.nan)


def _size_px(pix: np.ndarray) -> np.ndarray:
    """(V, ..., 1) the larger side of each person's keypoint bounding box in each view (pix (V, ..., J, 2)), at
    least 20 px; NaN keypoints ignored."""
    finite = np.isfinite(pix).all(axis=-1, keepdims=True)
    high = np.where(finite, pix, -np.inf).max(axis=-2)
    low = np.where(finite, pix, np.inf).min(axis=-2)
    with np.errstate(invalid="ignore"):
        extent = np.nan_to_num((high - low).max(axis=-1), nan=0.0, neginf=0.0, posinf=0.0)
    return np.maximum(extent, 20.0)[..., None]


def _reweighted(proj: np.ndarray, rays: np.ndarray, normal: np.ndarray, conf: np.ndarray, observed: np.ndarray,
                points: np.ndarray, scale: np.ndarray, focal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cauchy-reweighted DLT: returns the points and the final weights. The start is, per joint, whichever of the
    all-view DLT `points` and the leave-one-view-out solutions has the lowest robust cost over all views: from the
    least-squares point alone a far-off view among three pulls the point halfway, its residual equals a good
    view's, and reweighting cannot tell them apart."""
    starts = np.concatenate([points[None], _leave_one_out(normal, conf, observed)])     # (1 + V, ..., J, 3)
    residual = _plane_residual(proj, rays, starts[:, None], focal)                     # (1 + V, V, ..., J)
    cost = np.where(observed, np.log1p(np.nan_to_num(residual / scale, nan=0.0, posinf=1e6) ** 2), 0.0)
    cost = np.where(np.isfinite(starts).all(axis=-1), (conf * cost).sum(axis=1), np.inf)
    points = np.take_along_axis(starts, np.argmin(cost, axis=0)[None, ..., None], axis=0)[0]
    weights = conf
    for _ in range(ROBUST_ITERATIONS):
        residual = _plane_residual(proj, rays, points, focal)
        weights = conf / (1.0 + np.nan_to_num(residual / scale, nan=0.0, posinf=1e6) ** 2)
        solved = _solve(normal, weights, observed)
        points = np.where(np.isfinite(solved), solved, points)
    return points, weights


def triangulate_views(cameras: Sequence[CalibratedCamera], pixels: np.ndarray, confidence: np.ndarray,
                      min_confidence: float = 0.1, reject_outliers: bool = False, robust: bool = False) -> np.ndarray:
    """World points (..., J, 3) from V views by confidence-weighted DLT; NaN where fewer than two views see a joint.

    With `robust`, the DLT is reweighted by each observation's residual (`ROBUST_SCALE`, Cauchy; the leave-one-out
    rejection below then works on those weights).

    With `reject_outliers`, each joint seen by 4+ views is also triangulated without each view in turn (all
    leave-one-out solves in one batch, `_leave_one_out`); the view that disagrees most with the others' point is
    left out of that joint when its residual there exceeds max(`OUTLIER_MIN_PX`, `OUTLIER_MIN_FRACTION` x the
    person's size in that view, `OUTLIER_FACTOR` x the other views' median residual). One view per joint at most.
    Residuals are measured in the undistorted image (`_plane_residual`); the DLT normal matrices are built once and only
    joints that lost a view are solved again.
    """
    pix, conf = _masked(pixels, confidence, min_confidence)
    if len(cameras) != pix.shape[0]:
        raise ValueError(f"{len(cameras)} cameras but {pix.shape[0]} views of keypoints")
    rays = _rays(cameras, pix)
    proj = _projections(cameras)
    normal, observed = _system(proj, rays, conf)
    points = _solve(normal, conf, observed)
    focal = np.stack([np.diag(cam.model.K)[:2] for cam in cameras])
    if robust and len(cameras) >= 3:  # two views fit a point equally: nothing to reweight
        points, conf = _reweighted(proj, rays, normal, conf, observed, points, ROBUST_SCALE * _size_px(pix), focal)
    if not reject_outliers or len(cameras) < OUTLIER_MIN_VIEWS:
        return points
    views = len(cameras)
    view_axis = np.arange(views).reshape((-1,) + (1,) * (conf.ndim - 1))
    without = _leave_one_out(normal, conf, observed)                                  # (V left out, ..., J, 3)
    # error[k, v]: residual in view v of the point triangulated without view k
    error = _plane_residual(proj, rays, without[:, None], focal)                     # (V, V, ..., J)
    others_seen = observed[None] & (view_axis[None] != view_axis[:, None])            # (V, V, ..., J)
    # joints no other view sees: NaN level, never dropped
    level = nanmedian_last(np.moveaxis(np.where(others_seen, error, np.nan), 1, -1))  # (V, ..., J)
    floor = np.maximum(OUTLIER_MIN_PX, OUTLIER_MIN_FRACTION * _size_px(pix))                  # (V, ..., 1)
    threshold = np.maximum(floor, OUTLIER_FACTOR * np.where(np.isnan(level), np.inf, level))
    own = np.take_along_axis(error, view_axis[:, None], axis=1)[:, 0]                 # (V, ..., J) error[k, k]
    excess = np.where(observed & (observed.sum(axis=0) >= OUTLIER_MIN_VIEWS), own - threshold, -np.inf)
    worst = np.argmax(excess, axis=0)
    drop = np.take_along_axis(excess, worst[None], axis=0)[0] > 0
    if not drop.any():
        return points
    kept = np.where(drop[None] & (view_axis == worst[None]), 0.0, conf)
    points = points.copy()
    points[drop] = _solve(normal[:, drop], kept[:, drop], observed[:, drop])
    return points


def project_views(cameras: Sequence[CalibratedCamera], points_world: np.ndarray) -> np.ndarray:
    """World points (..., 3) -> pixels in every camera (V, ..., 2)."""
    return np.stack([cam.project(points_world) for cam in cameras])


def residuals(cameras: Sequence[CalibratedCamera], points_world: np.ndarray, pixels: np.ndarray,
              confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """Pixel distance (V, ..., J) between detections and the projection of `points_world`; NaN if unusable."""
    pix, _ = _masked(pixels, confidence, min_confidence)
    return np.linalg.norm(pix - project_views(cameras, points_world), axis=-1)


def align(arrays: Sequence[np.ndarray], lags: Sequence[int]) -> list[np.ndarray]:
    """Per-view arrays (T_v, ...) cut to their common frames: aligned frame k of view v is its frame k + s + lags[v]
    with s = max(0, -min(lags)), so a view with lag L shows at its frame t + L what view 0 shows at frame t."""
    lags = [int(x) for x in lags]
    start = max(0, -min(lags))
    length = min(len(a) - lag for a, lag in zip(arrays, lags, strict=True)) - start
    if length < 1:
        raise ValueError(f"lags {lags} leave no common frames")
    return [a[start + lag: start + lag + length] for a, lag in zip(arrays, lags, strict=True)]


def multiview_residual(cameras: Sequence[CalibratedCamera], pixels: Sequence[np.ndarray],
                       confidence: Sequence[np.ndarray], lags: Sequence[int], min_confidence: float = 0.5) -> float:
    """Median reprojection residual (px) of the all-view triangulation over every confident joint, at `lags`."""
    pix = np.stack(align(pixels, lags))
    conf = np.stack(align(confidence, lags))
    points = triangulate_views(cameras, pix, conf, min_confidence)
    errors = residuals(cameras, points, pix, conf, min_confidence)
    return float(np.nanmedian(errors)) if np.isfinite(errors).any() else float("inf")


def estimate_lags(cameras: Sequence[CalibratedCamera], pixels: Sequence[np.ndarray], confidence: Sequence[np.ndarray],
                  max_lag: int = 6, min_confidence: float = 0.5, rounds: int = 4) -> tuple[list[int], dict]:
    """Frame lag of every view against view 0 minimising `multiview_residual` (coordinate descent over the views,
    each searched over -max_lag..max_lag). Returns the lags and each view's residual curve at the final lags."""
    lags = [0] * len(cameras)
    for _ in range(rounds):
        changed = False
        for v in range(1, len(cameras)):
            curve = _lag_curve(cameras, pixels, confidence, lags, v, max_lag, min_confidence)
            best = min(curve, key=curve.get)
            changed |= best != lags[v]
            lags[v] = best
        if not changed:
            break
    curves = {cameras[v].name: _lag_curve(cameras, pixels, confidence, lags, v, max_lag, min_confidence)
              for v in range(1, len(cameras))}
    return lags, curves


def _lag_curve(cameras: Sequence[CalibratedCamera], pixels: Sequence[np.ndarray], confidence: Sequence[np.ndarray],
               lags: list[int], view: int, max_lag: int, min_confidence: float) -> dict[int, float]:
    curve = {}
    for lag in range(-max_lag, max_lag + 1):
        trial = list(lags)
        trial[view] = lag
        curve[lag] = multiview_residual(cameras, pixels, confidence, trial, min_confidence)
    return curve

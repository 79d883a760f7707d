"""Multi-view evaluation on real video without ground truth (no rclpy, no torch); geometry in
`cvpose_ros.geometry.multiview`.

All functions take per-view arrays stacked on a leading view axis: pixels (V, T, J, 2) raw (distorted) pixels,
confidence (V, T, J), NaN = missing, and a list of V `CalibratedCamera`s sharing one world frame (metres). They
triangulate from any subset of views, estimate frame offsets between unsynchronised cameras, find single-view
left/right swaps by the consensus of the other views and summarise the detector's error against that consensus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cvpose_ros.body.skeleton import COCO17
from cvpose_ros.calibration import CalibratedCamera
from cvpose_ros.geometry.multiview import (  # noqa: F401  (re-exported: the evaluation tools import them from here)
    _masked,
    align,
    estimate_lags,
    multiview_residual,
    project_views,
    residuals,
    triangulate_views,
)

# Left/right groups (coco17) a detector may exchange as a whole: the body, both arms, both legs.
SWAP_GROUPS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "body": (COCO17.left, COCO17.right),
    "arms": ((5, 7, 9), (6, 8, 10)),
    "legs": ((11, 13, 15), (12, 14, 16)),
}




@dataclass
class SwapReport:
    """Single-view left/right swaps found against the consensus of the other views."""

    swapped: np.ndarray    # (V, T) bool
    kind: np.ndarray       # (V, T) str: '' or the SWAP_GROUPS name whose exchange explains the view
    gain_px: np.ndarray    # (V, T) mean improvement over all joints when that exchange is undone (0 if none)
    corrected: np.ndarray  # (V, T, J, 2) the detections with every found swap undone
    consensus: np.ndarray  # (V, T, J, 3) world points triangulated from the other (corrected) views


def _permutation(name: str, num_joints: int) -> np.ndarray:
    left, right = SWAP_GROUPS[name]
    order = np.arange(num_joints)
    order[list(left)], order[list(right)] = right, left
    return order


def _group_errors(observed: np.ndarray, conf: np.ndarray, predicted: np.ndarray, joints: np.ndarray,
                  order: np.ndarray, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean distance (T,) over `joints` between the detections taken in `order` and the prediction, and the count."""
    dist = np.linalg.norm(observed[:, order] - predicted, axis=-1)[:, joints]
    ok = np.isfinite(dist) & (conf[:, order][:, joints] >= min_confidence)
    count = ok.sum(axis=1)
    return np.where(ok, dist, 0.0).sum(axis=1) / np.maximum(count, 1), count


def _swap_pass(cameras: Sequence[CalibratedCamera], pixels: np.ndarray, confidence: np.ndarray,
               min_confidence: float, ratio: float, min_gain_px: float) -> tuple[np.ndarray, ...]:
    """One look at every view against the others: (hit (V, T), kind, all-joint gain, consensus)."""
    views, frames, num_joints = pixels.shape[:3]
    hit_any = np.zeros((views, frames), dtype=bool)
    kind = np.full((views, frames), "", dtype=object)
    gain = np.zeros((views, frames))
    consensus = np.full(pixels.shape[:3] + (3,), np.nan)
    identity = np.arange(num_joints)
    for v in range(views):
        others = [o for o in range(views) if o != v]
        consensus[v] = triangulate_views([cameras[o] for o in others], pixels[others], confidence[others],
                                         min_confidence)
        predicted = cameras[v].project(consensus[v])
        base, _ = _group_errors(pixels[v], confidence[v], predicted, identity, identity, min_confidence)
        for name, (left, right) in SWAP_GROUPS.items():
            joints, order = np.array(left + right), _permutation(name, num_joints)
            as_detected, n0 = _group_errors(pixels[v], confidence[v], predicted, joints, identity, min_confidence)
            exchanged, n1 = _group_errors(pixels[v], confidence[v], predicted, joints, order, min_confidence)
            hit = ((n0 >= 2) & (n1 >= 2) & (exchanged < ratio * as_detected)
                   & (as_detected - exchanged >= min_gain_px))
            total, _ = _group_errors(pixels[v], confidence[v], predicted, identity, order, min_confidence)
            better = hit & (base - total > gain[v])
            gain[v] = np.where(better, base - total, gain[v])
            kind[v] = np.where(better, name, kind[v])
            hit_any[v] |= hit
    return hit_any & (gain > 0), kind, gain, consensus


def detect_swaps(cameras: Sequence[CalibratedCamera], pixels: np.ndarray, confidence: np.ndarray,
                 min_confidence: float = 0.5, ratio: float = 0.5, min_gain_px: float = 10.0) -> SwapReport:
    """Find view-frames whose keypoints fit the other views' triangulation clearly better with a left/right group
    exchanged: over the group's joints the exchanged error is below `ratio` times the detected one and smaller by
    at least `min_gain_px`; `kind` is the qualifying group whose exchange fits all joints best (a whole-body swap
    also improves the arms and legs alone). A swapped view spoils the consensus of the others, so per frame only
    the most certain swap (largest gain) is accepted and undone, and the search repeats on the corrected
    detections. pixels (V, T, 17, 2) coco17, confidence (V, T, 17)."""
    views, frames, num_joints = pixels.shape[:3]
    work, conf = np.array(pixels, dtype=np.float64), np.array(confidence, dtype=np.float64)
    swapped = np.zeros((views, frames), dtype=bool)
    kind = np.full((views, frames), "", dtype=object)
    gain = np.zeros((views, frames))
    for _ in range(views):
        hit, found, found_gain, consensus = _swap_pass(cameras, work, conf, min_confidence, ratio, min_gain_px)
        hit &= ~swapped
        if not hit.any():
            break
        pick = np.where(hit, found_gain, -np.inf).argmax(axis=0)
        for t in np.flatnonzero(hit.any(axis=0)):
            v = pick[t]
            order = _permutation(found[v, t], num_joints)
            work[v, t], conf[v, t] = work[v, t, order], conf[v, t, order]
            swapped[v, t], kind[v, t], gain[v, t] = True, found[v, t], found_gain[v, t]
    else:
        consensus = _swap_pass(cameras, work, conf, min_confidence, ratio, min_gain_px)[3]
    return SwapReport(swapped, kind.astype(str), gain, work, consensus)


def _stats(res: np.ndarray, usable: np.ndarray) -> dict:
    """Offset (mean vector), spread (RMS about it), jitter (RMS frame-to-frame change / sqrt 2) of residuals (T, 2)."""
    r = res[usable]
    if len(r) < 2:
        return {"frames": int(len(r))}
    offset = r.mean(axis=0)
    step = np.diff(res, axis=0)[usable[1:] & usable[:-1]]
    return {"frames": int(len(r)), "offset_px": [round(float(x), 2) for x in offset],
            "offset_norm_px": float(np.linalg.norm(offset)),
            "spread_px": float(np.sqrt(((r - offset) ** 2).sum(axis=1).mean())),
            "spread_xy_px": [round(float(x), 2) for x in r.std(axis=0)],
            "jitter_px": float(np.sqrt((step ** 2).sum(axis=1).mean() / 2)) if len(step) else None,
            "median_error_px": float(np.median(np.linalg.norm(r, axis=1)))}


def detector_error_stats(cameras: Sequence[CalibratedCamera], pixels: np.ndarray, confidence: np.ndarray,
                         points_world: np.ndarray, swapped: np.ndarray, min_confidence: float = 0.5) -> dict:
    """Per camera and coco17 joint: the detection minus the projection of `points_world` ((T, J, 3), or (V, T, J, 3)
    per view) over confident, unswapped view-frames; plus per camera the shares of swapped frames and missing joints
    and the median person height in pixels (to compare with noise models given in pixels)."""
    pix, _ = _masked(pixels, confidence, min_confidence)
    report = {}
    for v, cam in enumerate(cameras):
        pts = points_world[v] if points_world.ndim == 4 else points_world
        res = pix[v] - cam.project(pts)
        usable = np.isfinite(res).all(axis=-1) & ~swapped[v][:, None]
        joints = {name: _stats(res[:, j], usable[:, j]) for j, name in enumerate(COCO17.joint_names)}
        good = [s for s in joints.values() if "offset_px" in s]
        seen = np.isfinite(pix[v, ..., 1])
        tall = seen.sum(axis=-1) >= 2
        ys = np.where(seen, pix[v, ..., 1], np.nan)[tall]
        height = (np.nanmax(ys, axis=-1) - np.nanmin(ys, axis=-1)) if tall.any() else None
        report[cam.name] = {
            "swap_share": float(swapped[v].mean()),
            "missing_share": float(1.0 - np.isfinite(pix[v]).all(axis=-1).mean()),
            "person_height_px": float(np.median(height)) if height is not None else None,
            "median_error_px": float(np.median(np.linalg.norm(res[usable], axis=-1))) if usable.any() else None,
            "mean_offset_norm_px": float(np.mean([s["offset_norm_px"] for s in good])) if good else None,
            "mean_spread_px": float(np.mean([s["spread_px"] for s in good])) if good else None,
            "joints": joints,
        }
    return report

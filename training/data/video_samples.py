"""Two-view training samples from calibrated multi-camera detections (no 3D): every chosen camera pair and frame.

Real recordings of >= 2 calibrated cameras (e.g. the real-video evaluation's MediaPipe detections) become
`TwoViewSamples` with gt3d None, so fine-tuning can use them with the weak losses. Each sample remembers its camera
pair and frame (`VideoSamples.pair`, `.frame`), so a split by frames or by pairs can keep evaluation data out.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvpose_ros.calibration import CalibratedCamera, read_qualisys
from training.data.samples import TwoViewSamples


@dataclass
class VideoSamples:
    """Samples plus, per sample, the camera indices of its pair (N, 2) and its frame (N,)."""

    samples: TwoViewSamples
    pair: np.ndarray
    frame: np.ndarray


def all_pairs(count: int) -> list[tuple[int, int]]:
    """Every camera pair (a, b) with a < b."""
    return list(itertools.combinations(range(count), 2))


def video_samples(cameras: Sequence[CalibratedCamera], pixels: np.ndarray, confidence: np.ndarray,
                  pairs: Sequence[tuple[int, int]] | None = None, frames: Sequence[int] | np.ndarray | None = None,
                  min_confidence: float = 0.1, min_valid_joints: int = 6) -> VideoSamples:
    """One sample per (pair, frame) where both views have >= `min_valid_joints` joints above `min_confidence`.

    pixels (V, T, J, 2) raw pixels and confidence (V, T, J) of one person per frame, already time-aligned (see
    `training.multiview.align`); `pairs` default to every pair, `frames` to every frame. K, distortion and the
    relative pose cam1_from_cam0 come from the calibration.
    """
    pixels, confidence = np.asarray(pixels, np.float64), np.asarray(confidence, np.float64)
    if pixels.shape[0] != len(cameras) or confidence.shape != pixels.shape[:3]:
        raise ValueError(f"{len(cameras)} cameras, pixels {pixels.shape}, confidence {confidence.shape}")
    pairs = all_pairs(len(cameras)) if pairs is None else [tuple(p) for p in pairs]
    frames = np.arange(pixels.shape[1]) if frames is None else np.asarray(frames, dtype=np.int64)
    conf = np.where(np.isfinite(pixels).all(-1), np.nan_to_num(confidence), 0.0)
    usable = (conf >= min_confidence).sum(-1) >= min_valid_joints  # (V, T)
    kp, cf, K, dist, R, t, pair_ids, frame_ids = [], [], [], [], [], [], [], []
    for a, b in pairs:
        keep = frames[usable[a, frames] & usable[b, frames]]
        if not len(keep):
            continue
        c0, c1 = cameras[a], cameras[b]
        rel = c1.cam_from_world.compose(c0.cam_from_world.inverse())
        n = len(keep)
        kp.append(np.stack([pixels[a, keep], pixels[b, keep]], axis=1))
        cf.append(np.stack([conf[a, keep], conf[b, keep]], axis=1))
        K.append(np.broadcast_to(np.stack([c0.model.K, c1.model.K]), (n, 2, 3, 3)))
        dist.append(np.broadcast_to(np.stack([c0.model.rational_coefficients(), c1.model.rational_coefficients()]),
                                    (n, 2, 8)))
        R.append(np.broadcast_to(rel.R, (n, 3, 3)))
        t.append(np.broadcast_to(rel.t, (n, 3)))
        pair_ids.append(np.tile([a, b], (n, 1)))
        frame_ids.append(keep)
    if not kp:
        raise ValueError("no frame where both views of a chosen pair see enough joints")
    samples = TwoViewSamples(kp2d=np.concatenate(kp), conf=np.concatenate(cf), K=np.concatenate(K),
                             dist=np.concatenate(dist), R10=np.concatenate(R), t10=np.concatenate(t))
    return VideoSamples(samples, np.concatenate(pair_ids), np.concatenate(frame_ids))


def load_aligned_detections(detections: str | Path, calibration: str | Path, max_lag: int = 6
                            ) -> tuple[list[CalibratedCamera], np.ndarray, np.ndarray, list[int]]:
    """Cameras (file order), time-aligned pixels (V, T, J, 2), confidence (V, T, J) and the estimated lags from a
    detections cache (keys keypoints_<v>, confidence_<v>, as `cvpose-eval --videos` writes) and a Qualisys file."""
    from training.multiview import align, estimate_lags

    cameras = read_qualisys(calibration)
    with np.load(detections) as data:
        count = sum(1 for k in data.files if k.startswith("keypoints_"))
        pixels = [data[f"keypoints_{v}"] for v in range(count)]
        confidence = [data[f"confidence_{v}"] for v in range(count)]
    if count != len(cameras):
        raise ValueError(f"{count} views of detections but {len(cameras)} calibrated cameras")
    lags, _ = estimate_lags(cameras, pixels, confidence, max_lag)
    return cameras, np.stack(align(pixels, lags)), np.stack(align(confidence, lags)), [int(x) for x in lags]


def consistent_samples(samples: TwoViewSamples, max_median_px: float = 10.0,
                       min_confidence: float = 0.1) -> tuple[TwoViewSamples, np.ndarray]:
    """Keep the samples whose two views agree: median reprojection error of the pair's own triangulation at most
    `max_median_px` (needs only the two cameras, so it also serves robot bags). Views that disagree (left/right
    swaps, wrong person) give weak-loss targets that teach the network to follow the error. Returns the kept
    samples and the boolean mask."""
    from training.data.samples import triangulate_samples

    tri = triangulate_samples(samples, min_confidence)
    error = np.where(tri.valid.numpy(), tri.reproj_err.numpy(), np.nan)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(tri.valid.numpy().any(-1, keepdims=True), error, np.inf), axis=-1)
    keep = median <= max_median_px
    return samples.subset(keep), keep

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

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.calibration import CalibratedCamera, read_qualisys
from cvpose_ros.pipeline.cross_view import MatchConfig, match_views
from training.data.samples import TwoViewSamples, concat_samples


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
                  min_confidence: float = 0.1, min_valid_joints: int = 6, extra_views: bool = False,
                  repair: bool = False, layout: str = "coco17") -> VideoSamples:
    """One sample per (pair, frame) where both views have >= `min_valid_joints` joints above `min_confidence`.

    pixels (V, T, J, 2) raw pixels and confidence (V, T, J) of one person per frame, already time-aligned (see
    `training.multiview.align`); `pairs` default to every pair, `frames` to every frame. K, distortion and the
    relative pose cam1_from_cam0 come from the calibration.

    `extra_views`: every sample also carries the other V - 2 cameras' 2D of its frame (`TwoViewSamples.extra_*`),
    weak targets of the reprojection into every camera. `repair`: the pair's keypoints are those the node
    triangulates (`cvpose_ros.pipeline.cross_view.match_views`: one-view left/right swaps repaired, joints the two views
    disagree on dropped; a frame the node would not match is skipped), and the extra cameras' keypoints have the
    swaps the consensus of all cameras finds undone (`training.multiview.detect_swaps`, run on `frames` only, so
    no other frame informs a sample). Where the pair's repaired labels and the consensus disagree, the extra
    targets of that sample are dropped (confidence 0) rather than teach a swap.
    """
    pixels, confidence = np.asarray(pixels, np.float64), np.asarray(confidence, np.float64)
    if pixels.shape[0] != len(cameras) or confidence.shape != pixels.shape[:3]:
        raise ValueError(f"{len(cameras)} cameras, pixels {pixels.shape}, confidence {confidence.shape}")
    if extra_views and len(cameras) < 3:
        raise ValueError(f"extra views need at least 3 cameras, got {len(cameras)}")
    pairs = all_pairs(len(cameras)) if pairs is None else [tuple(p) for p in pairs]
    frames = np.arange(pixels.shape[1]) if frames is None else np.asarray(frames, dtype=np.int64)
    conf = np.where(np.isfinite(pixels).all(-1), np.nan_to_num(confidence), 0.0)
    consensus = pixels
    if repair and extra_views:
        from training.multiview import detect_swaps

        consensus = pixels.copy()
        consensus[:, frames] = detect_swaps(cameras, pixels[:, frames], conf[:, frames]).corrected
    usable = (conf >= min_confidence).sum(-1) >= min_valid_joints  # (V, T)
    parts, pair_ids, frame_ids = [], [], []
    for a, b in pairs:
        keep = frames[usable[a, frames] & usable[b, frames]]
        if not len(keep):
            continue
        c0, c1 = cameras[a], cameras[b]
        rel = c1.cam_from_world.compose(c0.cam_from_world.inverse())
        kp = np.stack([pixels[a, keep], pixels[b, keep]], axis=1)
        cf = np.stack([conf[a, keep], conf[b, keep]], axis=1)
        if repair:
            kp, cf, matched = _node_keypoints(c0, c1, rel, kp, cf, layout, min_confidence)
            keep, kp, cf = keep[matched], kp[matched], cf[matched]
            if not len(keep):
                continue
        n = len(keep)
        arrays = {"kp2d": kp, "conf": cf,
                  "K": np.broadcast_to(np.stack([c0.model.K, c1.model.K]), (n, 2, 3, 3)),
                  "dist": np.broadcast_to(np.stack([c0.model.rational_coefficients(),
                                                    c1.model.rational_coefficients()]), (n, 2, 8)),
                  "R10": np.broadcast_to(rel.R, (n, 3, 3)), "t10": np.broadcast_to(rel.t, (n, 3))}
        if extra_views:
            arrays.update(_extra_fields(cameras, (a, b), consensus, conf, keep))
            if repair:  # the pair's labels must be the consensus's, or the extra targets would teach a swap
                ours = np.stack([consensus[a, keep], consensus[b, keep]], axis=1)
                both = np.isfinite(kp).all(-1) & np.isfinite(ours).all(-1)
                differ = (np.where(both, np.linalg.norm(np.nan_to_num(kp - ours), axis=-1), 0.0) > 1.0).any((1, 2))
                arrays["extra_conf"] = np.where(differ[:, None, None], 0.0, arrays["extra_conf"])
        parts.append(TwoViewSamples(**arrays))
        pair_ids.append(np.tile([a, b], (n, 1)))
        frame_ids.append(keep)
    if not parts:
        raise ValueError("no frame where both views of a chosen pair see enough joints")
    return VideoSamples(concat_samples(parts), np.concatenate(pair_ids), np.concatenate(frame_ids))


def _extra_fields(cameras: Sequence[CalibratedCamera], pair: tuple[int, int], pixels: np.ndarray,
                  conf: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """`TwoViewSamples.extra_*` arrays of the frames `keep`: every camera not in `pair`, relative to pair[0]."""
    others = [v for v in range(len(cameras)) if v not in pair]
    world_from_cam0 = cameras[pair[0]].cam_from_world.inverse()
    rel = [cameras[v].cam_from_world.compose(world_from_cam0) for v in others]
    n = len(keep)
    return {"extra_kp2d": np.moveaxis(pixels[others][:, keep], 0, 1),
            "extra_conf": np.moveaxis(conf[others][:, keep], 0, 1),
            "extra_K": np.broadcast_to(np.stack([cameras[v].model.K for v in others]), (n, len(others), 3, 3)),
            "extra_dist": np.broadcast_to(np.stack([cameras[v].model.rational_coefficients() for v in others]),
                                          (n, len(others), 8)),
            "extra_R": np.broadcast_to(np.stack([r.R for r in rel]), (n, len(others), 3, 3)),
            "extra_t": np.broadcast_to(np.stack([r.t for r in rel]), (n, len(others), 3))}


def _node_keypoints(cam0: CalibratedCamera, cam1: CalibratedCamera, rel, kp: np.ndarray, conf: np.ndarray,
                    layout: str, min_confidence: float, association_gate: float = 0.1
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keypoints the node triangulates for one person per view and frame (kp (N, 2, J, 2), conf (N, 2, J)):
    `match_views` with the pipeline's matching settings; returns them and the mask of frames it matched."""
    config = MatchConfig(gate=association_gate, lone_gate=max(association_gate, MatchConfig.lone_gate),
                         min_confidence=min_confidence)
    out_kp, out_conf = np.full_like(kp, np.nan), np.zeros_like(conf)
    matched = np.zeros(len(kp), dtype=bool)
    ids = np.array([-1])
    for i in range(len(kp)):  # one person per view: a frame is one call
        m = match_views(cam0.model, cam1.model, rel, kp[i, 0][None], conf[i, 0][None], ids,
                        kp[i, 1][None], conf[i, 1][None], ids, get_layout(layout), config)
        if len(m.i0):
            out_kp[i] = np.stack([m.kp0[0], m.kp1[0]])
            out_conf[i] = np.stack([m.conf0[0], m.conf1[0]])
            matched[i] = True
    return out_kp, out_conf, matched


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

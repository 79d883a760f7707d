"""Real multi-view video without ground truth: triangulation vs CV-UGCN refinement, measured by independent views.

With V >= 4 calibrated cameras, every camera pair goes through the node's own per-frame pipeline
(`SkeletonPipeline`: validate, associate, triangulate, refine) and is scored against what the pair did not see:
(a) MPJPE (absolute and root-relative, mm) against the triangulation of the other cameras, and (b) the median
reprojection error (px) of the pair's 3D in the other cameras against their confident detections. Frames are split
by the left/right swaps `training.multiview.detect_swaps` finds: all views agree, one view of the pair is swapped,
a reference view is swapped, or several are. Camera lags are estimated first (the videos need not be in sync), and
the detector's error against the all-view triangulation is summarised per camera and joint.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cvpose_ros.body.plausibility import PlausibilityCheck
from cvpose_ros.body.skeleton import get_layout, to_h36m
from cvpose_ros.calibration import CalibratedCamera, read_qualisys
from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import FrameError, PersonInput, ViewInput
from cvpose_ros.refine.guard import EvidenceGuard
from training.multiview import align, detect_swaps, detector_error_stats, estimate_lags, residuals, triangulate_views
from training.realvideo_io import detect_videos, find_videos, load_or_detect, match_cameras

__all__ = ["SPLITS", "detect_videos", "evaluate_detections", "find_videos", "evaluate_videos", "format_report",
           "load_or_detect", "match_cameras", "run_pair"]

SPLITS = ("all", "agree", "pair_swap", "reference_swap", "multiple")
# The 12 limb joints (shoulders, elbows, wrists, hips, knees, ankles) that are the same point in both layouts, and
# their mid-hip: a comparison free of the approximate h36m17 joints derived from coco17 (pelvis, spine, head...).
LIMBS = {"h36m17": (11, 12, 13, 14, 15, 16, 4, 5, 6, 1, 2, 3), "coco17": tuple(range(5, 17))}
LIMB_HIPS = {"h36m17": (1, 4), "coco17": (11, 12)}
MPJPE_KEYS = {"mpjpe_mm": "absolute", "root_rel_mpjpe_mm": "relative", "limbs_mpjpe_mm": "limbs",
              "limbs_root_rel_mpjpe_mm": "limbs_relative"}


def run_pair(cam0: CalibratedCamera, cam1: CalibratedCamera, pixels: np.ndarray, confidence: np.ndarray,
             refiner, min_confidence: float = 0.1, association_gate: float = 0.1,
             layout: str = "coco17", guard: EvidenceGuard | None = None) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """Every frame of two views (pixels (2, T, 17, 2) coco17, confidence (2, T, 17)) through `SkeletonPipeline`.

    `layout`: the joint definition the pipeline gets (coco17 as detected, or h36m17 mapped with `to_h36m`, to
    judge h36m17 weights on the same detections). `refiner`: a `LayoutRefiners`, a `Refiner` or None.
    Returns the triangulation and the refined pose (T, J, 3) in the world frame (NaN where the pipeline kept
    nobody), the output layout and whether refinement ran.
    """
    setup = CameraSetup(cam0.model, cam1.model, cam1.cam_from_world.compose(cam0.cam_from_world.inverse()),
                        reference_from_cam0=cam0.cam_from_world.inverse())
    # every matched person is scored, swapped and noisy ones included: no bone-length filter (the node's output
    # policy), only the range rule, which a room-sized rig never meets
    pipeline = SkeletonPipeline(refiner=refiner, default_layout="coco17", min_confidence=min_confidence,
                                association_gate=association_gate, guard=guard,
                                plausibility=PlausibilityCheck(bones=False))
    if layout != "coco17":
        pixels, confidence = in_layout(pixels, confidence, layout)
    frames = pixels.shape[1]
    coarse = np.full((frames, pixels.shape[2], 3), np.nan)
    refined = coarse.copy()
    out_layout, applied = layout, False
    for t in range(frames):
        views = [ViewInput(t, cam.name, layout, _people(pixels[i, t], confidence[i, t]))
                 for i, cam in enumerate((cam0, cam1))]
        try:
            result = pipeline.process(setup, *views)
        except FrameError:
            continue
        out_layout = result.layout
        applied |= bool(result.refined_applied)
        if result.refined.joints.shape[0]:
            coarse[t], refined[t] = result.coarse.joints[0], result.refined.joints[0]
    return coarse, refined, out_layout, applied


def _people(pixels: np.ndarray, confidence: np.ndarray) -> list[PersonInput]:
    """The one detected person of a view (none when no joint was found)."""
    conf = np.nan_to_num(confidence, nan=0.0)
    if not (conf > 0).any():
        return []
    return [PersonInput(-1, pixels[:, 0].copy(), pixels[:, 1].copy(), conf.copy())]


def in_layout(points: np.ndarray, confidence: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """coco17 points (..., 17, D) and confidence in the output `layout` (coco17 unchanged, h36m17 via to_h36m)."""
    if layout == "coco17":
        return points, confidence
    if layout == "h36m17":
        return to_h36m(points, confidence, "coco17")
    raise ValueError(f"cannot compare in layout {layout!r}")


def _relative(points: np.ndarray, root: Sequence[int]) -> np.ndarray:
    return points - points[..., list(root), :].mean(axis=-2, keepdims=True)


def joint_errors(estimate: np.ndarray, reference: np.ndarray, layout: str) -> dict[str, np.ndarray]:
    """Per-joint distances in mm, NaN where either side misses the joint: "absolute" and "relative" (root-relative)
    (T, J), and "limbs" / "limbs_relative" (T, 12) over `LIMBS` (relative to their mid-hip)."""
    limbs, hips, root = list(LIMBS[layout]), LIMB_HIPS[layout], get_layout(layout).root
    rel_est, rel_ref = _relative(estimate, hips)[..., limbs, :], _relative(reference, hips)[..., limbs, :]
    absolute = np.linalg.norm(estimate - reference, axis=-1) * 1e3
    return {"absolute": absolute,
            "relative": np.linalg.norm(_relative(estimate, root) - _relative(reference, root),
                                       axis=-1) * 1e3,
            "limbs": absolute[..., limbs], "limbs_relative": np.linalg.norm(rel_est - rel_ref, axis=-1) * 1e3}


def _frame_mean(errors: np.ndarray) -> np.ndarray:
    """Mean over joints (T, J) -> (T,), NaN for frames without any joint."""
    count = np.isfinite(errors).sum(axis=-1)
    return np.where(count > 0, np.nansum(errors, axis=-1) / np.maximum(count, 1), np.nan)


def _summary(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "median": None}
    return {"mean": float(finite.mean()), "median": float(np.median(finite))}


def _block(measures: dict[str, dict[str, np.ndarray]], mask: np.ndarray) -> dict:
    """Triangulation vs refined over the frames in `mask` (`scored_frames`: those the pipeline gave a skeleton):
    MPJPE variants (mean and median of per-frame means) and the reprojection error (median over joints).
    "detector" is the plain DLT of the pair's detections (no matching, no swap repair), the baseline a user gets
    without the package; `ratio_vs_detector` compares the refined output with it."""
    scored = np.isfinite(measures["refined"]["absolute"]).any(axis=-1)
    block: dict = {"frames": int(mask.sum()), "scored_frames": int((mask & scored).sum())}
    for method in ("detector", "triangulation", "refined"):
        m = measures[method]
        block[method] = {key: _summary(_frame_mean(m[name][mask])) for key, name in MPJPE_KEYS.items()}
        block[method]["reprojection_px"] = _summary(m["reprojection"][mask].ravel())["median"]
    ratios = {}
    for key in MPJPE_KEYS:
        tri, ref = block["triangulation"][key]["mean"], block["refined"][key]["mean"]
        ratios[key] = ref / tri if tri and ref is not None else None
    tri, ref = block["triangulation"]["reprojection_px"], block["refined"]["reprojection_px"]
    ratios["reprojection_px"] = ref / tri if tri and ref is not None else None
    block["ratio"] = ratios
    block["ratio_vs_detector"] = {}
    for key in (*MPJPE_KEYS, "reprojection_px"):
        det = block["detector"][key] if key == "reprojection_px" else block["detector"][key]["mean"]
        ref = block["refined"][key] if key == "reprojection_px" else block["refined"][key]["mean"]
        block["ratio_vs_detector"][key] = ref / det if det and ref is not None else None
    return block


def _splits(swapped: np.ndarray, pair: tuple[int, int]) -> dict[str, np.ndarray]:
    """Frame masks of each split for one pair from the (V, T) swap flags."""
    in_pair = swapped[list(pair)].sum(axis=0)
    others = swapped.sum(axis=0) - in_pair
    return {"all": np.ones(swapped.shape[1], dtype=bool), "agree": (in_pair == 0) & (others == 0),
            "pair_swap": (in_pair == 1) & (others == 0), "reference_swap": (in_pair == 0) & (others == 1),
            "multiple": in_pair + others >= 2}


def _per_joint(measures: list[dict], masks: list[np.ndarray], names: Sequence[str]) -> dict:
    """Mean absolute error per joint over the masked frames of every pair, triangulation vs refined, and the ratio."""
    out = {}
    tri = np.concatenate([m["triangulation"]["absolute"][k] for m, k in zip(measures, masks, strict=True)])
    ref = np.concatenate([m["refined"]["absolute"][k] for m, k in zip(measures, masks, strict=True)])
    for j, name in enumerate(names):
        t, r = (float(np.nanmean(e[:, j])) if np.isfinite(e[:, j]).any() else None for e in (tri, ref))
        out[name] = {"triangulation_mm": t, "refined_mm": r, "ratio": r / t if t and r is not None else None}
    return out


def _check_camera_count(count: int) -> None:
    if count < 4:
        raise ValueError(f"need at least 4 calibrated cameras (a pair plus two independent views), got {count}")


def evaluate_detections(cameras: Sequence[CalibratedCamera], pixels: Sequence[np.ndarray],
                        confidence: Sequence[np.ndarray], refiner, *, lags: Sequence[int] | None
                        = None, max_lag: int = 6, min_confidence: float = 0.1, confident: float = 0.5,
                        association_gate: float = 0.1, progress: bool = True, layout: str = "coco17",
                        guard: EvidenceGuard | None = None) -> dict:
    """The whole evaluation from per-camera coco17 detections (T_v, 17, 2) and confidences (T_v, 17), refined in
    `layout` (coco17, or mapped to h36m17) by `refiner` (`LayoutRefiners`, `Refiner` or None) behind `guard`.

    lags: frame lag of every camera against the first (None: estimated within +-max_lag). `confident` is the
    confidence a detection needs to count in lags, swaps, reprojection errors and detector statistics;
    `min_confidence` is the pipeline's own threshold. Returns the report dict (JSON-ready).
    """
    _check_camera_count(len(cameras))
    if not (len(cameras) == len(pixels) == len(confidence)):
        raise ValueError(f"{len(cameras)} cameras but {len(pixels)} keypoint and {len(confidence)} confidence arrays")
    curves = {}
    if lags is None:
        lags, curves = estimate_lags(cameras, pixels, confidence, max_lag, confident)
    if len(lags) != len(cameras):
        raise ValueError(f"{len(lags)} lags for {len(cameras)} cameras")
    pix, conf = np.stack(align(pixels, lags)), np.stack(align(confidence, lags))
    swaps = detect_swaps(cameras, pix, conf, confident)
    names = [c.name for c in cameras]
    report: dict = {
        "cameras": names, "frames": [int(len(p)) for p in pixels], "aligned_frames": int(pix.shape[1]),
        "lags": dict(zip(names, [int(x) for x in lags], strict=True)),
        "lag_residual_px": {n: {str(k): round(v, 2) for k, v in c.items()} for n, c in curves.items()},
        "confident": confident,
        "swaps": {n: {"share": float(swaps.swapped[v].mean()),
                      "kinds": {k: int((swaps.kind[v] == k).sum()) for k in sorted(set(swaps.kind[v])) if k},
                      "frames": np.flatnonzero(swaps.swapped[v]).tolist()} for v, n in enumerate(names)},
    }
    everyone = triangulate_views(cameras, swaps.corrected, conf, confident)
    report["detector_error"] = detector_error_stats(cameras, pix, conf, everyone, swaps.swapped, confident)
    report["detector_error_leave_one_out"] = detector_error_stats(cameras, pix, conf, swaps.consensus,
                                                                  swaps.swapped, confident)
    pairs = list(itertools.combinations(range(len(cameras)), 2))
    report["pairs"], measures, agree_masks, applied = {}, [], [], False
    for a, b in tqdm(pairs, desc="pairs", unit="pair", disable=not progress, leave=False):
        others = [v for v in range(len(cameras)) if v not in (a, b)]
        coarse, refined, out_layout, ran = run_pair(cameras[a], cameras[b], pix[[a, b]], conf[[a, b]], refiner,
                                                    min_confidence, association_gate, layout, guard)
        applied |= ran
        reference = triangulate_views([cameras[v] for v in others], pix[others], conf[others], min_confidence)
        reference = in_layout(reference, np.isfinite(reference).all(axis=-1).astype(float), out_layout)[0]
        detector = triangulate_views([cameras[a], cameras[b]], pix[[a, b]], conf[[a, b]], min_confidence)
        detector = in_layout(detector, np.isfinite(detector).all(axis=-1).astype(float), out_layout)[0]
        seen, seen_conf = in_layout(pix[others], conf[others], out_layout)
        measure = {}
        for method, pose in (("detector", detector), ("triangulation", coarse), ("refined", refined)):
            reprojection = residuals([cameras[v] for v in others], pose, seen, seen_conf, confident)
            measure[method] = joint_errors(pose, reference, out_layout)
            measure[method]["reprojection"] = np.moveaxis(reprojection, 0, 1)  # (T, V-2, J)
        masks = _splits(swaps.swapped, (a, b))
        block = {split: _block(measure, masks[split]) for split in SPLITS}
        block["dropped_frames"] = int((~np.isfinite(refined).any(axis=(-1, -2))).sum())
        report["pairs"][f"{names[a]}-{names[b]}"] = block
        measures.append(measure)
        agree_masks.append(masks["agree"])
    pooled = {m: {k: np.concatenate([x[m][k] for x in measures]) for k in measures[0][m]} for m in measures[0]}
    all_masks = [_splits(swaps.swapped, p) for p in pairs]
    report["all_pairs"] = {s: _block(pooled, np.concatenate([m[s] for m in all_masks])) for s in SPLITS}
    report["per_joint_agree"] = _per_joint(measures, agree_masks, get_layout(out_layout).joint_names)
    report["output_layout"], report["refined_applied"] = out_layout, applied
    return report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(report: dict) -> str:
    """Compact text: lags, swap shares, per pair and split the two measures for triangulation -> refined."""
    lines = ["lags (frames vs " + report["cameras"][0] + "): "
             + ", ".join(f"{n} {lag:+d}" for n, lag in report["lags"].items())
             + f"   aligned frames: {report['aligned_frames']}   layout: {report['output_layout']}"
             + f"   refined: {'yes' if report['refined_applied'] else 'NO (triangulation only)'}",
             "swapped view-frames: " + ", ".join(
                 f"{n} {s['share']:.0%}" + (f" ({', '.join(f'{k} {c}' for k, c in s['kinds'].items())})"
                                            if s["kinds"] else "") for n, s in report["swaps"].items()),
             "", f"{'pair':<13}{'split':<15}{'scored':>10}  {'detector abs/rel':>16}  {'MPJPE abs mm':>15}  "
                 f"{'root-rel mm':>15}  {'limbs rel mm':>15}  {'reproj px':>13}   (triangulation -> refined; "
                 "detector: plain DLT of the pair's detections)"]
    rows = list(report["pairs"].items()) + [("all pairs", report["all_pairs"])]
    for name, block in rows:
        for split in SPLITS:
            b = block[split]
            if not b["frames"]:
                continue
            t, r = b["triangulation"], b["refined"]
            cells = [f"{_fmt(t[k]['mean']):>7}->{_fmt(r[k]['mean']):<7}"
                     for k in ("mpjpe_mm", "root_rel_mpjpe_mm", "limbs_root_rel_mpjpe_mm")]
            count = f"{b['scored_frames']}/{b['frames']}"
            d = b["detector"]
            detector = f"{_fmt(d['mpjpe_mm']['mean'])}/{_fmt(d['root_rel_mpjpe_mm']['mean'])}"
            lines.append(f"{name:<13}{split:<15}{count:>10}  {detector:>16}  " + "  ".join(cells)
                         + f"  {_fmt(t['reprojection_px']):>6}->{_fmt(r['reprojection_px']):<6}")
    lines += ["", f"{'detector error':<14}{'swaps':>7}{'missing':>9}{'height px':>11}{'median px':>11}"
                  f"{'|offset| px':>13}{'spread px':>11}"]
    for name, d in report["detector_error"].items():
        lines.append(f"{name:<14}{d['swap_share']:>7.0%}{d['missing_share']:>9.0%}{_fmt(d['person_height_px'], 0):>11}"
                     f"{_fmt(d['median_error_px']):>11}{_fmt(d['mean_offset_norm_px']):>13}"
                     f"{_fmt(d['mean_spread_px']):>11}")
    return "\n".join(lines)


def evaluate_videos(videos: str | Path, calibration: str | Path, checkpoint: str | None = None, device: str = "cpu",
                    detections_cache: str | None = None, json_path: str | None = None, max_lag: int = 6,
                    fuse_views: bool = True, progress: bool = True, layout: str = "coco17",
                    guard: EvidenceGuard | None = None) -> dict:
    """`cvpose-eval --videos`: detect (MediaPipe, cached), evaluate in `layout` with the packaged weights of that
    layout (or `checkpoint`), print the table, write the JSON."""
    from cvpose_ros.detection import create_backend
    from cvpose_ros.refine.refiner import LayoutRefiners

    paths = find_videos(videos)
    cameras = match_cameras(paths, read_qualisys(calibration))
    _check_camera_count(len(cameras))
    # weights first: a bad checkpoint fails before the slow detection
    refiners = LayoutRefiners([checkpoint] if checkpoint else [], device=device, fuse_views=fuse_views,
                              num_threads=1)
    refiner = refiners.for_layout(layout)
    keypoints, confidence = load_or_detect(paths, lambda: create_backend("mediapipe", tracking=True), "mediapipe",
                                           detections_cache, progress)
    report = evaluate_detections(cameras, keypoints, confidence, refiner, max_lag=max_lag, progress=progress,
                                 layout=layout, guard=guard)
    report["videos"] = [p.name for p in paths]
    report["calibration"] = Path(calibration).name
    report["checkpoint"] = str(refiner.checkpoint_path) if refiner is not None and refiner.enabled else None
    report["guard"] = None if guard is None else {"enabled": guard.enabled,
                                                  "confidence": guard.confidence_for(report["output_layout"]),
                                                  "min_px": guard.min_px, "agree_fraction": guard.agree_fraction,
                                                  "factor": guard.factor, "free_above_m": guard.free_above_m}
    print(format_report(report))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=1))
    return report

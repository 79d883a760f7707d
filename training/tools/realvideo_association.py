"""Cross-view matching on a real multi-camera recording: dropped frames and one-view swaps, every camera pair.

Hand-run check of `cvpose_ros.pipeline.cross_view` (not a test): the cached per-camera detections of one person go
pairwise through `SkeletonPipeline.process` (triangulation only, as the node does with `refine: false`) and are scored
against the triangulation of the other cameras. Reported per pair:

- `dropped`: frames where each view holds one person (at least `min_valid_joints` usable joints) but the pipeline
  published nobody (the issue-10 target is 0);
- the MPJPE (mm) on frames where all views agree and on frames where exactly one view of the pair is
  left/right swapped (`training.multiview.detect_swaps`), and their ratio (target <= 1.5).

    python -m training.tools.realvideo_association --videos <dir> --calibration <Calib.qca.txt> \
        --detections-cache <detections.npz> [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from cvpose_ros.calibration import read_qualisys
from training.multiview import align, detect_swaps, estimate_lags, triangulate_views
from training.realvideo import joint_errors, run_pair
from training.realvideo_io import find_videos, load_or_detect, match_cameras


def _frame_mean(errors: np.ndarray) -> np.ndarray:
    count = np.isfinite(errors).sum(axis=-1)
    return np.where(count > 0, np.nansum(errors, axis=-1) / np.maximum(count, 1), np.nan)


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def evaluate(cameras, pixels: np.ndarray, confidence: np.ndarray, swapped: np.ndarray, min_confidence: float = 0.1,
             min_valid_joints: int = 6) -> dict:
    """Per pair and pooled: dropped frames and MPJPE on agreeing vs one-view-swapped frames (pixels (V, T, J, 2))."""
    report: dict = {"pairs": {}}
    usable = (np.isfinite(pixels).all(-1) & (confidence >= min_confidence)).sum(-1) >= min_valid_joints  # (V, T)
    pooled: dict[str, list] = {"agree": [], "pair_swap": []}
    for a, b in itertools.combinations(range(len(cameras)), 2):
        others = [v for v in range(len(cameras)) if v not in (a, b)]
        coarse, _, _, _ = run_pair(cameras[a], cameras[b], pixels[[a, b]], confidence[[a, b]], None, min_confidence)
        reference = triangulate_views([cameras[v] for v in others], pixels[others], confidence[others],
                                      min_confidence)
        error = _frame_mean(joint_errors(coarse, reference, "coco17")["absolute"])
        present = usable[a] & usable[b]
        published = np.isfinite(coarse).any(axis=(-1, -2))
        in_pair = swapped[[a, b]].sum(0)
        others_swapped = swapped[others].sum(0)
        agree = (in_pair == 0) & (others_swapped == 0)
        pair_swap = (in_pair == 1) & (others_swapped == 0)
        block = {"frames_with_both": int(present.sum()), "dropped": int((present & ~published).sum()),
                 "agree_frames": int(agree.sum()), "swap_frames": int(pair_swap.sum()),
                 "agree_mpjpe_mm": _mean(error[agree]), "swap_mpjpe_mm": _mean(error[pair_swap])}
        ratio = (block["swap_mpjpe_mm"] / block["agree_mpjpe_mm"]
                 if block["swap_mpjpe_mm"] is not None and block["agree_mpjpe_mm"] else None)
        block["swap_over_agree"] = ratio
        report["pairs"][f"{cameras[a].name}-{cameras[b].name}"] = block
        pooled["agree"].append(error[agree])
        pooled["pair_swap"].append(error[pair_swap])
    agree_all, swap_all = (_mean(np.concatenate(pooled[k])) for k in ("agree", "pair_swap"))
    report["all_pairs"] = {"dropped": sum(p["dropped"] for p in report["pairs"].values()),
                           "agree_mpjpe_mm": agree_all, "swap_mpjpe_mm": swap_all,
                           "swap_over_agree": swap_all / agree_all if agree_all and swap_all is not None else None}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", required=True, help="folder of the recording's videos (one per camera)")
    parser.add_argument("--calibration", required=True, help="Qualisys calibration (.qca.txt)")
    parser.add_argument("--detections-cache", required=True, help=".npz of the detections (cvpose-eval writes it)")
    parser.add_argument("--max-lag", type=int, default=6)
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    try:
        paths = find_videos(args.videos)
        cameras = match_cameras(paths, read_qualisys(args.calibration))
        keypoints, confidence = load_or_detect(paths, None, "mediapipe", args.detections_cache, progress=False)
    except (OSError, ValueError, TypeError) as exc:
        print(f"realvideo_association: {exc}", file=sys.stderr)
        return 1
    lags, _ = estimate_lags(cameras, keypoints, confidence, args.max_lag, 0.5)
    pixels, conf = np.stack(align(keypoints, lags)), np.stack(align(confidence, lags))
    swapped = detect_swaps(cameras, pixels, conf, 0.5).swapped
    report = evaluate(cameras, pixels, conf, swapped)
    for name, block in report["pairs"].items():
        print(f"{name:<12} dropped {block['dropped']:>3}/{block['frames_with_both']:<4} agree "
              f"{block['agree_mpjpe_mm'] or float('nan'):7.1f} mm ({block['agree_frames']:>3} frames)  one-view swap "
              f"{block['swap_mpjpe_mm'] or float('nan'):7.1f} mm ({block['swap_frames']:>3} frames)  ratio "
              f"{block['swap_over_agree'] or float('nan'):.2f}")
    total = report["all_pairs"]
    print(f"all pairs    dropped {total['dropped']}  agree {total['agree_mpjpe_mm']:.1f} mm  one-view swap "
          f"{total['swap_mpjpe_mm']:.1f} mm  ratio {total['swap_over_agree']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

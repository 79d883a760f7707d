"""Hand-run check of the multi-person MediaPipe backend and the 2D tracker on real video (not a test).

Needs a folder of synchronised single-person videos (e.g. the Pose2Sim demo: cam01.mp4 ... cam04.mp4). Tiles
frames of different cameras side by side into 2-, 3- and 4-person images and compares each person's keypoints
with the single-person result on that camera's untiled frame (the reference); then runs the tracker over the tiled
sequence and counts id switches of the tiled people (the reference person of each tile should keep one id).

    python bench/bench_multiperson_video.py --videos DIR [--stride 5] [--json out.json]

Prints recall (reference people found), the median keypoint difference in pixels (joints with confidence > 0.5 in
both), time per image, and id switches. Background people present in some cameras are extra detections, not errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from cvpose_ros.detection import create_backend
from cvpose_ros.detection.tracking import PersonTracker

MIN_JOINT_CONFIDENCE = 0.5
MATCH_PX = 40.0  # a detection is the reference person when their median joint distance is below this


def read_frames(path: Path, stride: int, limit: int, scale: float = 1.0) -> list[np.ndarray]:
    """RGB frames 0, stride, 2*stride, ... of a video, resized by `scale`."""
    capture = cv2.VideoCapture(str(path))
    frames, index = [], 0
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        if index % stride == 0:
            if scale != 1.0:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frames.append(np.ascontiguousarray(frame[..., ::-1]))
        index += 1
    capture.release()
    if not frames:
        raise SystemExit(f"cannot read frames from {path}")
    return frames


def tile(frames: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Frames side by side (cropped to the smallest height); returns the image and each tile's x offset."""
    height = min(f.shape[0] for f in frames)
    offsets = np.cumsum([0] + [f.shape[1] for f in frames[:-1]]).tolist()
    return np.ascontiguousarray(np.concatenate([f[:height] for f in frames], axis=1)), offsets


def match_reference(keypoints: np.ndarray, confidence: np.ndarray, reference: np.ndarray,
                    reference_conf: np.ndarray) -> tuple[int, float]:
    """Index of the detection closest to the reference person (-1 if none within MATCH_PX) and the median
    pixel difference over joints confident in both."""
    if keypoints.shape[0] == 0:
        return -1, float("nan")
    both = (confidence > MIN_JOINT_CONFIDENCE) & (reference_conf > MIN_JOINT_CONFIDENCE)[None]
    dist = np.where(both, np.linalg.norm(keypoints - reference[None], axis=-1), np.nan)
    median = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.inf for row in dist])
    best = int(np.argmin(median))
    return (best, float(median[best])) if median[best] < MATCH_PX else (-1, float("nan"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, required=True, help="folder of synchronised single-person videos")
    ap.add_argument("--stride", type=int, default=5, help="use every n-th frame (default 5)")
    ap.add_argument("--frames", type=int, default=20, help="frames per camera (default 20)")
    ap.add_argument("--window-aspect", type=float, default=1.0, help="MediaPipe window_aspect (0 = whole image)")
    ap.add_argument("--scale", type=float, default=1.0, help="resize frames first (0.5 = 540x960)")
    ap.add_argument("--rescan", action=argparse.BooleanOptionalAction, default=True, help="MediaPipe rescan")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    paths = sorted(args.videos.glob("*.mp4"))
    if len(paths) < 4:
        print(f"need 4 videos in {args.videos}, found {len(paths)}", file=sys.stderr)
        return 1
    cams = [read_frames(p, args.stride, args.frames, args.scale) for p in paths[:4]]
    count = min(len(c) for c in cams)
    print(f"{count} frames x {len(cams)} cameras ({', '.join(p.stem for p in paths[:4])})", flush=True)

    pad = 32
    with create_backend("mediapipe", tracking=False, num_poses=1, window_aspect=0.0) as single:
        references = [[single.detect(c[t]) for t in range(count)] for c in cams]
        # the reference's own jitter: the same frame with 32 px of black on its left
        floor = []
        for k, c in enumerate(cams):
            for t in range(count):
                shifted = single.detect(np.ascontiguousarray(np.pad(c[t], ((0, 0), (pad, 0), (0, 0)))))
                ref = references[k][t]
                if ref.num_people and shifted.num_people:
                    _, diff = match_reference(shifted.keypoints - [pad, 0], shifted.confidence, ref.keypoints[0],
                                              ref.confidence[0])
                    floor.append(diff)
    floor_median = float(np.nanmedian(floor)) if floor else float("nan")
    print(f"single-person result vs itself on the frame shifted by {pad} px: median {floor_median:.2f} px "
          f"over {len(floor)} frames", flush=True)
    results: dict = {"frames": count, "stride": args.stride, "scale": args.scale, "window_aspect": args.window_aspect,
                     "rescan": args.rescan,
                     "reference_shift_median_px": floor_median, "people": {}}
    for people in (1, 2, 3, 4):
        found, total, diffs, times, tracked_switches = 0, 0, [], [], 0
        options = {"window_aspect": args.window_aspect, "rescan": args.rescan}
        with (create_backend("mediapipe", tracking=False, **options) as still,
              create_backend("mediapipe", tracking=True, **options) as video):
            tracker = PersonTracker()
            last_ids: list[int | None] = [None] * people
            for t in range(count):
                image, offsets = tile([cams[k][t] for k in range(people)])
                start = time.perf_counter()
                det = still.detect(image)
                times.append((time.perf_counter() - start) * 1e3)
                tracked = video.detect(image)
                ids = tracker.update(tracked.keypoints, tracked.confidence)
                for k in range(people):
                    ref = references[k][t]
                    if ref.num_people == 0:
                        continue
                    shift = np.array([offsets[k], 0.0])
                    total += 1
                    index, diff = match_reference(det.keypoints, det.confidence, ref.keypoints[0] + shift,
                                                  ref.confidence[0])
                    if index >= 0:
                        found += 1
                        diffs.append(diff)
                    tracked_index, _ = match_reference(tracked.keypoints, tracked.confidence,
                                                       ref.keypoints[0] + shift, ref.confidence[0])
                    if tracked_index >= 0:
                        current = int(ids[tracked_index])
                        if last_ids[k] is not None and current != last_ids[k]:
                            tracked_switches += 1
                        last_ids[k] = current
        row = {"recall": found / max(total, 1), "found": found, "total": total,
               "median_diff_px": float(np.median(diffs)) if diffs else None,
               "p90_diff_px": float(np.percentile(diffs, 90)) if diffs else None,
               "ms_median": float(np.median(times[1:] or times)), "ms_p90": float(np.percentile(times, 90)),
               "image": f"{image.shape[1]}x{image.shape[0]}", "id_switches": tracked_switches}
        results["people"][people] = row
        print(f"{people} people ({row['image']}): recall {found}/{total} = {row['recall']:.3f}, median diff "
              f"{row['median_diff_px']:.2f} px (p90 {row['p90_diff_px']:.2f}), {row['ms_median']:.0f} ms/image "
              f"(p90 {row['ms_p90']:.0f}), id switches {tracked_switches}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hand-run check of the multi-person MediaPipe backend and the 2D tracker on real video (not a test).

Needs a folder of synchronised single-person videos (e.g. the Pose2Sim demo: cam01.mp4 ... cam04.mp4). Tiles
frames of different cameras side by side into 2-, 3- and 4-person images and compares each person's keypoints
with the single-person result on that camera's untiled frame (the reference); then runs the tracker over the tiled
sequence and counts id switches of the tiled people (the reference person of each tile should keep one id).

    python bench/bench_multiperson_video.py --videos DIR [--stride 5] [--frames 20] [--refine-crops N]
        [--calibration Calib.qca.txt --lags 0,0,3,0] [--json out.json]

Prints recall (reference people found), the median keypoint difference in pixels (joints with confidence > 0.5 in
both), time per image, and id switches. Background people present in some cameras are extra detections, not errors.
With --refine-crops N the backend runs its refinement pass (N crops per person); the differences are then given
against the plain single-person result and against the single-person result with the same pass, and the time per
image as a ratio to the backend without the pass on the same images in the same run.
With --calibration (4 cameras, videos in the calibration's camera order, --lags: each video's frame offset so that
the cameras show the same moment), accuracy without ground truth: each camera's keypoints against the projection
of the triangulation of the other three cameras' plain single-person keypoints (one fixed target for every row).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from cvpose_ros.calibration import read_calibration
from cvpose_ros.detection import Detections, create_backend
from cvpose_ros.detection.tracking import PersonTracker

MIN_JOINT_CONFIDENCE = 0.5
MATCH_PX = 40.0  # a detection is the reference person when their median joint distance is below this
SHIFT_PX = 32    # the reference's own jitter: the same frame with this many black columns on its left
SINGLE = {"num_poses": 1, "window_aspect": 0.0, "rescan": False}  # the single-person reference: one search, whole


def read_frames(path: Path, stride: int, limit: int, scale: float = 1.0, start: int = 0) -> list[np.ndarray]:
    """RGB frames start, start + stride, start + 2 stride, ... of a video, resized by `scale`."""
    capture = cv2.VideoCapture(str(path))
    frames, index = [], 0
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        if index >= start and (index - start) % stride == 0:
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


def median_difference(keypoints: np.ndarray, confidence: np.ndarray, reference: Detections) -> float:
    """Median pixel distance of one person (17, 2) to the reference's person over joints confident in both."""
    if reference.num_people == 0:
        return float("nan")
    both = (confidence > MIN_JOINT_CONFIDENCE) & (reference.confidence[0] > MIN_JOINT_CONFIDENCE)
    return float(np.median(np.linalg.norm(keypoints - reference.keypoints[0], axis=-1)[both])) if both.any() \
        else float("nan")


def averaged_reference(detector, frame: np.ndarray, shifts: int) -> Detections:
    """The single-person result averaged over the frame moved by (8 k, 4 k) px, k = 1..shifts (black borders):
    the landmark model's output moves by a few pixels with any change of its input, so one run is a noisy
    reference; the average is a steadier one. Confidence = the lowest over the runs; empty if any run misses."""
    keypoints, confidence = [], []
    for k in range(1, shifts + 1):
        dx, dy = 8 * k, 4 * k
        found = detector.detect(np.ascontiguousarray(np.pad(frame, ((dy, 0), (dx, 0), (0, 0)))))
        if found.num_people == 0:
            return Detections.empty()
        keypoints.append(found.keypoints[0] - [dx, dy])
        confidence.append(found.confidence[0])
    confidence = np.min(confidence, axis=0)
    return Detections(np.mean(keypoints, axis=0)[None], confidence[None], confidence.mean()[None])


def shift_jitter(detector, cams: list[list[np.ndarray]], references: list[list[Detections]]) -> list[float]:
    """Median difference of the single-person result to itself on each frame moved right by SHIFT_PX."""
    floor = []
    for frames, refs in zip(cams, references, strict=True):
        for frame, ref in zip(frames, refs, strict=True):
            shifted = detector.detect(np.ascontiguousarray(np.pad(frame, ((0, 0), (SHIFT_PX, 0), (0, 0)))))
            if ref.num_people and shifted.num_people:
                _, diff = match_reference(shifted.keypoints - [SHIFT_PX, 0], shifted.confidence, ref.keypoints[0],
                                          ref.confidence[0])
                floor.append(diff)
    return floor


class OtherViews:
    """Accuracy without ground truth: a camera's keypoints against the projection into it of the triangulation of
    the other cameras' single-person keypoints (plain reference) at the same moment."""

    def __init__(self, calibration: Path, references: list[list[Detections]], scale: float) -> None:
        from cvpose_ros.geometry.multiview import triangulate_views

        self.cameras = read_calibration([calibration])
        if len(self.cameras) != len(references):
            raise SystemExit(f"{calibration}: {len(self.cameras)} cameras, {len(references)} videos")
        views = len(references)
        pixels = np.full((views, len(references[0]), 17, 2), np.nan)
        conf = np.zeros(pixels.shape[:-1])
        for v, refs in enumerate(references):
            for t, ref in enumerate(refs):
                if ref.num_people:
                    pixels[v, t], conf[v, t] = ref.keypoints[0] / scale, ref.confidence[0]
        self.targets = np.full_like(pixels, np.nan)  # (V, T, 17, 2) pixels (of the scaled frames)
        for v in range(views):
            others = [u for u in range(views) if u != v]
            points = triangulate_views([self.cameras[u] for u in others], pixels[others], conf[others],
                                       MIN_JOINT_CONFIDENCE)
            self.targets[v] = self.cameras[v].project(points) * scale

    def errors(self, view: int, moment: int, keypoints: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Pixel distances of one person's confident joints to the target."""
        error = np.linalg.norm(keypoints - self.targets[view, moment], axis=-1)
        return error[(confidence > MIN_JOINT_CONFIDENCE) & np.isfinite(error)]


def nanmedian(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.median(finite)) if finite else None


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, required=True, help="folder of synchronised single-person videos")
    ap.add_argument("--stride", type=int, default=5, help="use every n-th frame (default 5)")
    ap.add_argument("--frames", "--moments", type=int, default=20, help="moments (frames per camera, default 20)")
    ap.add_argument("--window-aspect", type=float, default=1.0, help="MediaPipe window_aspect (0 = whole image)")
    ap.add_argument("--scale", type=float, default=1.0, help="resize frames first (0.5 = 540x960)")
    ap.add_argument("--rescan", action=argparse.BooleanOptionalAction, default=True, help="MediaPipe rescan")
    ap.add_argument("--refine-crops", type=int, default=0, help="MediaPipe refine_crops (0 = no refinement pass)")
    ap.add_argument("--average-shifts", type=int, default=8,
                    help="also compare with the single-person result averaged over this many shifted frames (0 = no)")
    ap.add_argument("--calibration", type=Path, help="calibration of the 4 cameras: accuracy against the others")
    ap.add_argument("--lags", default="", help="frame offset of each video, comma-separated (default all 0)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    paths = sorted(args.videos.glob("*.mp4"))
    if len(paths) < 4:
        print(f"need 4 videos in {args.videos}, found {len(paths)}", file=sys.stderr)
        return 1
    lags = [int(x) for x in args.lags.split(",")] if args.lags else [0] * 4
    if len(lags) != 4 or min(lags) < 0:
        print(f"--lags needs 4 offsets >= 0, got {args.lags!r}", file=sys.stderr)
        return 1
    cams = [read_frames(p, args.stride, args.frames, args.scale, lag) for p, lag in zip(paths[:4], lags, strict=True)]
    count = min(len(c) for c in cams)
    cams = [c[:count] for c in cams]
    print(f"{count} frames x {len(cams)} cameras ({', '.join(p.stem for p in paths[:4])}), lags {lags}", flush=True)

    refined = args.refine_crops > 0
    results: dict = {"frames": count, "stride": args.stride, "scale": args.scale, "window_aspect": args.window_aspect,
                     "rescan": args.rescan, "refine_crops": args.refine_crops, "lags": lags, "people": {}}
    references: dict[str, list[list[Detections]]] = {}
    for label, crops in (("plain", 0), ("refined", args.refine_crops)) if refined else (("plain", 0),):
        with create_backend("mediapipe", tracking=False, refine_crops=crops, **SINGLE) as single:
            references[label] = [[single.detect(frame) for frame in c] for c in cams]
            floor = nanmedian(shift_jitter(single, cams, references[label]))
        results[f"{label}_reference_shift_median_px"] = floor
        print(f"{label} single-person result vs itself on the frame shifted by {SHIFT_PX} px: median {fmt(floor)} px",
              flush=True)
    if args.average_shifts > 0:
        with create_backend("mediapipe", tracking=False, **SINGLE) as single:
            references["averaged"] = [[averaged_reference(single, frame, args.average_shifts) for frame in c]
                                      for c in cams]
        floor = nanmedian([median_difference(ref.keypoints[0], ref.confidence[0], mean)
                           for refs, means in zip(references["plain"], references["averaged"], strict=True)
                           for ref, mean in zip(refs, means, strict=True) if ref.num_people])
        results["plain_reference_vs_averaged_px"] = floor
        print(f"plain single-person result vs the single-person result averaged over {args.average_shifts} shifted "
              f"frames: median {fmt(floor)} px", flush=True)
    views = OtherViews(args.calibration, references["plain"], args.scale) if args.calibration else None
    if views:
        for label, refs in references.items():
            errors = [views.errors(k, t, ref.keypoints[0], ref.confidence[0])
                      for k, c in enumerate(refs) for t, ref in enumerate(c) if ref.num_people]
            results[f"{label}_reference_accuracy_px"] = float(np.median(np.concatenate(errors)))
            print(f"{label} single-person result vs the other cameras: median "
                  f"{results[f'{label}_reference_accuracy_px']:.2f} px", flush=True)

    options = {"window_aspect": args.window_aspect, "rescan": args.rescan}
    for people in (1, 2, 3, 4):
        found, total, diffs, times, base_times, tracked_switches = 0, 0, {k: [] for k in references}, [], [], 0
        errors, base_diffs, base_errors = [], {k: [] for k in references}, []
        with (create_backend("mediapipe", tracking=False, refine_crops=args.refine_crops, **options) as still,
              create_backend("mediapipe", tracking=False, **options) as baseline,
              create_backend("mediapipe", tracking=True, refine_crops=args.refine_crops, **options) as video):
            tracker = PersonTracker()
            last_ids: list[int | None] = [None] * people
            for t in range(count):
                image, offsets = tile([cams[k][t] for k in range(people)])
                start = time.perf_counter()
                det = still.detect(image)
                times.append((time.perf_counter() - start) * 1e3)
                if refined:  # the same backend without the pass, same image, same run
                    start = time.perf_counter()
                    base = baseline.detect(image)
                    base_times.append((time.perf_counter() - start) * 1e3)
                tracked = video.detect(image)
                ids = tracker.update(tracked.keypoints, tracked.confidence)
                for k in range(people):
                    ref = references["plain"][k][t]
                    if ref.num_people == 0:
                        continue
                    shift = np.array([offsets[k], 0.0])
                    total += 1
                    index, _ = match_reference(det.keypoints, det.confidence, ref.keypoints[0] + shift,
                                               ref.confidence[0])
                    if index >= 0:
                        found += 1
                        person = det.keypoints[index] - shift
                        for label, refs in references.items():
                            diffs[label].append(median_difference(person, det.confidence[index], refs[k][t]))
                        if views:
                            errors.append(views.errors(k, t, person, det.confidence[index]))
                    if refined:
                        index, _ = match_reference(base.keypoints, base.confidence, ref.keypoints[0] + shift,
                                                   ref.confidence[0])
                        if index >= 0:
                            for label, refs in references.items():
                                base_diffs[label].append(median_difference(base.keypoints[index] - shift,
                                                                           base.confidence[index], refs[k][t]))
                            if views:
                                base_errors.append(views.errors(k, t, base.keypoints[index] - shift,
                                                                base.confidence[index]))
                    tracked_index, _ = match_reference(tracked.keypoints, tracked.confidence,
                                                       ref.keypoints[0] + shift, ref.confidence[0])
                    if tracked_index >= 0:
                        current = int(ids[tracked_index])
                        if last_ids[k] is not None and current != last_ids[k]:
                            tracked_switches += 1
                        last_ids[k] = current
        plain = [d for d in diffs["plain"] if np.isfinite(d)]
        row = {"recall": found / max(total, 1), "found": found, "total": total,
               "median_diff_px": nanmedian(plain),
               "p90_diff_px": float(np.percentile(plain, 90)) if plain else None,
               "ms_median": float(np.median(times[1:] or times)), "ms_p90": float(np.percentile(times, 90)),
               "image": f"{image.shape[1]}x{image.shape[0]}", "id_switches": tracked_switches}
        line = (f"{people} people ({row['image']}): recall {found}/{total} = {row['recall']:.3f}, median diff "
                f"{fmt(row['median_diff_px'])} px (p90 {fmt(row['p90_diff_px'])})")
        if refined:
            row["median_diff_refined_reference_px"] = nanmedian(diffs["refined"])
            row["ms_without_pass"] = float(np.median(base_times[1:] or base_times))
            row["median_diff_without_pass_px"] = nanmedian(base_diffs["plain"])
            if views:
                row["accuracy_without_pass_px"] = float(np.median(np.concatenate(base_errors))) if base_errors \
                    else None
            row["time_ratio"] = row["ms_median"] / row["ms_without_pass"]
            line += (f", vs the refined reference {fmt(row['median_diff_refined_reference_px'])} px (without the "
                     f"pass: {fmt(row['median_diff_without_pass_px'])} px vs plain)")
        if "averaged" in references:
            row["median_diff_averaged_reference_px"] = nanmedian(diffs["averaged"])
            line += f", vs the averaged reference {fmt(row['median_diff_averaged_reference_px'])} px"
            if refined:
                row["median_diff_averaged_without_pass_px"] = nanmedian(base_diffs["averaged"])
                line += f" (without the pass {fmt(row['median_diff_averaged_without_pass_px'])})"
        if views:
            row["accuracy_px"] = float(np.median(np.concatenate(errors))) if errors else None
            line += f", vs the other cameras {fmt(row['accuracy_px'])} px"
            if refined:
                line += f" (without the pass {fmt(row.get('accuracy_without_pass_px'))})"
        line += f", {row['ms_median']:.0f} ms/image (p90 {row['ms_p90']:.0f})"
        if refined:
            line += f" = {row['time_ratio']:.2f} x without the pass ({row['ms_without_pass']:.0f} ms)"
        line += f", id switches {tracked_switches}"
        results["people"][people] = row
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

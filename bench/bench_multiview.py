"""More cameras than two: N-view triangulation against the best camera pair, in accuracy and in time.

Run: ``python bench/bench_multiview.py [--people 3] [--seconds 6] [--noise detector] [--json out.json]
[--calibration Calib.qca.txt --keypoints detections.npz]``.

Synthetic: four cameras in the corners of the demo room, procedural people, one detector error stream per camera.
Every pair, every triple and all four cameras triangulate the same frames (`cvpose_ros.multiview`); MPJPE against
the truth is printed as a ratio to the best pair (chosen in hindsight, so the ratio is conservative), and the time
per frame as a ratio to one pair, measured in the same run.
Real (optional, by hand): a >= 4-camera calibration and cached detections (`cvpose-eval --detections-cache`
format); with no truth, each camera in turn is held out and the others' triangulations are scored by their
reprojection error in it (a view they did not use).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from cvpose_ros import synthetic
from cvpose_ros.calibration import CalibratedCamera, read_calibration
from cvpose_ros.multiview import align, estimate_lags, residuals, triangulate_views

ROOM = synthetic.ROOM_SIZE_M


def corner_rig() -> list[CalibratedCamera]:
    """Four 1280x720 cameras near the ceiling corners, aimed at the middle of the room."""
    aim = np.array([ROOM[0] / 2, ROOM[1] / 2, 0.8])
    corners = [(0.1, 0.1), (ROOM[0] - 0.1, 0.1), (ROOM[0] - 0.1, ROOM[1] - 0.1), (0.1, ROOM[1] - 0.1)]
    dist = np.array([-0.12, 0.04, 0.0005, -0.0004, 0.0])
    cams = [synthetic._camera(f"cam{i}", [x, y, 2.8], aim, 800.0 + 10 * i, (1280, 720), dist)
            for i, (x, y) in enumerate(corners)]
    return [CalibratedCamera(c.name, c.model, c.cam_from_world) for c in cams]


def mpjpe_mm(points: np.ndarray, truth: np.ndarray) -> float:
    return float(np.nanmean(np.linalg.norm(points - truth, axis=-1)) * 1000.0)


def time_per_call(fn, min_time: float = 0.5) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time:
        fn()
        count += 1
    return (time.perf_counter() - start) / count


def synthetic_run(people: int, seconds: float, noise: str, seed: int) -> dict:
    cameras = corner_rig()
    rig_cams = [synthetic.RigCamera(c.name, c.model, c.cam_from_world, f"{c.name}_optical_frame") for c in cameras]
    scene = synthetic.generate_scene(people, seconds, 30.0, seed=seed, room=ROOM)
    views = [synthetic.project_view(scene, cam, noise, seed * 10 + i) for i, cam in enumerate(rig_cams)]
    pixels = np.stack([v.keypoints for v in views])       # (V, T, P, J, 2)
    conf = np.stack([v.confidence for v in views])        # (V, T, P, J)
    truth = scene.joints
    results: dict[str, dict] = {}
    for size in (2, 3, 4):
        for subset in itertools.combinations(range(4), size):
            sel = list(subset)
            for robust in ((False, True) if size >= 4 else (False,)):
                cams = [cameras[i] for i in sel]
                points = triangulate_views(cams, pixels[sel], conf[sel], reject_outliers=robust)
                key = "+".join(str(i) for i in sel) + (" robust" if robust else "")
                results[key] = {"views": size, "mpjpe_mm": mpjpe_mm(points, truth),
                                "seconds": time_per_call(lambda c=cams, s=sel, r=robust: triangulate_views(
                                    c, pixels[s, :1], conf[s, :1], reject_outliers=r), 0.3)}
    return results


def real_run(calibration: Path, keypoints: Path) -> dict:
    cameras = read_calibration([calibration])
    data = np.load(keypoints)
    pix = [data[f"keypoints_{i}"] for i in range(len(cameras))]
    conf = [data[f"confidence_{i}"] for i in range(len(cameras))]
    lags, _ = estimate_lags(cameras, pix, conf)
    P, C = np.stack(align(pix, lags)), np.stack(align(conf, lags))
    out: dict[str, dict] = {}
    for held in range(len(cameras)):
        others = [i for i in range(len(cameras)) if i != held]
        scores = {}
        for size in range(2, len(others) + 1):
            for subset in itertools.combinations(others, size):
                sel = list(subset)
                for robust in ((False, True) if size >= 4 else (False,)):
                    points = triangulate_views([cameras[i] for i in sel], P[sel], C[sel], 0.5, reject_outliers=robust)
                    error = residuals([cameras[held]], points, P[held:held + 1], C[held:held + 1], 0.5)
                    scores["+".join(str(i) for i in sel) + (" robust" if robust else "")] = float(np.nanmedian(error))
        out[cameras[held].name] = scores
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--people", type=int, default=3)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--noise", default="detector")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibration", type=Path)
    p.add_argument("--keypoints", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    report: dict = {"synthetic": synthetic_run(args.people, args.seconds, args.noise, args.seed)}
    rows = report["synthetic"]
    pairs = {k: v for k, v in rows.items() if v["views"] == 2}
    best_pair = min(pairs, key=lambda k: pairs[k]["mpjpe_mm"])
    base_time = float(np.mean([v["seconds"] for v in pairs.values()]))
    print(f"synthetic: 4 corner cameras, {args.people} people, {args.seconds:g} s, noise {args.noise}; "
          f"best pair {best_pair} ({pairs[best_pair]['mpjpe_mm']:.1f} mm)")
    print(f"{'cameras':<14} {'MPJPE mm':>9} {'/ best pair':>12} {'time / pair':>12}")
    for key, row in rows.items():
        print(f"{key:<14} {row['mpjpe_mm']:9.1f} {row['mpjpe_mm'] / pairs[best_pair]['mpjpe_mm']:12.2f} "
              f"{row['seconds'] / base_time:12.2f}")
    if args.calibration and args.keypoints:
        report["real"] = real_run(args.calibration, args.keypoints)
        print("real: median reprojection error (px) in the held-out camera")
        for held, scores in report["real"].items():
            pair_scores = [v for k, v in scores.items() if k.count("+") == 1]
            line = ", ".join(f"{k} {v:.1f}" for k, v in scores.items() if k.count("+") >= 2)
            print(f"  held out {held}: pairs mean {np.mean(pair_scores):.1f}, best {min(pair_scores):.1f}; {line}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

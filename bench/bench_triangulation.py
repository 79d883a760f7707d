"""Throughput of the batched triangulation against a plain per-joint numpy DLT loop, on CPU.

Run: ``python bench/bench_triangulation.py [--batches 1 64 1024] [--min-time 1.0]``. Prints the machine and a
table of poses/s (one pose = one person's 17 joints from two views) and the speed-up over the loop baseline
measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np

from cvpose_ros.geometry.camera import CameraModel, RigidTransform, projection_matrix
from cvpose_ros.geometry.triangulation import triangulate_dlt, triangulate_pair

NUM_JOINTS = 17


def make_scene(people: int, seed: int = 0) -> dict:
    """Two distorted HD cameras 5 m from a crowd, noisy raw pixels and confidences for `people` people."""
    rng = np.random.default_rng(seed)
    K = np.array([[1100.0, 0.0, 960.0], [0.0, 1100.0, 540.0], [0.0, 0.0, 1.0]])
    cam0 = CameraModel(K, [-0.25, 0.07, 5e-4, -3e-4, -0.01], "plumb_bob", 1920, 1080)
    cam1 = CameraModel(K, [-0.22, 0.05, -4e-4, 2e-4, -0.005], "plumb_bob", 1920, 1080)
    cam0_from_world = RigidTransform.look_at([5.0, 0.0, 1.6], [0.0, 0.0, 1.0])
    cam1_from_world = RigidTransform.look_at([0.5, 5.0, 1.8], [0.0, 0.0, 1.0])
    world = rng.uniform([-1, -1, 0.9], [1, 1, 1.1], (people, 1, 3)) + rng.normal(0, [0.2, 0.2, 0.4],
                                                                                  (people, NUM_JOINTS, 3))
    kp0 = cam0.project(cam0_from_world.apply(world)) + rng.normal(0, 3.0, (people, NUM_JOINTS, 2))
    kp1 = cam1.project(cam1_from_world.apply(world)) + rng.normal(0, 3.0, (people, NUM_JOINTS, 2))
    conf0, conf1 = rng.uniform(0.3, 1.0, (2, people, NUM_JOINTS))
    return dict(cam0=cam0, cam1=cam1, cam1_from_cam0=cam1_from_world.compose(cam0_from_world.inverse()),
                kp0=kp0, conf0=conf0, kp1=kp1, conf1=conf1)


def loop_baseline(scene: dict) -> np.ndarray:
    """Reference: undistort each view (vectorised, as any user would), then one least-squares solve per person and
    joint. Same maths as `triangulate_dlt` (rows scaled by their rotation part, times confidence): outputs must
    agree.
    """
    norm0 = scene["cam0"].undistort_points(scene["kp0"])
    norm1 = scene["cam1"].undistort_points(scene["kp1"])
    proj0 = projection_matrix(RigidTransform.identity())
    proj1 = projection_matrix(scene["cam1_from_cam0"])
    people = norm0.shape[0]
    out = np.full((people, NUM_JOINTS, 3), np.nan)
    for p in range(people):
        for j in range(NUM_JOINTS):
            rows = []
            for proj, point, weight in ((proj0, norm0[p, j], scene["conf0"][p, j]),
                                        (proj1, norm1[p, j], scene["conf1"][p, j])):
                for row in (point[0] * proj[2] - proj[0], point[1] * proj[2] - proj[1]):
                    rows.append(weight * row / np.linalg.norm(row[:3]))
            system = np.array(rows)
            out[p, j] = np.linalg.lstsq(system[:, :3], -system[:, 3], rcond=None)[0]
    return out


def batched_dlt(scene: dict) -> np.ndarray:
    """The same single-frame DLT through `triangulate_dlt` (undistortion included)."""
    normalised = np.stack([scene["cam0"].undistort_points(scene["kp0"]),
                           scene["cam1"].undistort_points(scene["kp1"])], axis=1)
    proj = np.stack([projection_matrix(RigidTransform.identity()), projection_matrix(scene["cam1_from_cam0"])])
    return triangulate_dlt(proj, normalised, np.stack([scene["conf0"], scene["conf1"]], axis=1))


def full_pair(scene: dict) -> np.ndarray:
    """Everything the node does: undistortion, DLT in both frames, validity and reprojection error."""
    return triangulate_pair(scene["cam0"], scene["cam1"], scene["cam1_from_cam0"], scene["kp0"], scene["conf0"],
                            scene["kp1"], scene["conf1"]).cam0


def seconds_per_call(fn: Callable[[dict], np.ndarray], scene: dict, min_time: float) -> float:
    """Best time of repeated calls (the best is the least disturbed by other processes on a shared machine)."""
    fn(scene)  # warm-up
    best, spent = np.inf, 0.0
    while spent < min_time:
        start = time.perf_counter()
        fn(scene)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return best


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo where there is one, else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024], help="people per call")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds spent timing each entry")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}")
    if hasattr(os, "getloadavg"):
        print(f"load average at start: {os.getloadavg()[0]:.2f} (timings are the best of repeats)")
    print(f"{'people':>7} | {'loop poses/s':>13} | {'triangulate_dlt':>22} | {'triangulate_pair':>22}")
    for people in args.batches:
        scene = make_scene(people)
        reference = loop_baseline(scene)
        assert np.allclose(batched_dlt(scene), reference, atol=1e-9), "batched DLT disagrees with the loop"
        assert np.nanmax(np.abs(full_pair(scene) - reference)) < 1e-6, "triangulate_pair disagrees with the loop"
        rates = [people / seconds_per_call(fn, scene, args.min_time) for fn in (loop_baseline, batched_dlt, full_pair)]
        print(f"{people:>7} | {rates[0]:>13,.0f} | {rates[1]:>11,.0f} ({rates[1] / rates[0]:>6.1f}x) | "
              f"{rates[2]:>11,.0f} ({rates[2] / rates[0]:>6.1f}x)")


if __name__ == "__main__":
    main()

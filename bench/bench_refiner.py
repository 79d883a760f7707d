"""Refinement throughput (poses/s) at several batch sizes, compared with triangulation alone in the same run.

    python bench/bench_refiner.py [--checkpoint FILE] [--batches 1 64 1024] [--threads N] [--devices cpu cuda]

Without --checkpoint a randomly initialised full-size CV-UGCN is saved to a temporary file and loaded through
`Refiner`, exactly as the node does (the speed does not depend on the weights). Reports, per device and batch size:
triangulation poses/s, refinement-only poses/s, triangulation + refinement poses/s, and the ratio of the full
pipeline's throughput to triangulation alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.camera import CameraModel, RigidTransform
from cvpose_ros.guard import guard_refinement
from cvpose_ros.model.checkpoint import save_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import create_model
from cvpose_ros.refiner import Refiner
from cvpose_ros.triangulation import triangulate_pair


def _frame(people: int, rng: np.random.Generator):
    """Noisy keypoints of `people` random bodies seen by two cameras 90 degrees apart."""
    cam = CameraModel(np.array([[1000.0, 0, 500], [0, 1000.0, 500], [0, 0, 1]]), np.array([-0.05, 0.01, 0, 0, 0]),
                      "plumb_bob", 1000, 1000)
    cam0_from_world = RigidTransform.look_at([4.5, 0, 1.4], [0, 0, 1.0])
    cam1_from_world = RigidTransform.look_at([0, 4.5, 1.6], [0, 0, 1.0])
    world = rng.normal(scale=0.3, size=(people, 17, 3)) + [0.0, 0.0, 1.0]
    kp0 = cam.project(cam0_from_world.apply(world)) + rng.normal(scale=5.0, size=(people, 17, 2))
    kp1 = cam.project(cam1_from_world.apply(world)) + rng.normal(scale=5.0, size=(people, 17, 2))
    conf = np.ones((people, 17))
    return cam, cam1_from_world.compose(cam0_from_world.inverse()), kp0, conf, kp1


def _rate(fn, people: int, min_seconds: float, sync) -> float:
    """Poses per second of fn(), timed over repeated calls (at least 3, at least min_seconds)."""
    fn()
    sync()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_seconds:
        fn()
        sync()
        calls += 1
    return people * calls / (time.perf_counter() - start)


def run(checkpoint: Path, devices: list[str], batches: list[int], min_seconds: float) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for device in devices:
        refiner = Refiner(checkpoint, device=device)
        sync = torch.cuda.synchronize if refiner.device.type == "cuda" else (lambda: None)
        for people in batches:
            cam, transform, kp0, conf, kp1 = _frame(people, rng)
            tri = triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf)
            tri_rate = _rate(lambda: triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf), people,  # noqa: B023
                             min_seconds, lambda: None)
            refine_rate = _rate(lambda: refiner.refine(tri, transform), people, min_seconds, sync)  # noqa: B023
            both_rate = _rate(lambda: refiner.refine(triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf),  # noqa: B023
                                                     transform), people, min_seconds, sync)  # noqa: B023
            refined = refiner.refine(tri, transform)[0]
            guard_rate = _rate(lambda: guard_refinement(tri.cam0, refined, tri.reprojection_error, cam.project,  # noqa: B023
                                                        cam.project, transform.apply, kp0, kp1),  # noqa: B023
                               people, min_seconds, lambda: None)
            rows.append(dict(device=str(refiner.device), batch=people, triangulation=tri_rate, refine=refine_rate,
                             pipeline=both_rate, ratio=both_rate / tri_rate, guard=guard_rate,
                             guard_vs_refine=refine_rate / guard_rate))
            print(f"{rows[-1]['device']:>6} batch {people:5d}: triangulation {tri_rate:10.0f} poses/s | refine only "
                  f"{refine_rate:10.0f} | triangulate+refine {both_rate:10.0f} | ratio {rows[-1]['ratio']:.3f} | "
                  f"guard {guard_rate:10.0f} (time {rows[-1]['guard_vs_refine']:.2f} x refine only)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights to load (default: random full size)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timing window per measurement")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, GPU: {gpu}")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            torch.manual_seed(0)
            checkpoint = save_checkpoint(Path(tmp) / "random.pt", create_model(FeatureSpec()).eval(), FeatureSpec())
        run(checkpoint, devices, args.batches, args.min_seconds)


if __name__ == "__main__":
    main()

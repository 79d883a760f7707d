"""Refinement throughput (poses/s) per runtime (torch, ONNX Runtime) and batch size, side by side in one run,
compared with triangulation alone.

    python bench/bench_refiner.py [--checkpoint FILE] [--batches 1 5 64 1024] [--threads N]
                                  [--runtimes torch onnxruntime onnxruntime-int8] [--devices cpu cuda]
                                  [--out results.json]
                                  [--clock wall|cpu]

Without --checkpoint the packaged h36m17 weights are used (a randomly initialised network of the same size when
they are missing: the speed does not depend on the weights), loaded through `Refiner` exactly as the node does
(ONNX Runtime gets the in-memory export of the same weights; `onnxruntime-int8` the same graph with int8 weights
as `cvpose-export --int8` writes it, CPU only). Reports, per runtime, device and batch size:
triangulation poses/s, refinement-only poses/s, triangulation + refinement poses/s, the ratio of the full
pipeline's throughput to triangulation alone, the guard's cost (pixel rule, as for h36m17, and the coco17 evidence
test), and at the end each runtime's speed-up over torch
on the same device and batch. The measurements of the runtimes are interleaved batch by batch, so a machine busy
with other work slows them alike and the ratios stay meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.triangulation import triangulate_pair
from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, save_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import create_model
from cvpose_ros.refine.guard import guard_refinement
from cvpose_ros.refine.refiner import Refiner


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


CLOCK = [time.perf_counter]  # --clock cpu: time.process_time (CPU time of this process; steadier on a busy machine)


def _rate(fn, people: int, min_seconds: float, sync) -> float:
    """Poses per second of fn(), timed over repeated calls (at least 3, at least min_seconds)."""
    fn()
    sync()
    calls, start = 0, CLOCK[0]()
    while calls < 3 or CLOCK[0]() - start < min_seconds:
        fn()
        sync()
        calls += 1
    return people * calls / (CLOCK[0]() - start)


def _configurations(runtimes: list[str], devices: list[str] | None) -> list[tuple[str, str]]:
    """(runtime, device) pairs: the given devices, or cpu plus every GPU path this machine offers."""
    explicit = devices is not None
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    pairs = [(runtime, device) for device in devices for runtime in runtimes
             if not (runtime == "onnxruntime-int8" and device != "cpu")]  # int8 MatMul is a CPU kernel
    try:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        if not explicit and "CUDAExecutionProvider" not in available and ("onnxruntime", "cuda") in pairs:
            print(f"onnxruntime on cuda left out: this onnxruntime build offers only {available} "
                  "(onnxruntime-gpu has the CUDA provider)")
            pairs.remove(("onnxruntime", "cuda"))
        if not explicit and "TensorrtExecutionProvider" in available \
                and "onnxruntime" in runtimes and torch.cuda.is_available():
            pairs.append(("onnxruntime", "tensorrt"))
    except ImportError:
        pairs = [p for p in pairs if not p[0].startswith("onnxruntime")]
    return pairs


def _refiner(checkpoint: Path, runtime: str, device: str, threads: int | None) -> Refiner:
    """The refiner of one configuration; onnxruntime-int8 loads the quantised export from a temporary file."""
    if runtime != "onnxruntime-int8":
        return Refiner(checkpoint, device=device, runtime=runtime, num_threads=threads)
    from cvpose_ros.model.checkpoint import load_checkpoint
    from cvpose_ros.model.onnx_export import export_onnx
    from cvpose_ros.model.onnx_quantize import quantize_int8

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "int8.onnx"
        path.write_bytes(quantize_int8(export_onnx(load_checkpoint(checkpoint, "cpu"), check=False).model_bytes))
        return Refiner(path, device=device, runtime="onnxruntime", num_threads=threads)


def run(checkpoint: Path, configurations: list[tuple[str, str]], batches: list[int], min_seconds: float,
        threads: int | None) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    refiners = {(runtime, device): _refiner(checkpoint, runtime, device, threads) for runtime, device in configurations}
    for people in batches:
        cam, transform, kp0, conf, kp1 = _frame(people, rng)
        tri = triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf)
        tri_rate = _rate(lambda: triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf), people,  # noqa: B023
                         min_seconds, lambda: None)
        for (runtime, device), refiner in refiners.items():
            sync = torch.cuda.synchronize if refiner.device.type == "cuda" else (lambda: None)
            refine_rate = _rate(lambda: refiner.refine(tri, transform), people, min_seconds, sync)  # noqa: B023
            both_rate = _rate(lambda: refiner.refine(triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf),  # noqa: B023
                                                     transform), people, min_seconds, sync)  # noqa: B023
            refined = refiner.refine(tri, transform)[0]
            guard_rate = _rate(lambda: guard_refinement(tri.cam0, refined, tri.reprojection_error, cam.project,  # noqa: B023
                                                        cam.project, transform.apply, kp0, kp1),  # noqa: B023
                               people, min_seconds, lambda: None)
            evidence_rate = _rate(lambda: guard_refinement(tri.cam0, refined, tri.reprojection_error,  # noqa: B023
                                                           cam.project, cam.project, transform.apply, kp0,  # noqa: B023
                                                           kp1, layout="coco17"),  # noqa: B023
                                  people, min_seconds, lambda: None)
            rows.append(dict(runtime=runtime, device=device, where=refiner.backend.where, batch=people,
                             triangulation=tri_rate, refine=refine_rate, pipeline=both_rate,
                             ratio=both_rate / tri_rate, guard=guard_rate, guard_vs_refine=refine_rate / guard_rate,
                             guard_evidence=evidence_rate, evidence_vs_refine=refine_rate / evidence_rate))
            r = rows[-1]
            print(f"{runtime:>11} {device:>8} batch {people:5d}: triangulation {tri_rate:9.0f} poses/s | refine "
                  f"only {refine_rate:8.0f} | triangulate+refine {both_rate:8.0f} | ratio {r['ratio']:.3f} | "
                  f"guard {guard_rate:9.0f} ({r['guard_vs_refine']:.2f} x refine only; evidence test "
                  f"{r['evidence_vs_refine']:.2f} x)", flush=True)
    print("speed-up over torch on the same device (triangulate+refine poses/s):")
    for row in rows:
        base = next((b for b in rows if b["runtime"] == "torch" and b["batch"] == row["batch"]
                     and b["device"] == row["device"]), None)
        if base is not None and row is not base:
            row["vs_torch"] = row["pipeline"] / base["pipeline"]
            print(f"  {row['runtime']:>11} {row['device']:>8} batch {row['batch']:5d}: {row['vs_torch']:.2f} x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights to load (default: packaged h36m17)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 5, 64, 1024])
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnxruntime", "onnxruntime-int8"],
                        choices=["torch", "onnxruntime", "onnxruntime-int8"])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads of both runtimes "
                                                                   "(default: their own)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timing window per measurement")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier when other work shares the CPU; "
                             "meaningful with --threads 1 on the CPU only)")
    args = parser.parse_args()
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"GPU: {gpu}")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or DEFAULT_CHECKPOINTS["h36m17"]
        if not checkpoint.exists():
            torch.manual_seed(0)
            checkpoint = save_checkpoint(Path(tmp) / "random.pt", create_model(FeatureSpec()).eval(), FeatureSpec())
        rows = run(checkpoint, _configurations(args.runtimes, args.devices), args.batches, args.min_seconds,
                   args.threads)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""CPU time per frame of refiner_node's own work, without DDS: message -> arrays, validation, association,
triangulation, refinement (torch, ONNX Runtime, or ONNX Runtime with the int8 export), guard, and the output
messages (skeletons, coarse, markers, TF).

This is the node's `_on_keypoints` path minus publishing, run in this process on a synthetic 30 Hz scene, timed in
this process's CPU time (steadier than wall time when other work shares the machine). Rows: triangulation only,
then refined with each runtime; ratios against refined torch at the same people count. --profile prints the top
functions of each row (cProfile) to find what is worth cutting.

    python bench/bench_frame_path.py [--people 1 5] [--runtimes torch onnxruntime onnxruntime-int8] [--frames 150]
                                     [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import time

import numpy as np


def _frames(people: int, count: int):
    from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
    from cvpose_ros.ros.conversions import keypoints_to_msg

    rig = make_rig("demo")
    scene = generate_scene(people, count / 30.0 + 0.5, 30.0, seed=people)
    views = project_scene(scene, rig, noise="detector", seed=people)
    msgs = [tuple(keypoints_to_msg(1_000_000_000 + t * 33_333_333, f"cam{c}_optical_frame", views[c].keypoints[t],
                                   views[c].confidence[t]) for c in (0, 1)) for t in range(count)]
    return rig, msgs


_INT8_DIR: list = []


def _int8_files() -> list[str]:
    """Both layouts' packaged weights as `cvpose-export --int8` writes them (made once, in a temporary folder)."""
    import tempfile

    from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, load_checkpoint
    from cvpose_ros.model.onnx_export import export_onnx
    from cvpose_ros.model.onnx_quantize import quantize_int8

    if not _INT8_DIR:
        _INT8_DIR.append(tempfile.TemporaryDirectory())
        for layout, path in DEFAULT_CHECKPOINTS.items():
            model = quantize_int8(export_onnx(load_checkpoint(path, "cpu"), check=False).model_bytes)
            with open(os.path.join(_INT8_DIR[0].name, f"{layout}_int8.onnx"), "wb") as f:
                f.write(model)
    return sorted(os.path.join(_INT8_DIR[0].name, name) for name in os.listdir(_INT8_DIR[0].name))


def measure(people: int, runtime: str | None, count: int, profile: bool) -> float:
    """Mean CPU ms per frame; runtime None = triangulation only."""
    from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
    from cvpose_ros.refine.refiner import LayoutRefiners
    from cvpose_ros.ros.conversions import keypoints_from_msg, skeletons_to_msg
    from cvpose_ros.ros.markers import skeleton_markers
    from cvpose_ros.ros.tf import TfNaming, skeleton_transforms

    rig, msgs = _frames(people, count)
    cameras = CameraSetup(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0)
    refiners = None if runtime is None else LayoutRefiners(_int8_files() if runtime == "onnxruntime-int8" else [],
                                                           "cpu", num_threads=1,
                                                           runtime=runtime.removesuffix("-int8"))
    pipeline = SkeletonPipeline(refiners)
    naming = TfNaming("", "body_{id}", "{joint}_{id}")

    def frame(pair) -> None:
        result = pipeline.process(cameras, keypoints_from_msg(pair[0]), keypoints_from_msg(pair[1]))
        for s in (result.refined, result.coarse):
            skeletons_to_msg(result.stamp_ns, "cam0", s.track_ids, s.joints, s.confidence, s.reprojection_error,
                             result.layout)
        r = result.refined
        skeleton_markers(result.stamp_ns, "cam0", r.track_ids, r.joints, 0.3, layout=result.layout)
        skeleton_transforms(result.stamp_ns, "cam0", r.track_ids, r.joints, naming, result.layout)

    for pair in msgs[:10]:  # warm-up
        frame(pair)
    start = time.process_time()
    for pair in msgs:
        frame(pair)
    ms = (time.process_time() - start) / len(msgs) * 1e3
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for pair in msgs:
            frame(pair)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnxruntime", "onnxruntime-int8"],
                        choices=["torch", "onnxruntime", "onnxruntime-int8"])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3, help="measure each row this often, keep the fastest")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}, torch {torch.__version__} (1 thread), CPU ms per frame (best of "
          f"{args.repeats})")
    for people in args.people:
        rows = {}
        for runtime in (None, *args.runtimes):
            rows[runtime] = min(measure(people, runtime, args.frames, args.profile) for _ in range(args.repeats))
            name = f"refined {runtime}" if runtime else "triangulation"
            print(f"{people} people {name:>20}: {rows[runtime]:6.2f} ms", flush=True)
        base = rows.get("torch")
        if base:
            ratios = [f"{('refined ' + k) if k else 'triangulation'} {v / base:.2f}" for k, v in rows.items()
                      if k != "torch"]
            print("  ratio to refined torch: " + ", ".join(ratios))
        shares = [f"{k} {np.clip(1 - rows[None] / v, 0, 1):.0%}" for k, v in rows.items() if k]
        print("  refinement's share of the refined frame: " + ", ".join(shares))


if __name__ == "__main__":
    main()

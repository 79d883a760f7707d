"""`cvpose-demo` (run by `make demo`): the whole ROS graph on an embedded synthetic scene, in about a minute.

A scene node plays two cameras and a detector (people walking, waving and crouching in a room, CPN-like 2D noise),
the refiner node (in its own process, as on a robot; `--in-process` keeps it here) turns their keypoints into
skeletons with the shipped weights, a recorder writes inputs and outputs to an mcap rosbag2, and a collector scores
the outputs against the truth. Prints triangulation vs refined MPJPE, end-to-end latency p50/p99 and output rate;
writes `demo_output/demo_bag` and `demo_output/skeletons.png`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from cvpose_ros.body.skeleton import LAYOUTS
from cvpose_ros.devtools import bag_io
from cvpose_ros.devtools.demo_figure import save_skeleton_figure
from cvpose_ros.devtools.scoring import PoseScore, latency_summary, rate_hz
from cvpose_ros.ros.diagnostics import diagnostics_values
from cvpose_ros.ros.graph import BackgroundGraph
from cvpose_ros.ros.recorder import BagRecorder, OutputCollector, ReceivedSkeletons
from cvpose_ros.ros.refiner_process import RefinerProcess
from cvpose_ros.ros.scene_node import SceneNode, extrinsics_parameters

RECORDED = {
    "/cam0/keypoints": (Keypoints2D, bag_io.KEYPOINTS_TYPE), "/cam1/keypoints": (Keypoints2D, bag_io.KEYPOINTS_TYPE),
    "/cam0/camera_info": (CameraInfo, bag_io.CAMERA_INFO_TYPE),
    "/cam1/camera_info": (CameraInfo, bag_io.CAMERA_INFO_TYPE),
    "/ground_truth": (Skeleton3DArray, bag_io.SKELETONS_TYPE), "/skeletons": (Skeleton3DArray, bag_io.SKELETONS_TYPE),
    "/skeletons_coarse": (Skeleton3DArray, bag_io.SKELETONS_TYPE),
    "/skeleton_markers": (MarkerArray, "visualization_msgs/msg/MarkerArray"),
    "/tf": (TFMessage, bag_io.TF_TYPE), "/tf_static": (TFMessage, bag_io.TF_TYPE),
    "/diagnostics": (DiagnosticArray, "diagnostic_msgs/msg/DiagnosticArray"),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="cvpose-demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of scene to play (default 30)")
    ap.add_argument("--people", type=int, default=3, help="people in the room (default 3)")
    ap.add_argument("--rate", type=float, default=30.0, help="camera frame rate in Hz (default 30)")
    ap.add_argument("--noise", default="detector",
                    help="detector error preset (clean, light, cpn_like, heavy, detector, detector_light; default "
                         "detector: fixed per-view offsets, one-view left/right swaps, jitter)")
    ap.add_argument("--layout", default="coco17", choices=sorted(LAYOUTS),
                    help="keypoint layout the simulated detector publishes (default coco17, as MediaPipe, RTMPose, "
                         "YOLO-pose); the refiner uses the weights of that layout")
    ap.add_argument("--rig", default="demo", help="camera rig: demo, wide, narrow, random")
    ap.add_argument("--checkpoint", default="", help="refiner weights (default: the packaged weights)")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch CPU threads for refinement (default 1: fastest when nodes share a few cores)")
    ap.add_argument("--in-process", action="store_true",
                    help="run the refiner node inside this process (default: its own process, like on a robot)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    return ap.parse_args(argv)


def _wait_until(done, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _refiner_parameters(args: argparse.Namespace, scene: SceneNode) -> dict:
    return {**extrinsics_parameters(scene.rig), "checkpoint": args.checkpoint, "publish_tf": True,
            "diagnostics_period": 1.0, "warn_throttle": 30.0}


def _in_process_refiner(args: argparse.Namespace, scene: SceneNode, context: rclpy.Context):
    import torch

    from cvpose_ros.ros.refiner_node import RefinerNode

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)  # 2 threads on a busy 2-core machine ran ~6x slower
    return RefinerNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in _refiner_parameters(args, scene).items()])


def run_demo(args: argparse.Namespace) -> dict:
    """Run the graph for `args.duration` seconds; returns the measured figures (also printed by `main`)."""
    out = Path(args.out)
    bag_path = out / "demo_bag"
    if bag_path.exists():
        shutil.rmtree(bag_path)  # our own previous run
    out.mkdir(parents=True, exist_ok=True)
    graph = BackgroundGraph()
    context = graph.context
    process = None
    try:
        scene = SceneNode(context=context, parameter_overrides=[
            Parameter("num_people", value=args.people), Parameter("duration", value=max(args.duration, 1.0)),
            Parameter("rate", value=args.rate), Parameter("rig", value=args.rig),
            Parameter("noise", value=args.noise), Parameter("seed", value=args.seed),
            Parameter("layout", value=args.layout)])
        scene.pause()
        graph.add(scene)
        if args.in_process:
            graph.add(_in_process_refiner(args, scene, context))
        else:
            process = RefinerProcess(_refiner_parameters(args, scene), out, args.torch_threads)
        recorder = graph.add(BagRecorder(bag_path, RECORDED, "mcap", context=context))
        collector = graph.add(OutputCollector(context=context))
        truth_by_stamp: dict[int, np.ndarray] = {}
        scene.on_frame = lambda stamp, t: truth_by_stamp.__setitem__(stamp, scene.scene.joints[t])
        graph.start()
        node_died = (lambda: not process.alive()) if process else (lambda: False)
        _wait_until(lambda: node_died() or (collector.count_publishers("skeletons") >= 1
                                            and scene.count_subscribers("cam0/keypoints") >= 2), 90.0)
        if node_died():
            raise RuntimeError(f"refiner_node did not start: {process.failure()}")
        frames = int(round(args.duration * args.rate))
        scene.resume()
        _wait_until(lambda: node_died() or scene.frames_published >= frames, args.duration * 3 + 10)
        scene.pause()
        _wait_until(lambda: collector.store.count("skeletons") >= scene.frames_published, 2.0)
        reports = len(collector.store.diagnostics)
        _wait_until(lambda: len(collector.store.diagnostics) > reports, 2.0)  # the node's counters after the run
        if node_died():
            raise RuntimeError(f"refiner_node stopped: {process.failure()}")
    finally:
        if process is not None:
            process.stop()
        graph.close()
    stats = diagnostics_values(collector.store.diagnostics[-1]) if collector.store.diagnostics else {}
    result = _report(out, bag_path, truth_by_stamp, collector.store.by_topic, stats.get("refinement", "unknown"),
                     recorder.count, args.layout)
    result["node"] = {k: stats.get(k, "n/a") for k in ("frames_in_cam0", "frames_in_cam1", "synced_pairs",
                                                        "sync_drops", "processing_ms_mean", "processing_ms_max",
                                                        "guarded_joints")}
    return result


def _report(out: Path, bag_path: Path, truth: dict[int, np.ndarray],
            outputs: dict[str, list[ReceivedSkeletons]], state: str, bag_messages: int,
            layout: str = "h36m17") -> dict:
    """Score, draw and summarise the run."""
    scores = {name: PoseScore(layout=layout) for name in ("skeletons_coarse", "skeletons")}
    for topic, score in scores.items():
        for item in outputs[topic]:
            if item.stamp_ns in truth:
                score.add(item.joints, truth[item.stamp_ns])
    refined = outputs["skeletons"]
    latencies = [o.received_ns - o.stamp_ns for o in refined]
    result = {
        "refinement": state, "layout": layout, "frames_published": len(truth), "frames_out": len(refined),
        "triangulation": scores["skeletons_coarse"].summary(), "refined": scores["skeletons"].summary(),
        "latency": latency_summary(latencies), "rate_hz": rate_hz([o.received_ns for o in refined]),
        "bag": str(bag_path), "bag_messages": bag_messages,
    }
    coarse_by_stamp = {o.stamp_ns: o.joints for o in outputs["skeletons_coarse"]}
    picks = [o for o in refined if o.stamp_ns in truth and o.stamp_ns in coarse_by_stamp and len(o.joints)]
    picks = [picks[i] for i in np.linspace(0, len(picks) - 1, min(3, len(picks))).astype(int)] if picks else []
    t0 = min(truth) if truth else 0
    tri, ref = result["triangulation"]["mpjpe_mm"], result["refined"]["mpjpe_mm"]
    summary = (f"MPJPE triangulation {tri:.1f} mm, refined {ref:.1f} mm" if tri and ref else "no scored frames")
    result["figure"] = str(save_skeleton_figure(
        out / "skeletons.png",
        [{"truth": truth[p.stamp_ns], "triangulation": coarse_by_stamp[p.stamp_ns], "refined": p.joints}
         for p in picks],
        [f"t = {(p.stamp_ns - t0) / 1e9:.1f} s" for p in picks], summary, layout)) if picks else None
    return result


def _fmt(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.1f} {unit}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.people < 1 or args.duration <= 0 or args.rate <= 0:
        print("cvpose-demo: --people, --duration and --rate must be positive", file=sys.stderr)
        return 2
    print(f"cvpose demo: {args.people} people, {args.duration:.0f} s at {args.rate:.0f} Hz, rig {args.rig}, "
          f"{args.layout} keypoints, noise {args.noise} ...", flush=True)
    start = time.monotonic()
    try:
        r = run_demo(args)
    except Exception as err:  # one clear line, not a traceback, for a newcomer's first command
        print(f"cvpose-demo: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    tri, ref = r["triangulation"]["mpjpe_mm"], r["refined"]["mpjpe_mm"]
    print(f"  refinement        : {r['refinement']}")
    print(f"  frames            : {r['frames_out']} skeleton messages for {r['frames_published']} camera frames, "
          f"{r['refined']['people_matched']} person-frames scored")
    print(f"  MPJPE (root-rel.) : triangulation {_fmt(tri, 'mm')}  ->  refined {_fmt(ref, 'mm')}"
          + (f"  (ratio {ref / tri:.2f})" if tri and ref else ""))
    tri_abs, ref_abs = r["triangulation"]["absolute_mpjpe_mm"], r["refined"]["absolute_mpjpe_mm"]
    print(f"  MPJPE (absolute)  : triangulation {_fmt(tri_abs, 'mm')}  ->  refined {_fmt(ref_abs, 'mm')}"
          + (f"  (ratio {ref_abs / tri_abs:.2f})" if tri_abs and ref_abs else ""))
    lat = r["latency"]
    print(f"  latency           : p50 {_fmt(lat['p50_ms'], 'ms')}, p99 {_fmt(lat['p99_ms'], 'ms')} "
          f"(keypoints stamped -> skeletons received)")
    print(f"  output rate       : {_fmt(r['rate_hz'], 'Hz')}")
    n = r["node"]
    print(f"  refiner node      : {n['synced_pairs']} pairs from {n['frames_in_cam0']}/{n['frames_in_cam1']} keypoint "
          f"messages received, {n['sync_drops']} sync drops; processing {n['processing_ms_mean']} ms mean, "
          f"{n['processing_ms_max']} ms max; {n['guarded_joints']} joint corrections shortened by the guard")
    print(f"  rosbag2 (mcap)    : {r['bag']} ({r['bag_messages']} messages)")
    print(f"  picture           : {r['figure']}")
    r["wall_time_s"] = round(time.monotonic() - start, 1)
    results = Path(args.out) / "results.json"
    results.write_text(json.dumps(r, indent=2, default=str))
    print(f"  results           : {results}")
    print(f"  wall time         : {r['wall_time_s']:.0f} s")
    return 0 if r["frames_out"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

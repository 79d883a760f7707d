"""End-to-end latency and sustained rate of refiner_node at 30 Hz: triangulation only, and refined on each runtime
(torch, ONNX Runtime, ONNX Runtime with int8 weights), 1 and 5 people, side by side in one run.

The node runs in its own process (own GIL, as in deployment); this process plays a synthetic two-camera rig over
real DDS and times keypoints published (the second camera of the pair) -> skeletons received. Each configuration
gets a fresh node. "triangulation" runs with refine=false; "refined torch" / "refined onnxruntime" run the packaged
weights (else a full-size network with random weights: the compute is identical) with `runtime` set accordingly;
"refined onnxruntime-int8" runs the same weights exported by `cvpose-export --int8` (runtime onnxruntime).
The first row is the floor: an rclpy node with the same subscriptions that answers each frame at once with an empty
message (DDS, the executor and serialisation, none of the package's work). The configurations of one people count
run one after the other, so a busy machine affects them alike; compare the ratios printed at the end rather than
absolute numbers across runs. The node (and the floor) spin on the node's default executor, rclpy's EventsExecutor;
`--executor events single_threaded` adds rows on rclpy's default executor. BENCH_PROFILE=PATH writes a cProfile of
each child's spin to PATH.<pid>.

    python bench/bench_node_latency.py [--seconds 6] [--device auto] [--people 1 5] [--runtimes torch onnxruntime
                                       onnxruntime-int8] [--heap frozen|unfrozen|both]
                                       [--executor events single_threaded] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

import numpy as np
from refiner_child import camera_info_messages, finish, start_refiner_child, wait_for_node

FPS = 30.0


def _weights(folder: str) -> str:
    """The packaged h36m17 weights, or a full-size random network saved in `folder` when they are missing."""
    from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, save_checkpoint
    from cvpose_ros.model.features import FeatureSpec
    from cvpose_ros.model.pipeline import create_model

    if DEFAULT_CHECKPOINTS["h36m17"].exists():
        return ""
    return str(save_checkpoint(os.path.join(folder, "random.pt"), create_model(FeatureSpec()).eval(), FeatureSpec()))


def _int8_weights(folder: str, checkpoint: str) -> str:
    """The int8 export of `checkpoint` (packaged h36m17 when empty), written in `folder`, as cvpose-export --int8."""
    from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, load_checkpoint
    from cvpose_ros.model.onnx_export import export_onnx
    from cvpose_ros.model.onnx_quantize import quantize_int8

    path = os.path.join(folder, "int8.onnx")
    loaded = load_checkpoint(checkpoint or DEFAULT_CHECKPOINTS["h36m17"], "cpu")
    with open(path, "wb") as f:
        f.write(quantize_int8(export_onnx(loaded, check=False).model_bytes))
    return path


def _measure(num_people: int, runtime: str | None, seconds: float, device: str, checkpoint: str,
             freeze: bool = True, executor: str = "events") -> dict:
    """One configuration; runtime None = triangulation only (refine=false), "relay" = the rclpy floor
    (`refiner_child.run_relay_node`). `freeze`: the child freezes its start-up heap as the entry point does."""
    relay = runtime == "relay"
    import rclpy
    from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
    from cvpose_ros.ros.conversions import keypoints_to_msg, stamp_to_ns

    rig = make_rig("demo")
    scene = generate_scene(num_people, seconds + 1.0, FPS, seed=num_people)
    views = project_scene(scene, rig, noise="clean")
    cam0_from_cam1 = rig.cam1_from_cam0.inverse()
    params = {"cam1.translation": cam0_from_cam1.t.tolist(), "cam1.rotation": cam0_from_cam1.quaternion().tolist(),
              "refine": runtime is not None, "device": device, "publish_coarse": False, "max_stamp_age": 0.0,
              "runtime": (runtime or "auto").removesuffix("-int8"), "checkpoint": checkpoint, "executor": executor}
    child, stop = start_refiner_child(params, 120, freeze, relay, executor)

    rclpy.init()
    driver = rclpy.create_node("bench_driver")
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [driver.create_publisher(Keypoints2D, f"cam{c}/keypoints", qos) for c in (0, 1)]
    infos = [driver.create_publisher(CameraInfo, f"cam{c}/camera_info", qos) for c in (0, 1)]
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    driver.create_subscription(Skeleton3DArray, "skeletons",
                               lambda m: received.setdefault(stamp_to_ns(m.header.stamp), time.perf_counter()), qos)
    wait_for_node(driver, pubs + infos)
    info_msgs = camera_info_messages(rig)
    # camera_info goes out with every frame, as camera drivers do: the node's inputs are best effort.
    for pub, msg in zip(infos, info_msgs, strict=True):
        pub.publish(msg)
    time.sleep(0.5)
    rclpy.spin_once(driver, timeout_sec=0.05)

    frames = int(seconds * FPS)
    start = time.perf_counter()
    for t in range(frames + int(FPS)):  # one warm-up second, excluded from the statistics
        stamp = 1_000_000_000 + int(t * 1e9 / FPS)
        msgs = [keypoints_to_msg(stamp, f"cam{c}_optical_frame", views[c].keypoints[t], views[c].confidence[t])
                for c in (0, 1)]
        for pub, msg in zip(infos, info_msgs, strict=True):
            msg.header.stamp = msgs[0].header.stamp
            pub.publish(msg)
        pubs[0].publish(msgs[0])
        pubs[1].publish(msgs[1])
        if t >= FPS:
            sent[stamp] = time.perf_counter()
        next_tick = start + (t + 1) / FPS
        while (remaining := next_tick - time.perf_counter()) > 0:
            rclpy.spin_once(driver, timeout_sec=min(remaining, 0.005))
    finish(driver, child, stop)

    latencies = np.array([received[s] - sent[s] for s in sent if s in received]) * 1e3
    got = [received[s] for s in sent if s in received]
    rate = (len(got) - 1) / (max(got) - min(got)) if len(got) > 1 else 0.0
    name = "rclpy relay (floor)" if relay else f"refined {runtime}" if runtime else "triangulation"
    path = name + ("" if freeze else " (heap not frozen)") + ("" if executor == "events" else f" [{executor}]")
    return {"people": num_people, "path": path, "frames": len(sent),
            "received": len(latencies), "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else np.nan,
            "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else np.nan,
            "max_ms": float(latencies.max()) if len(latencies) else np.nan, "rate_hz": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per configuration")
    parser.add_argument("--device", default="auto", help="refiner device (auto | cpu | cuda | tensorrt)")
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnxruntime", "onnxruntime-int8"],
                        choices=["torch", "onnxruntime", "onnxruntime-int8"])
    parser.add_argument("--heap", choices=["frozen", "unfrozen", "both"], default="frozen",
                        help="the node child's start-up heap: frozen as deployed (cvpose_ros.ros.entry), left to "
                             "the garbage collector, or both in turn")
    parser.add_argument("--executor", nargs="+", choices=["events", "single_threaded"], default=["events"],
                        help="executor(s) the node child (and the relay floor) spins on, in turn: events is the "
                             "node's default (parameter `executor`; cvpose_ros.ros.entry.make_executor)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    freezes = {"frozen": (True,), "unfrozen": (False,), "both": (True, False)}[args.heap]
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import json
    import tempfile

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load "
          f"{os.getloadavg()[0]:.1f}, torch {torch.__version__}, CUDA {torch.cuda.is_available()}")
    print(f"{'people':>6} {'path':>38} {'sent':>5} {'recv':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'rate Hz':>8}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = _weights(folder)
        for people in args.people:
            for runtime in ("relay", None, *args.runtimes):
                weights = _int8_weights(folder, checkpoint) if runtime == "onnxruntime-int8" else checkpoint
                for freeze, executor in itertools.product(freezes, args.executor):
                    r = _measure(people, runtime, args.seconds, args.device, weights, freeze, executor)
                    rows.append(r)
                    print(f"{r['people']:>6} {r['path']:>38} {r['frames']:>5} {r['received']:>5} "
                          f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['rate_hz']:>8.1f}",
                          flush=True)
    print("ratios to refined torch at the same people count (p50 / p99 latency):")
    for r in rows:
        base = next((b for b in rows if b["people"] == r["people"] and b["path"] == "refined torch"), None)
        if base is not None and r is not base:
            print(f"  {r['people']} people {r['path']:>38}: {r['p50_ms'] / base['p50_ms']:.2f} / "
                  f"{r['p99_ms'] / base['p99_ms']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

"""The images path, end to end: a camera process at 30 Hz -> two detector nodes -> the refiner node -> skeletons,
for 640x480, 1280x720 and 1920x1080, raw with sensor-data QoS (best effort), raw reliable, and JPEG (decoded as the
detector's default `decode_scale: 0` chooses; `jpeg_full` = decoded in full, `decode_scale: 1`, the baseline).

This process is the camera (cvpose_ros.ros.image_source.ImageSource: two cameras, one stamp per tick, camera_info
beside each image) and records the skeletons; the detectors (`python -m cvpose_ros.ros.detector_node`) and the
refiner (`python -m cvpose_ros.ros.refiner_node`) are child processes started as a user starts them, so every
process adopts the package's Fast DDS profile unless FASTDDS_DEFAULT_PROFILES_FILE is set. `--no-profile` gives
all of them Fast DDS's defaults instead (the baseline of issue 18), in the same run.

The detectors run a constant YOLO-pose ONNX model (made here with onnx) returning one standing person's exact
projection in its camera, so every delivered pair can become a skeleton and the figures isolate what the package
adds: image transport, decoding/conversion, letterbox, post-processing, keypoints transport, the refiner (CV-UGCN
on the CPU, one thread). The detector's own time per image is reported beside; with a real model add its
inference time (docs/detector.md) to the latency.

    python bench/bench_images.py [--seconds 5] [--sizes 640x480 1280x720 1920x1080]
                                 [--modes raw reliable jpeg jpeg_full] [--no-profile] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FPS = 30.0
# mode -> (image reliability, JPEG, the detectors' decode_scale: None = the node's default, auto)
MODES = {"raw": ("best_effort", False, None), "reliable": ("reliable", False, None),
         "jpeg": ("best_effort", True, None), "jpeg_full": ("best_effort", True, 1)}
FASTDDS_DEFAULTS = ('<?xml version="1.0" encoding="UTF-8"?>\n<dds xmlns="http://www.eprosima.com"><profiles>'
                    '<participant profile_name="defaults" is_default_profile="true"><rtps/></participant>'
                    '</profiles></dds>\n')


def bench_rig(width: int, height: int):
    """The demo rig's two camera poses with undistorted pinhole lenses for `width` x `height`."""
    from cvpose_ros.devtools.synthetic import RigCamera, make_rig
    from cvpose_ros.geometry.camera import CameraModel

    demo = make_rig("demo")
    fx = 780.0 * width / 1280.0
    K = np.array([[fx, 0.0, (width - 1) / 2], [0.0, fx, (height - 1) / 2], [0.0, 0.0, 1.0]])
    cams = [RigCamera(c.name, CameraModel(K=K, dist=np.zeros(5), distortion_model="plumb_bob", width=width,
                                          height=height), c.cam_from_world, c.frame_id) for c in demo.cameras]
    return demo, cams


def person_pixels(cams) -> list[np.ndarray]:
    """(17, 2) coco17 pixels of one standing person in the middle of the room, per camera."""
    from cvpose_ros.devtools.synthetic import generate_scene

    scene = generate_scene(1, 1.0, FPS, seed=3).in_layout("coco17")
    joints = scene.joints[0, 0]
    return [cam.model.project(cam.world_to_camera(joints)) for cam in cams]


def constant_model(path: Path, pixels: np.ndarray, width: int, height: int) -> Path:
    """A YOLO-pose model whose one detection is `pixels` (in a width x height image) after the letterbox."""
    from cvpose_ros.detection.onnx_codecs import letterbox_transform
    from cvpose_ros.detection.synthetic_models import yolo_pose_constant_model

    lb = letterbox_transform((width, height), (640, 640))
    xy = pixels * lb.scale + np.array([lb.offset_x, lb.offset_y])
    rows = np.zeros((56, 1), np.float32)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    rows[0:5, 0] = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[0] - lo[0], hi[1] - lo[1], 0.95)
    rows[5:, 0] = np.concatenate([xy, np.full((17, 1), 0.95)], axis=1).ravel()
    return yolo_pose_constant_model(path, rows)


class Children:
    """The detector and refiner processes of one configuration."""

    def __init__(self, folder: Path, ns: str, models: list[Path], compressed: bool, rig, cams,
                 env: dict[str, str], decode_scale: int | None = None) -> None:
        import yaml

        cam0_from_cam1 = rig.cam1_from_cam0.inverse()
        params = {"cam1.translation": cam0_from_cam1.t.tolist(), "cam1.rotation": cam0_from_cam1.quaternion().tolist(),
                  "device": "cpu", "cpu_threads": 1, "publish_markers": False, "publish_tf": False,
                  "publish_coarse": False, "max_stamp_age": 0.0}
        params_file = folder / "refiner.yaml"
        params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        self.logs = []
        self.procs = []
        py = sys.executable
        decode = ["-p", f"decode_scale:={decode_scale}"] if decode_scale is not None else []
        for c, model in enumerate(models):
            self._start([py, "-m", "cvpose_ros.ros.detector_node", "--ros-args", "-r", f"__ns:=/{ns}/cam{c}",
                         "-r", "image:=image_raw", "-r", "image/compressed:=image_raw/compressed",
                         "-p", "backend:=onnx", "-p", f"model_path:={model}", "-p", f"use_compressed:={compressed}",
                         "-p", "num_threads:=1", *decode], folder / f"detector{c}.log", env)
        self._start([py, "-m", "cvpose_ros.ros.refiner_node", "--ros-args", "-r", f"__ns:=/{ns}",
                     "--params-file", str(params_file)], folder / "refiner.log", env)

    def _start(self, cmd: list[str], log: Path, env: dict[str, str]) -> None:
        handle = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.logs.append((log, handle))
        self.procs.append(subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env))

    def check(self) -> None:
        for proc, (log, _) in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[2]} exited: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for _, handle in self.logs:
            handle.close()


def measure(size: tuple[int, int], mode: str, seconds: float, env: dict[str, str], tag: str) -> dict:
    import rclpy
    from cvpose_ros_msgs.msg import Skeleton3DArray
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    from cvpose_ros.devtools.synthetic import camera_info_fields
    from cvpose_ros.ros.conversions import stamp_to_ns
    from cvpose_ros.ros.image_source import ImageSource

    width, height = size
    reliability, compressed, decode_scale = MODES[mode]
    rig, cams = bench_rig(width, height)
    ns = f"bench_{tag}_{os.getpid()}_{width}_{mode}"
    folder = Path(tempfile.mkdtemp(prefix="cvpose_bench_images_"))
    models = [constant_model(folder / f"cam{c}.onnx", px, width, height) for c, px in enumerate(person_pixels(cams))]
    children = Children(folder, ns, models, compressed, rig, cams, env, decode_scale)

    node = rclpy.create_node(f"bench_camera_{tag}_{width}_{mode}")
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    received: dict[int, float] = {}
    diagnostics: list[tuple[float, str, dict[str, str]]] = []

    def on_skeletons(msg) -> None:
        if msg.skeletons:
            received.setdefault(stamp_to_ns(msg.header.stamp), time.time())

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            if status.name.startswith(f"/{ns}/") or status.hardware_id.startswith(f"/{ns}/"):
                diagnostics.append((time.monotonic(), status.name, {kv.key: kv.value for kv in status.values}))

    node.create_subscription(Skeleton3DArray, f"/{ns}/skeletons", on_skeletons, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable)
    infos = []
    for cam in cams:
        fields = camera_info_fields(cam)
        info = CameraInfo(width=fields["width"], height=fields["height"], distortion_model=fields["distortion_model"],
                          d=fields["d"], k=fields["k"], r=fields["r"], p=fields["p"])
        info.header.frame_id = fields["frame_id"]
        infos.append(info)
    source = ImageSource(node, [f"{ns}/cam0", f"{ns}/cam1"], width, height, compressed=compressed,
                         reliability=reliability, camera_infos=infos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 180
        while source.subscribers() < 1 or node.count_publishers(f"/{ns}/skeletons") < 1:
            children.check()
            if time.monotonic() > deadline:
                raise RuntimeError("detectors/refiner not discovered within 180 s")
            time.sleep(0.1)
        period = 1.0 / FPS
        warmup = int(FPS * 2)   # models load, first frames: not measured
        frames = int(seconds * FPS)
        sent: list[int] = []
        start = time.monotonic()
        measured_from = 0.0
        for i in range(warmup + frames):
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if i == warmup:
                measured_from = time.monotonic()
            stamp = node.get_clock().now().to_msg()
            source.publish(stamp)
            if i >= warmup:
                sent.append(stamp_to_ns(stamp))
        measured_to = time.monotonic()
        time.sleep(1.5)  # the last pairs through the pipeline, and one more /diagnostics
        children.check()
    finally:
        children.stop()
        executor.shutdown()
        spinner.join(timeout=5.0)  # a spinner still in rclpy's wait at interpreter exit aborts the process
        node.destroy_node()
    latencies = np.array([received[s] - s * 1e-9 for s in sent if s in received]) * 1e3
    got = sorted(received[s] for s in sent if s in received)
    rate = (len(got) - 1) / (got[-1] - got[0]) if len(got) > 1 else 0.0
    during = [(name, v) for t, name, v in diagnostics if measured_from + 1.0 <= t <= measured_to + 1.2]
    detector = [v for name, v in during if name.endswith("2D detector")]
    refiner = [v for name, v in during if "refiner" in name]

    def mean_of(rows: list[dict[str, str]], key: str) -> float:
        values = [float(r[key]) for r in rows if r.get(key) not in (None, "nan", "unknown")]
        return float(np.mean(values)) if values else float("nan")

    detector_ms = mean_of(detector, "processing_ms_mean")
    p50 = float(np.percentile(latencies, 50)) if latencies.size else float("nan")
    return {"size": f"{width}x{height}", "mode": mode, "bytes_per_image": source.bytes_per_image,
            "pairs": len(sent), "skeletons": len(latencies), "fraction": len(latencies) / max(1, len(sent)),
            "rate_hz": rate, "p50_ms": p50, "p99_ms": float(np.percentile(latencies, 99)) if latencies.size else np.nan,
            "detector_ms": detector_ms, "refiner_ms": mean_of(refiner, "processing_ms_mean"),
            "overhead_p50_ms": p50 - detector_ms,
            "received_fraction": min((mean_of([r], "received_fraction") for r in detector), default=float("nan")),
            "busy_dropped": int(max((float(r.get("busy_dropped_total", 0)) for r in detector), default=0)),
            "decode_factor": int(max((float(r.get("decode_factor", 1)) for r in detector), default=1)),
            "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per configuration (default 5)")
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720", "1920x1080"])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["raw", "reliable", "jpeg"])
    parser.add_argument("--no-profile", action="store_true", help="all processes on Fast DDS's defaults")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from cvpose_ros.ros.dds_profile import PROFILE_ENV, use_default_profile

    if args.no_profile:
        defaults = Path(tempfile.mkdtemp(prefix="cvpose_fastdds_")) / "defaults.xml"
        defaults.write_text(FASTDDS_DEFAULTS)
        os.environ[PROFILE_ENV] = str(defaults)
    else:
        use_default_profile()
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    import rclpy

    rclpy.init()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, load "
          f"{os.getloadavg()[0]:.1f}; {PROFILE_ENV}={os.environ.get(PROFILE_ENV, '')}", flush=True)
    header = (f"{'size':>9} {'mode':>9} {'KB/img':>7} {'pairs':>5} {'skel':>5} {'frac':>5} {'Hz':>5} {'p50':>6} "
              f"{'p99':>6} {'det ms':>6} {'ref ms':>6} {'ovh50':>6} {'recv':>5} {'busy':>4} {'dec':>4} {'load':>5}")
    print(header, flush=True)
    rows = []
    tag = "np" if args.no_profile else "p"
    for size_text in args.sizes:
        width, height = (int(v) for v in size_text.split("x"))
        for mode in args.modes:
            r = measure((width, height), mode, args.seconds, env, tag)
            rows.append(r)
            print(f"{r['size']:>9} {r['mode']:>9} {r['bytes_per_image'] / 1024:7.0f} {r['pairs']:5d} "
                  f"{r['skeletons']:5d} {r['fraction']:5.2f} {r['rate_hz']:5.1f} {r['p50_ms']:6.1f} "
                  f"{r['p99_ms']:6.1f} {r['detector_ms']:6.1f} {r['refiner_ms']:6.1f} {r['overhead_p50_ms']:6.1f} "
                  f"{r['received_fraction']:5.2f} {r['busy_dropped']:4d} {'1/' + str(r['decode_factor']):>4} "
                  f"{r['load']:5.1f}", flush=True)
    rclpy.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps({"profile": os.environ.get(PROFILE_ENV, ""), "rows": rows,
                                               "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()

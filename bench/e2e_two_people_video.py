"""Hand-run end-to-end check (not a test): two real people through the whole graph, detector to skeletons.

The graph of `launch/pipeline.launch.py` in one process: two `detector_node`s (MediaPipe, tracking on) and the
`refiner_node`, over DDS. Input: two calibrated cameras of a synchronised single-person recording (e.g. the Pose2Sim
demo) made into a two-person scene: in both cameras, the person of frame t + lag is pasted (MediaPipe's
segmentation mask) onto frame t, so two real people stand at two real 3D places, seen consistently by both cameras.
For each frame pair the script publishes the images and camera_info with one stamp, waits for the skeletons and
reports how many people the detectors and the refiner saw, 2D track-id switches and skeleton-id changes.

    python bench/e2e_two_people_video.py --videos DIR --calibration Calib.qca.txt [--pair 0,1] [--frames 30]
        [--lag 60] [--scale 0.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from cvpose_ros.detection import create_backend  # noqa: F401 - installs the protobuf shim before mediapipe
from cvpose_ros.detection.mediapipe_backend import _import_mediapipe, pose_task_bundle


def read_video(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(frame[..., ::-1]))
    capture.release()
    return frames


class PersonCutter:
    """MediaPipe's person segmentation (largest person) as a soft mask, to paste one frame's person on another."""

    def __init__(self) -> None:
        self._mp, vision, base_options = _import_mediapipe()
        options = vision.PoseLandmarkerOptions(base_options=base_options(model_asset_buffer=pose_task_bundle()),
                                               running_mode=vision.RunningMode.IMAGE, num_poses=1,
                                               output_segmentation_masks=True)
        self._landmarker = vision.PoseLandmarker.create_from_options(options)

    def mask(self, rgb: np.ndarray) -> np.ndarray | None:
        result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        if not result.segmentation_masks:
            return None
        mask = np.asarray(result.segmentation_masks[0].numpy_view(), np.float32).squeeze()
        return cv2.GaussianBlur(np.clip((mask - 0.3) / 0.4, 0.0, 1.0), (9, 9), 0)

    def paste(self, base: np.ndarray, donor: np.ndarray) -> np.ndarray | None:
        mask = self.mask(donor)
        if mask is None:
            return None
        return (base * (1.0 - mask[..., None]) + donor * mask[..., None]).astype(np.uint8)


def camera_info(camera, frame_id: str, scale: float):
    from sensor_msgs.msg import CameraInfo

    model = camera.model
    K = model.K.copy()
    K[:2] *= scale
    msg = CameraInfo(width=int(round(model.width * scale)), height=int(round(model.height * scale)),
                     distortion_model=model.distortion_model, d=[float(x) for x in model.dist],
                     k=[float(x) for x in K.ravel()], r=[float(x) for x in np.eye(3).ravel()],
                     p=[float(x) for x in np.hstack([K, np.zeros((3, 1))]).ravel()])
    msg.header.frame_id = frame_id
    return msg


def publish_views(image_pubs: list, info_pubs: list, infos: list, views: list[np.ndarray], stamp: int) -> None:
    """Every camera's camera_info and RGB image (views[i] for camera slot i), all with the one stamp (ns)."""
    from sensor_msgs.msg import Image

    for slot, rgb in enumerate(views):
        info = infos[slot]
        info.header.stamp.sec, info.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3,
                    data=rgb.tobytes())
        msg.header = info.header
        info_pubs[slot].publish(info)
        image_pubs[slot].publish(msg)


def refiner_parameters(cameras, pair: tuple[int, int]) -> dict:
    from cvpose_ros.calibration.export import poses_in_reference
    from cvpose_ros.calibration.rotation import rotation_to

    poses = poses_in_reference(cameras, pair[0])
    # max_stamp_age: MediaPipe on two full images takes a second or more on a busy 2-core machine
    params: dict = {"reference_frame": "", "extrinsics_source": "parameters", "publish_tf": False,
                    "max_stamp_age": 10.0}
    for slot, index in enumerate(pair):
        params[f"cam{slot}.translation"] = [float(v) for v in poses[index].t]
        params[f"cam{slot}.rotation"] = [float(v) for v in rotation_to(poses[index].R, "quaternion")]
        params[f"cam{slot}.frame_id"] = f"cam{slot}_optical"
    return params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, required=True)
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--pair", default="0,1", help="camera indices in the calibration / sorted video list")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--lag", type=int, default=60, help="frames between the two pasted moments")
    ap.add_argument("--scale", type=float, default=0.5, help="image scale (0.5 = 540x960 from 1080x1920)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import rclpy
    from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from cvpose_ros.calibration.read import read_calibration
    from cvpose_ros.ros.detector_node import DetectorNode
    from cvpose_ros.ros.graph import BackgroundGraph
    from cvpose_ros.ros.refiner_node import RefinerNode

    pair = tuple(int(v) for v in args.pair.split(","))
    cameras = read_calibration([args.calibration])
    videos = sorted(args.videos.glob("*.mp4"))
    needed = args.frames + args.lag
    clips = [read_video(videos[i], needed) for i in pair]
    if min(len(c) for c in clips) < needed:
        print(f"the videos have fewer than frames + lag = {needed} frames", file=sys.stderr)
        return 1
    cutter = PersonCutter()
    print(f"compositing {args.frames} frames x 2 cameras ...", flush=True)
    images = []
    for t in range(args.frames):
        views = []
        for clip in clips:
            pasted = cutter.paste(clip[t], clip[t + args.lag])
            views.append(cv2.resize(pasted if pasted is not None else clip[t], None, fx=args.scale, fy=args.scale,
                                    interpolation=cv2.INTER_AREA))
        images.append(views)

    graph = BackgroundGraph()
    ctx = graph.context
    for slot in (0, 1):
        graph.add(DetectorNode(context=ctx, namespace=f"cam{slot}", parameter_overrides=[
            Parameter("backend", value="mediapipe"), Parameter("max_people", value=4)]))
    graph.add(RefinerNode(context=ctx, parameter_overrides=[
        Parameter(k, value=v) for k, v in refiner_parameters(cameras, pair).items()]))
    tester = graph.add(rclpy.create_node("e2e_player", context=ctx))
    received: dict[str, list] = {"cam0": [], "cam1": [], "skeletons": []}
    for slot in ("cam0", "cam1"):
        tester.create_subscription(Keypoints2D, f"/{slot}/keypoints", received[slot].append, QoSProfile(depth=50))
    tester.create_subscription(Skeleton3DArray, "/skeletons", received["skeletons"].append, QoSProfile(depth=50))
    image_pubs = [tester.create_publisher(Image, f"/cam{s}/image", qos_profile_sensor_data) for s in (0, 1)]
    info_pubs = [tester.create_publisher(CameraInfo, f"/cam{s}/camera_info", qos_profile_sensor_data)
                 for s in (0, 1)]
    infos = [camera_info(cameras[i], f"cam{s}_optical", args.scale) for s, i in enumerate(pair)]
    graph.start()
    time.sleep(2.0)

    def stamp_ns(msg) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    rows = []
    try:
        for t, views in enumerate(images):
            stamp = time.time_ns()  # the refiner drops stamps older than max_stamp_age
            publish_views(image_pubs, info_pubs, infos, views, stamp)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not any(stamp_ns(m) == stamp for m in received["skeletons"]):
                time.sleep(0.02)
            row = {"t": t}
            for key in ("cam0", "cam1"):
                msgs = [m for m in received[key] if stamp_ns(m) == stamp]
                row[key] = [p.track_id for p in msgs[0].people] if msgs else None
            skel = [m for m in received["skeletons"] if stamp_ns(m) == stamp]
            row["skeletons"] = [s.track_id for s in skel[0].skeletons] if skel else None
            rows.append(row)
            print(f"frame {t:3d}: cam0 ids {row['cam0']}, cam1 ids {row['cam1']}, skeleton ids {row['skeletons']}",
                  flush=True)
    finally:
        graph.close()

    def changes(key: str) -> int:
        seqs = [tuple(sorted(r[key])) for r in rows if r[key]]
        return sum(a != b for a, b in zip(seqs, seqs[1:], strict=False))

    two = sum(1 for r in rows if r["skeletons"] is not None and len(r["skeletons"]) == 2)
    summary = {"frames": len(rows), "frames_with_two_skeletons": two,
               "frames_with_two_people_cam0": sum(1 for r in rows if r["cam0"] and len(r["cam0"]) >= 2),
               "frames_with_two_people_cam1": sum(1 for r in rows if r["cam1"] and len(r["cam1"]) >= 2),
               "cam0_id_set_changes": changes("cam0"), "cam1_id_set_changes": changes("cam1"),
               "skeleton_id_set_changes": changes("skeletons")}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "frames": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

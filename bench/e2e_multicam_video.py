"""Hand-run end-to-end check (not a test): a real multi-camera recording through the robot's path, any camera set.

The graph of `launch/pipeline.launch.py` with `cameras` in one process: one `detector_node` per camera (MediaPipe)
and the `refiner_node` with every camera of the set, over DDS. For each frame the script publishes every camera's
image and camera_info with one stamp (the frames aligned by the lags estimated from the detections), waits for the
skeletons and scores them, with no ground truth, by the median reprojection error (px) of the coarse and refined
joints in a held-out camera that is not in the set (its detections come from `--detections`, the
`cvpose-eval --detections-cache` file of the same recording). Several camera sets run one after the other, each in
a fresh graph, so the three cameras of a rig can be compared with each pair of them on the same frames:

    python bench/e2e_multicam_video.py --videos DIR --calibration Calib.qca.txt --detections DETS.npz \
        --hold-out 2 --sets 0,1,3 0,1 0,3 1,3 [--frames 97] [--scale 0.5] [--json out.json]

Also printed per set: the 95 % interval of its refined median minus the first set's (paired bootstrap over frames,
`bench_multiview.median_difference_interval`), and the frames that gave skeletons.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from bench_multiview import median_difference_interval
from e2e_two_people_video import camera_info, publish_views
from tqdm import tqdm


def aligned_frames(path: Path, indices: np.ndarray, scale: float) -> list[np.ndarray]:
    """The video's frames at `indices` (increasing), RGB, resized by `scale`."""
    capture = cv2.VideoCapture(str(path))
    frames, wanted, index = [], set(int(i) for i in indices), 0
    while len(frames) < len(indices):
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted:
            rgb = np.ascontiguousarray(frame[..., ::-1])
            frames.append(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
        index += 1
    capture.release()
    return frames


def refiner_parameters(cameras, subset: list[int]) -> dict:
    """The refiner's parameters for the cameras `subset` of the calibration, camera 0 of the set the reference."""
    from cvpose_ros.calibration.export import poses_in_reference
    from cvpose_ros.calibration.rotation import rotation_to

    poses = poses_in_reference([cameras[i] for i in subset], 0)
    # max_stamp_age: MediaPipe on several full images can take a second or more on a busy 2-core machine
    params: dict = {"reference_frame": "", "extrinsics_source": "parameters", "publish_tf": False,
                    "max_stamp_age": 10.0, "layout": "coco17",
                    "cameras": [f"cam{slot}" for slot in range(len(subset))]}
    for slot, pose in enumerate(poses):
        params[f"cam{slot}.translation"] = [float(v) for v in pose.t]
        params[f"cam{slot}.rotation"] = [float(v) for v in rotation_to(pose.R, "quaternion")]
        params[f"cam{slot}.frame_id"] = f"cam{slot}_optical"
    return params


def run_set(cameras, subset: list[int], images: list[list[np.ndarray]], scale: float) -> tuple[np.ndarray, ...]:
    """Every frame of the camera set through detectors and refiner over DDS: coarse and refined joints (T, J, 3)
    in the world frame of the calibration (NaN where no skeleton came back)."""
    import rclpy
    from cvpose_ros_msgs.msg import Skeleton3DArray
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from cvpose_ros.ros.detector_node import DetectorNode
    from cvpose_ros.ros.graph import BackgroundGraph
    from cvpose_ros.ros.refiner_node import RefinerNode

    graph = BackgroundGraph()
    ctx = graph.context
    for slot in range(len(subset)):
        graph.add(DetectorNode(context=ctx, namespace=f"cam{slot}", parameter_overrides=[
            Parameter("backend", value="mediapipe"), Parameter("max_people", value=1)]))
    graph.add(RefinerNode(context=ctx, parameter_overrides=[
        Parameter(k, value=v) for k, v in refiner_parameters(cameras, subset).items()]))
    player = graph.add(rclpy.create_node("e2e_multicam_player", context=ctx))
    received: dict[str, dict[int, object]] = {"skeletons": {}, "skeletons_coarse": {}}

    def keep(topic: str):
        def store(msg) -> None:
            received[topic][msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = msg
        return store

    for topic in received:
        player.create_subscription(Skeleton3DArray, f"/{topic}", keep(topic), QoSProfile(depth=50))
    image_pubs = [player.create_publisher(Image, f"/cam{s}/image", qos_profile_sensor_data) for s in range(len(subset))]
    info_pubs = [player.create_publisher(CameraInfo, f"/cam{s}/camera_info", qos_profile_sensor_data)
                 for s in range(len(subset))]
    infos = [camera_info(cameras[i], f"cam{s}_optical", scale) for s, i in enumerate(subset)]
    world_from_ref = cameras[subset[0]].cam_from_world.inverse()
    frames = len(images[subset[0]])
    out = np.full((2, frames, 17, 3), np.nan)
    graph.start()
    time.sleep(2.0)
    try:
        for t in tqdm(range(frames), desc="+".join(map(str, subset)), unit="frame"):
            stamp = time.time_ns()  # the refiner drops stamps older than max_stamp_age
            publish_views(image_pubs, info_pubs, infos, [images[index][t] for index in subset], stamp)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not all(stamp in received[k] for k in received):
                time.sleep(0.01)
            for row, topic in enumerate(("skeletons_coarse", "skeletons")):
                msg = received[topic].get(stamp)
                if msg is not None and msg.skeletons:
                    joints = np.array([[j.x, j.y, j.z] for j in msg.skeletons[0].joints], dtype=np.float64)
                    out[row, t] = world_from_ref.apply(joints)
    finally:
        graph.close()
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, required=True, help="one video per camera, name order = calibration's")
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--detections", type=Path, required=True, help="cvpose-eval --detections-cache file")
    ap.add_argument("--hold-out", type=int, required=True, help="camera scored against (in no set)")
    ap.add_argument("--sets", nargs="+", required=True, help="camera sets, e.g. 0,1,3 0,1 (the first is the baseline)")
    ap.add_argument("--frames", type=int, default=0, help="first N aligned frames (0 = all)")
    ap.add_argument("--scale", type=float, default=0.5, help="image scale (0.5 = 540x960 from 1080x1920)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from cvpose_ros.calibration.read import read_calibration
    from cvpose_ros.geometry.multiview import align, estimate_lags, residuals

    cameras = read_calibration([args.calibration])
    videos = sorted(args.videos.glob("*.mp4"))
    sets = [[int(v) for v in s.split(",")] for s in args.sets]
    if len(videos) != len(cameras) or any(len(s) < 2 or args.hold_out in s or max(s) >= len(cameras) for s in sets):
        print(f"need one video per camera ({len(videos)} videos, {len(cameras)} cameras) and sets of 2+ cameras "
              f"without the held-out camera {args.hold_out}", file=sys.stderr)
        return 2
    data = np.load(args.detections)
    pix = [data[f"keypoints_{i}"] for i in range(len(cameras))]
    conf = [data[f"confidence_{i}"] for i in range(len(cameras))]
    lags, _ = estimate_lags(cameras, pix, conf)
    frame_index = align([np.arange(len(p)) for p in pix], lags)  # aligned frame -> each video's frame
    if args.frames:
        frame_index = [f[:args.frames] for f in frame_index]
    held = frame_index[args.hold_out]
    held_pix, held_conf = pix[args.hold_out][held], conf[args.hold_out][held]
    used = sorted({i for s in sets for i in s})
    print(f"lags {lags}; {len(frame_index[0])} aligned frames; reading cameras {used} at scale {args.scale:g}",
          flush=True)
    images = {i: aligned_frames(videos[i], frame_index[i], args.scale) for i in used}

    errors, report = {}, {"lags": lags, "hold_out": cameras[args.hold_out].name, "scale": args.scale, "sets": {}}
    for subset in sets:
        key = "+".join(map(str, subset))
        coarse, refined = run_set(cameras, subset, images, args.scale)
        errors[key] = [residuals([cameras[args.hold_out]], p, held_pix[None], held_conf[None], 0.5)[0]
                       for p in (coarse, refined)]
        report["sets"][key] = {"frames_with_skeleton": int(np.isfinite(refined).any(axis=(1, 2)).sum()),
                               "coarse_px": float(np.nanmedian(errors[key][0])),
                               "refined_px": float(np.nanmedian(errors[key][1]))}
    base = "+".join(map(str, sets[0]))
    print(f"median reprojection error in held-out {cameras[args.hold_out].name}, px (coarse / refined); refined "
          f"minus {base}, 95 % interval:")
    for key, row in report["sets"].items():
        low, high = median_difference_interval(errors[key][1], errors[base][1]) if key != base else (0.0, 0.0)
        row["refined_minus_first_px"] = [low, high]
        print(f"  {key:<10} {row['coarse_px']:6.1f} / {row['refined_px']:6.1f}   [{low:+.1f}, {high:+.1f}]   "
              f"{row['frames_with_skeleton']}/{len(frame_index[0])} frames")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

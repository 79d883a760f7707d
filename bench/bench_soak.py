"""Memory soak of refiner_node: 30 Hz, 5 people, camera_info with every frame, for a while; RSS slope per hour.

The node runs in its own process (refined with the packaged weights on the CPU unless --no-refine); this process
plays the synthetic rig over real DDS, stamped with the current time, and samples the node's resident memory every
second. The slope is a least-squares line through the samples after the warm-up (the first quarter, at most 60 s);
the second half's slope and the largest single rise are reported beside it.
A short default run checks the set-up; the figure in docs/refiner_node.md comes from `--minutes 10` or longer.

    python bench/bench_soak.py [--minutes 1] [--people 5] [--no-refine] [--out runs/bench_soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from refiner_child import camera_info_messages, finish, start_refiner_child, wait_for_node
from tqdm import tqdm

FPS = 30.0


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` (MB) from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope_mb_per_hour(times_s: np.ndarray, rss: np.ndarray) -> float:
    """Least-squares slope of rss (MB) over time (s), in MB per hour."""
    return float(np.polyfit(times_s, rss, 1)[0] * 3600.0) if len(times_s) > 2 else float("nan")


def rss_summary(t_arr: np.ndarray, rss: np.ndarray) -> dict:
    """Slope after the warm-up (the first quarter, at most 60 s), the slope of the second half alone (a one-off
    step early in a run dominates a short run's line), and the largest rise between two samples after the warm-up."""
    warm = min(60.0, 0.25 * t_arr[-1]) if len(t_arr) else 0.0
    after = t_arr >= warm
    half = t_arr >= 0.5 * t_arr[-1]
    return {"rss_start_mb": float(rss[after][0]), "rss_end_mb": float(rss[-1]), "rss_max_mb": float(rss.max()),
            "warmup_s": warm, "slope_mb_per_hour": slope_mb_per_hour(t_arr[after], rss[after]),
            "slope_second_half_mb_per_hour": slope_mb_per_hour(t_arr[half], rss[half]),
            "largest_step_mb": float(np.diff(rss[after]).max()) if after.sum() > 1 else 0.0}


def soak(minutes: float, people: int, refine: bool) -> dict:
    import rclpy
    from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
    from cvpose_ros.ros.conversions import keypoints_to_msg, ns_to_stamp

    rig = make_rig("demo")
    scene = generate_scene(people, 20.0, FPS, seed=people)
    views = project_scene(scene, rig, noise="clean")
    cam0_from_cam1 = rig.cam1_from_cam0.inverse()
    params = {"cam1.translation": cam0_from_cam1.t.tolist(), "cam1.rotation": cam0_from_cam1.quaternion().tolist(),
              "refine": refine, "device": "cpu", "warn_throttle": 60.0}
    child, stop = start_refiner_child(params, 180)
    rclpy.init()
    driver = rclpy.create_node("soak_driver")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [driver.create_publisher(Keypoints2D, f"cam{c}/keypoints", qos) for c in (0, 1)]
    infos = [driver.create_publisher(CameraInfo, f"cam{c}/camera_info", qos) for c in (0, 1)]
    received = [0]
    driver.create_subscription(Skeleton3DArray, "skeletons", lambda _m: received.__setitem__(0, received[0] + 1),
                               qos)
    wait_for_node(driver, pubs + infos)
    info_msgs = camera_info_messages(rig)
    frames = int(minutes * 60 * FPS)
    samples_t, samples_rss = [], []
    start = time.perf_counter()
    next_sample = start
    bar = tqdm(total=frames, unit="frame", desc="soak", mininterval=5.0)
    for t in range(frames):
        stamp = driver.get_clock().now().nanoseconds
        k = t % views[0].keypoints.shape[0]
        for pub, msg in zip(infos, info_msgs, strict=True):
            msg.header.stamp = ns_to_stamp(stamp)
            pub.publish(msg)
        for c in (0, 1):
            pubs[c].publish(keypoints_to_msg(stamp, f"cam{c}_optical_frame", views[c].keypoints[k],
                                             views[c].confidence[k]))
        now = time.perf_counter()
        if now >= next_sample:
            samples_t.append(now - start)
            samples_rss.append(rss_mb(child.pid))
            next_sample += 1.0
        bar.update(1)
        next_tick = start + (t + 1) / FPS
        while (remaining := next_tick - time.perf_counter()) > 0:
            rclpy.spin_once(driver, timeout_sec=min(remaining, 0.005))
    bar.close()
    finish(driver, child, stop)
    t_arr, rss = np.asarray(samples_t), np.asarray(samples_rss)
    return {"minutes": minutes, "people": people, "refine": refine, "frames_sent": frames,
            "frames_received": received[0], **rss_summary(t_arr, rss),
            "samples": [[round(float(a), 1), round(float(b), 2)] for a, b in zip(t_arr, rss, strict=True)]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="soak duration (default 1; use 10+ to measure)")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", default="runs/bench_soak.json", help="results file (JSON)")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    r = soak(args.minutes, args.people, args.refine)
    r["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(r, f, indent=1)
    print(f"{r['minutes']:g} min, {r['people']} people, refine {r['refine']}: {r['frames_received']}/"
          f"{r['frames_sent']} frames answered; RSS {r['rss_start_mb']:.1f} -> {r['rss_end_mb']:.1f} MB after "
          f"{r['warmup_s']:.0f} s warm-up (max {r['rss_max_mb']:.1f}); slope {r['slope_mb_per_hour']:+.2f} MB/h "
          f"(second half {r['slope_second_half_mb_per_hour']:+.2f} MB/h; largest step {r['largest_step_mb']:.2f} MB)")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

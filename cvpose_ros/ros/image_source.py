"""A synthetic camera process: images (raw bgr8 or JPEG) and camera_info at a fixed rate on one or more camera
namespaces, every camera with the same stamp per tick, as a multi-camera driver publishes them.

Used by the image-transport tests and bench/bench_images.py, and by users to check a machine's DDS set-up before
blaming a driver (run a detector or `ros2 topic hz` on the other side):

    python -m cvpose_ros.ros.image_source --size 1920x1080 --rate 30 --seconds 5 --namespaces cam0 cam1

It prints a JSON line when it starts streaming and one when done: images sent per camera, the achieved rate and
the DDS profile in use. As a console process of the package it adopts the package's Fast DDS profile unless
FASTDDS_DEFAULT_PROFILES_FILE is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from cvpose_ros.ros.conversions import ns_to_stamp
from cvpose_ros.ros.dds_profile import PROFILE_ENV, use_default_profile

RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def textured_frames(width: int, height: int, count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """`count` distinct BGR frames with smooth gradients and blocky texture, so JPEG sizes are like a camera's."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        blocks = cv2.resize(rng.integers(0, 255, (max(1, height // 24), max(1, width // 24), 3), dtype=np.uint8),
                            (width, height), interpolation=cv2.INTER_NEAREST)
        base = np.stack([(xx / width) * 255, (yy / height) * 255, ((xx + yy + 40 * i) % 256)], axis=-1)
        frames.append(np.clip(0.6 * base + 0.4 * blocks, 0, 255).astype(np.uint8))
    return frames


def pinhole_camera_info(width: int, height: int, frame_id: str) -> CameraInfo:
    """A plausible undistorted camera_info (fx = fy = width, principal point at the centre)."""
    f, cx, cy = float(width), width / 2.0, height / 2.0
    k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5, k=k,
                     r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])
    msg.header.frame_id = frame_id
    return msg


class ImageSource:
    """Publishers of one or more cameras on `node`: `<ns>/<topic>` (Image) or `<ns>/<topic>/compressed`
    (CompressedImage, JPEG) and `<ns>/camera_info`, all with `reliability` (best_effort = sensor-data style) and
    history depth `depth` (10: rclcpp's default, which most drivers keep)."""

    def __init__(self, node: Node, namespaces: list[str], width: int, height: int, compressed: bool = False,
                 reliability: str = "best_effort", camera_infos: list[CameraInfo] | None = None,
                 topic: str = "image_raw", jpeg_quality: int = 90, depth: int = 10) -> None:
        qos = QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=RELIABILITY[reliability],
                         durability=DurabilityPolicy.VOLATILE)
        self.compressed = compressed
        names = [ns.strip("/") for ns in namespaces]
        infos = camera_infos or [pinhole_camera_info(width, height, f"{name}_optical_frame") for name in names]
        if len(infos) != len(names):
            raise ValueError(f"{len(names)} namespaces but {len(infos)} camera_info messages")
        self.infos = infos
        kind, suffix = (CompressedImage, "/compressed") if compressed else (Image, "")
        self.image_publishers = [node.create_publisher(kind, f"/{name}/{topic}{suffix}", qos) for name in names]
        self.info_publishers = [node.create_publisher(CameraInfo, f"/{name}/camera_info", qos) for name in names]
        self.messages = []  # prebuilt per frame: only the stamps change when publishing
        for frame in textured_frames(width, height):
            if compressed:
                ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
            else:
                msg = Image(height=height, width=width, encoding="bgr8", step=3 * width, data=frame.tobytes())
            self.messages.append(msg)
        self.sent = 0
        self.bytes_per_image = len(self.messages[0].data)

    def subscribers(self) -> int:
        """Smallest number of subscriptions matched by any camera's image publisher."""
        return min(pub.get_subscription_count() for pub in self.image_publishers)

    def publish(self, stamp) -> None:
        """One frame on every camera, all stamped `stamp` (builtin_interfaces/Time)."""
        template = self.messages[self.sent % len(self.messages)]
        for pub_image, pub_info, info in zip(self.image_publishers, self.info_publishers, self.infos, strict=True):
            template.header.stamp = stamp
            template.header.frame_id = info.header.frame_id
            info.header.stamp = stamp
            pub_info.publish(info)
            pub_image.publish(template)
        self.sent += 1


def wait_for_subscribers(node: Node, source: ImageSource, count: int, timeout_s: float) -> bool:
    """Spin-free wait (discovery runs in the middleware) until every camera has `count` image subscribers."""
    deadline = time.monotonic() + timeout_s
    while source.subscribers() < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stream(node: Node, source: ImageSource, rate: float, seconds: float) -> float:
    """Publish at `rate` Hz for `seconds` on absolute deadlines (no drift); returns the achieved rate. Stamps are
    the nominal acquisition times (start + i / rate), as a driver stamps exposures, even when publishing runs late."""
    period = 1.0 / rate
    frames = max(1, round(seconds * rate))
    start = time.monotonic()
    start_ns = node.get_clock().now().nanoseconds
    for i in range(frames):
        delay = start + i * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        source.publish(ns_to_stamp(start_ns + round(i * period * 1e9)))
    elapsed = time.monotonic() - start
    return (frames - 1) / elapsed if frames > 1 and elapsed > 0 else float("nan")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from exc
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="image_source", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=_size, default=(1280, 720), help="WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to publish (default 5)")
    parser.add_argument("--namespaces", nargs="+", default=["cam0"], help="camera namespaces (default cam0)")
    parser.add_argument("--topic", default="image_raw", help="image topic in each namespace (default image_raw)")
    parser.add_argument("--compressed", action="store_true", help="publish <topic>/compressed JPEG instead")
    parser.add_argument("--reliability", choices=sorted(RELIABILITY), default="best_effort")
    parser.add_argument("--wait-subscribers", type=int, default=0,
                        help="wait until every camera has this many image subscribers before starting")
    parser.add_argument("--wait-timeout", type=float, default=30.0, help="seconds to wait for them (default 30)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Console entry: publish, print a JSON summary; exit 1 when the subscribers never showed up."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    use_default_profile()
    rclpy.init(args=[])
    node = rclpy.create_node("cvpose_image_source")
    try:
        source = ImageSource(node, args.namespaces, *args.size, compressed=args.compressed,
                             reliability=args.reliability, topic=args.topic)
        if args.wait_subscribers and not wait_for_subscribers(node, source, args.wait_subscribers,
                                                              args.wait_timeout):
            print(f"image_source: fewer than {args.wait_subscribers} subscribers after {args.wait_timeout:.0f} s",
                  file=sys.stderr)
            return 1
        print(json.dumps({"streaming": True}), flush=True)  # for a parent process timing the stream's start
        achieved = stream(node, source, args.rate, args.seconds)
        time.sleep(0.5)  # let the last frames leave before the participant goes away
        print(json.dumps({"sent_per_camera": source.sent, "cameras": len(args.namespaces),
                          "size": f"{args.size[0]}x{args.size[1]}", "bytes_per_image": source.bytes_per_image,
                          "achieved_rate_hz": round(achieved, 2), "dds_profile": os.environ.get(PROFILE_ENV, "")}),
              flush=True)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())

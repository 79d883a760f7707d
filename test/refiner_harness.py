"""Shared harness of the refiner node tests: the node under test plus a 'rig' node that plays two (or more) cameras.

Both live in a private rclpy Context (domain from ROS_DOMAIN_ID) and are driven by spin_once loops with deadlines.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import rclpy
from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from cvpose_ros.devtools.synthetic import Rig, camera_info_fields, generate_scene, project_scene
from cvpose_ros.ros.conversions import keypoints_to_msg, ns_to_stamp, stamp_to_ns
from cvpose_ros.ros.entry import make_executor
from cvpose_ros.ros.refiner_node import RefinerNode
from cvpose_ros.ros.tf import TF_QOS, TF_STATIC_QOS

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# Hostile-input tests make the node log a burst of warnings (warn_throttle 0): a reader history as deep as the
# rosout writer's (1000) keeps a slow, loaded test process from losing the line it waits for.
ROSOUT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
NS_PER_FRAME = 33_333_333


def rig_parameters(rig: Rig, **extra) -> list[Parameter]:
    """Node parameters putting camera 1 where the rig has it, in camera 0's optical frame (the default).

    Tests play frames faster than real time with 30 Hz stamps starting at `now`, so their stamps run ahead of the
    node clock: `max_stamp_future` is raised for them (tests of the future-stamp check set their own).
    """
    cam0_from_cam1 = rig.cam1_from_cam0.inverse()
    more = {}
    if len(rig.cameras) > 2:  # every camera's pose in camera 0's frame, and the cameras list
        more["cameras"] = [f"cam{c}" for c in range(len(rig.cameras))]
        for c in range(2, len(rig.cameras)):
            pose = rig.cameras[0].cam_from_world.compose(rig.cameras[c].cam_from_world.inverse())
            more[f"cam{c}.translation"], more[f"cam{c}.rotation"] = pose.t.tolist(), pose.quaternion().tolist()
    values = {"cam1.translation": cam0_from_cam1.t.tolist(), "cam1.rotation": cam0_from_cam1.quaternion().tolist(),
              **more, "diagnostics_period": 0.2, "warn_throttle": 0.0, "max_stamp_future": 60.0,
              "max_stamp_age": 5.0,  # a loaded CI machine can take over a second to deliver a frame
              **extra}
    return [Parameter(k, value=v) for k, v in values.items()]


def camera_info_msg(rig: Rig, cam: int, stamp_ns: int = 0) -> CameraInfo:
    fields = camera_info_fields(rig.cameras[cam])
    msg = CameraInfo(width=fields["width"], height=fields["height"], distortion_model=fields["distortion_model"],
                     d=fields["d"], k=fields["k"], r=fields["r"], p=fields["p"])
    msg.header.frame_id = fields["frame_id"]
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg


class Harness:
    """The node under test and a rig node publishing its inputs and recording all its outputs."""

    def __init__(self, parameters: list[Parameter], namespace: str = "", node_class=RefinerNode,
                 cameras: int = 2, executor: str = "single_threaded") -> None:
        """`namespace` isolates the node's relative topics from other harnesses alive in the same domain;
        `node_class`: RefinerNode or the managed variant (which starts unconfigured, without outputs); `cameras`:
        how many cameras the rig node plays (cam0, cam1, ...); `executor`: what both spin on
        (`cvpose_ros.ros.entry.make_executor`)."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        try:
            self.node = node_class(context=self.context, parameter_overrides=parameters, namespace=namespace)
        except Exception:
            rclpy.shutdown(context=self.context)
            raise
        self.rig = rclpy.create_node("fake_rig", context=self.context, namespace=namespace)
        self.cameras = cameras
        self.pub_kp = [self.rig.create_publisher(Keypoints2D, f"cam{c}/keypoints", RELIABLE) for c in range(cameras)]
        self.pub_info = [self.rig.create_publisher(CameraInfo, f"cam{c}/camera_info", RELIABLE)
                         for c in range(cameras)]
        self.received: dict[str, list] = defaultdict(list)
        self.last_stamp = 0  # latest keypoint stamp a test sent (stamps must increase for the synchroniser)
        for topic, kind, qos in (("skeletons", Skeleton3DArray, RELIABLE), ("skeletons_coarse", Skeleton3DArray,
                                 RELIABLE), ("skeleton_markers", MarkerArray, RELIABLE), ("/tf", TFMessage, TF_QOS),
                                 ("/tf_static", TFMessage, TF_STATIC_QOS), ("/diagnostics", DiagnosticArray,
                                                                           RELIABLE), ("/rosout", Log, ROSOUT)):
            self.rig.create_subscription(kind, topic, lambda m, t=topic: self.received[t].append(m), qos)
        self.executor = make_executor(executor, self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.rig)
        if node_class is RefinerNode:
            self.wait_for_discovery()

    def wait_for_discovery(self) -> None:
        """Until the node's inputs and outputs are matched with the rig's."""
        self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in self.pub_kp + self.pub_info)
                        and self.pub_skeletons_seen(), 10.0, "discovery")

    def pub_skeletons_seen(self) -> bool:
        return self.rig.count_publishers(self.rig.resolve_topic_name("skeletons")) > 0

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rig.destroy_node()
        rclpy.shutdown(context=self.context)

    def logs(self, fragment: str = "") -> list[str]:
        """The node's own log lines (from /rosout) that contain `fragment`."""
        name = self.node.get_logger().name
        return [m.msg for m in self.received["/rosout"] if m.name == name and fragment in m.msg]

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def next_stamp(self, step_ns: int = 33_333_333) -> int:
        """A stamp `step_ns` after every stamp handed out so far and never behind the node clock (live play)."""
        self.last_stamp = max(self.last_stamp + step_ns, self.now_ns())
        return self.last_stamp

    def spin_until(self, condition, timeout_s: float = 3.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            self.executor.spin_once(timeout_sec=0.01)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)

    def send_camera_info(self, rig: Rig, infos: tuple[CameraInfo, ...] | None = None) -> None:
        infos = infos or tuple(camera_info_msg(rig, c) for c in range(self.cameras))
        for pub, msg in zip(self.pub_info, infos, strict=True):
            pub.publish(msg)
        self.spin_for(0.05)

    def send_keypoints(self, msgs: tuple[Keypoints2D, ...]) -> None:
        for pub, msg in zip(self.pub_kp, msgs, strict=True):
            pub.publish(msg)

    def send_person(self, rig: Rig, frames: int, seed: int = 1, confidence: float = 0.9, offset1_ns: int = 0,
                    wait_each: bool = False) -> list[int]:
        """Play one synthetic walker seen by `rig` (camera_info first) for `frames` frames at 30 Hz, camera 1
        stamped `offset1_ns` after camera 0; returns camera 0's stamps. `wait_each`: wait (10 s at most) for each
        frame's skeletons before the next, else give each frame 50 ms and the node 0.3 s at the end (outputs may
        or may not come, e.g. from an inactive managed node)."""
        views = project_scene(generate_scene(1, frames / 30.0 + 0.1, 30.0, seed=seed), rig, noise=None)
        self.send_camera_info(rig)
        base = max(self.now_ns(), self.last_stamp + NS_PER_FRAME)
        stamps = []
        for t in range(frames):
            kp = tuple(v.keypoints[t] for v in views)
            conf = tuple(np.where(np.isfinite(k).all(-1), confidence, 0.0) for k in kp)
            stamp = base + t * NS_PER_FRAME
            if wait_each:
                self.frame(stamp, kp, conf, timeout_s=10.0)
            else:
                self.send_keypoints((keypoints_to_msg(stamp, "cam0_optical_frame", kp[0], conf[0]),
                                     keypoints_to_msg(stamp + offset1_ns, "cam1_optical_frame", kp[1], conf[1])))
                self.spin_for(0.05)
            stamps.append(stamp)
            self.last_stamp = stamp + offset1_ns
        if not wait_each:
            self.spin_for(0.3)
        return stamps

    def skeletons_at(self, stamp_ns: int, topic: str = "skeletons") -> Skeleton3DArray | None:
        return next((m for m in self.received[topic] if stamp_to_ns(m.header.stamp) == stamp_ns), None)

    def frame(self, stamp_ns: int, kp: tuple[np.ndarray, ...], conf: tuple[np.ndarray, ...],
              frame_ids=("cam0_optical_frame", "cam1_optical_frame"), track_ids=(None, None),
              layout: str = "h36m17", timeout_s: float = 3.0) -> Skeleton3DArray:
        """Publish one keypoint message per camera and wait for the refined skeletons with the same stamp."""
        if len(kp) > len(frame_ids):  # more cameras: their default frames
            frame_ids, track_ids = tuple(f"cam{c}_optical_frame" for c in range(len(kp))), (None,) * len(kp)
        self.send_keypoints(tuple(keypoints_to_msg(stamp_ns, frame_ids[c], kp[c], conf[c], track_ids[c], layout)
                                  for c in range(len(kp))))
        topics = ("skeletons", "skeletons_coarse") if self.node.pub_coarse is not None else ("skeletons",)
        self.spin_until(lambda: all(self.skeletons_at(stamp_ns, t) is not None for t in topics), timeout_s,
                        f"skeletons at {stamp_ns}")
        return self.skeletons_at(stamp_ns)

    def latest_diagnostics(self, after: float = 0.5) -> dict[str, str]:
        """Key/values of the first /diagnostics message published at least `after` seconds from now."""
        from cvpose_ros.ros.diagnostics import diagnostics_values

        self.spin_for(after)
        count = len(self.received["/diagnostics"])
        self.spin_until(lambda: len(self.received["/diagnostics"]) > count, 3.0, "diagnostics")
        name = self.node.diag.name  # a namespaced node's status carries its namespace
        self.spin_until(lambda: any(diagnostics_values(m, name) for m in self.received["/diagnostics"][count:]), 3.0,
                        f"diagnostics of {name}")
        return next(diagnostics_values(m, name) for m in reversed(self.received["/diagnostics"])
                    if diagnostics_values(m, name))

"""Seeded hostile-input fuzzing of the refiner node over real DDS (used by a test and by `bench/bench_fuzz.py`).

`HostileStream` interleaves good two-camera frames of a synthetic rig with malformed or hostile messages: keypoints
with wrong array sizes, NaN/inf, huge values, unknown layouts, zero/backwards/identical/stale/future stamps, odd
frame ids, crowds of up to 1000 people, random garbage in both views, a consistent crowd 600 m away; camera_info
with wrong sizes, zero/singular/NaN/absurd K, absurd distortion, unknown models, zero or huge image sizes (each
followed by the good camera_info again). `run_fuzz` plays a stream into a `RefinerNode` in-process and checks
every output as it arrives: crashes (an exception out of the executor), the node's own caught exceptions
(`processing_error`), NaN/inf where no NaN may be (markers, TF, confidences, finite joints), published joints
beyond `max_range`, TF parents that break the frame-id rules, the longest a camera was locked out (for each good
message the synchroniser refused: the stamp that blocked it minus its own; measured by wrapping the node's
`sync.push`) and the longest time good frames went unanswered for any reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import rclpy
from cvpose_ros_msgs.msg import Keypoints2D, PersonKeypoints2D, Skeleton3DArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from cvpose_ros.devtools.synthetic import Rig, camera_info_fields, generate_scene, make_rig, project_scene
from cvpose_ros.pipeline.sync import NS_PER_S, SyncEvent
from cvpose_ros.pipeline.view_input import Problem
from cvpose_ros.ros.conversions import keypoints_to_msg, stamp_to_ns
from cvpose_ros.ros.frame_ids import FrameIdRules
from cvpose_ros.ros.tf import TF_QOS

RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)

# Hostile kinds and their relative frequency; "good" frames are interleaved so lock-outs can be measured.
KEYPOINT_KINDS = {
    "wrong_sizes": 3, "nan_inf": 3, "huge_values": 3, "unknown_layout": 2, "zero_stamp": 2, "backwards_stamp": 2,
    "identical_stamp": 2, "stale_stamp": 2, "future_far": 2, "future_beyond_limit": 2, "future_within_limit": 1,
    "odd_frame_id": 3, "crowd": 1, "garbage_pair": 3, "far_cloud": 2, "empty": 1, "extreme_track_ids": 1,
}
CAMERA_INFO_KINDS = {
    "ci_wrong_sizes": 2, "ci_nan_k": 1, "ci_zero_k": 1, "ci_singular_k": 1, "ci_tiny_k": 1, "ci_absurd_d": 1,
    "ci_unknown_model": 1, "ci_zero_size": 1, "ci_huge_size": 1,
}
CONTENT_KINDS = {"wrong_sizes", "nan_inf", "huge_values", "unknown_layout", "odd_frame_id", "crowd", "empty",
                 "extreme_track_ids"}
WITHIN_LIMIT_SPACING = 300  # steps between two stamps ahead of the clock but within max_stamp_future
ODD_FRAME_IDS = (" ", "\t\n", "map/../cam0", "kamera_ü", "x" * 4096, "body_0", "l_wrist_3", "/", "a//b", "",
                 "/cam0_optical_frame", "cam1_optical_frame", "0cam", "cam 0")


@dataclass
class FuzzReport:
    """What a fuzz run found."""

    messages: int = 0
    kinds: Counter = field(default_factory=Counter)
    good_frames: int = 0
    answered_good_frames: int = 0
    crashes: int = 0                 # exceptions that escaped the node's callbacks
    processing_errors: int = 0       # exceptions the node caught itself (each one a bug)
    nonfinite_outputs: int = 0       # inf anywhere, NaN in markers/TF/confidence, or a NaN joint with confidence
    joints_beyond_range: int = 0     # published joints farther than max_range from the nearer camera
    bad_tf_frames: int = 0           # /tf or /tf_static frames breaking the frame-id rules
    outputs: int = 0                 # skeleton messages received
    longest_lockout_s: float = 0.0   # longest a camera was locked out (see _LockoutMeter)
    refused_good_messages: int = 0   # good messages the synchroniser refused (blocked by an earlier stamp)
    longest_unanswered_s: float = 0.0  # longest wall time good frames went unanswered (any reason, e.g. backlog)
    wall_s: float = 0.0
    problems: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}


class HostileStream:
    """Seeded sequence of (camera, message, kind, is_good_frame) steps for one rig."""

    def __init__(self, rig: Rig, seed: int, max_stamp_future: float, sync_slop: float,
                 crowd_max: int = 1000) -> None:
        self.rig = rig
        self.gap_ns = int(2 * sync_slop * NS_PER_S) + 1_000_000  # a good frame never pairs with a hostile one
        self.rng = np.random.default_rng(seed)
        self.max_future_ns = int(max_stamp_future * NS_PER_S)
        self.crowd_max = crowd_max
        scene = generate_scene(3, 4.0, 30.0, seed=seed)
        self.views = project_scene(scene, rig, noise="clean", seed=seed)
        self.cloud = rig.cameras[0].world_to_camera(scene.joints) + np.array([0.0, 0.0, 600.0])
        self.good_info = [self._info_fields(c) for c in (0, 1)]
        self.last_good = 0
        self.cursor = 0  # the newest ordinary stamp handed out: every ordinary stamp is newer than all before
        self.t = 0
        self.step = 0
        self.last_within = -10**9
        kinds = {**KEYPOINT_KINDS, **CAMERA_INFO_KINDS}
        self.kinds = list(kinds)
        self.weights = np.array(list(kinds.values()), float) / sum(kinds.values())

    def _info_fields(self, camera: int) -> dict:
        return camera_info_fields(self.rig.cameras[camera])

    def camera_info(self, camera: int, **changes) -> CameraInfo:
        f = {**self.good_info[camera], **changes}
        msg = CameraInfo(width=f["width"], height=f["height"], distortion_model=f["distortion_model"])
        for name in ("d", "k", "r", "p"):
            setattr(msg, name, f[name])
        msg.header.frame_id = f["frame_id"]
        return msg

    def _next_stamp(self, now_ns: int, gap_ns: int = 1_000) -> int:
        self.cursor = max(now_ns, self.cursor + gap_ns)
        return self.cursor

    def good_frame(self, now_ns: int) -> tuple[Keypoints2D, Keypoints2D]:
        """Both cameras at one stamp, `gap_ns` after anything hostile (so the sync cannot pair them with it)."""
        self.last_good = self._next_stamp(now_ns, self.gap_ns)
        t = self.t % self.views[0].keypoints.shape[0]
        self.t += 1
        return tuple(keypoints_to_msg(self.last_good, f"cam{c}_optical_frame", self.views[c].keypoints[t],
                                      self.views[c].confidence[t]) for c in (0, 1))

    def steps(self, clock: Callable[[], int]) -> Iterator[tuple[int, object, str, bool]]:
        """The next messages: one hostile message (a camera_info one is followed by the good camera_info), then
        with probability 0.4 a good frame, stamped by `clock()` when it is due (sending the hostile messages may
        take a while)."""
        now_ns = clock()
        kind = str(self.rng.choice(self.kinds, p=self.weights))
        self.step += 1
        if kind == "future_within_limit":  # accepted by design and blocks its camera: keep them apart
            if self.step - self.last_within < WITHIN_LIMIT_SPACING:
                kind = "future_beyond_limit"
            else:
                self.last_within = self.step
        camera = int(self.rng.integers(2))
        out: list[tuple[int, object, str, bool]] = []
        if kind.startswith("ci_"):
            out.append((camera, self._hostile_info(kind, camera), kind, False))
            out.append((camera, self.camera_info(camera), "good_camera_info", False))
        elif kind in ("garbage_pair", "far_cloud"):
            out.extend((c, m, kind, False) for c, m in enumerate(self._pair(kind, now_ns)))
        else:
            msg = self._hostile_keypoints(kind, camera, now_ns)
            out.append((camera, msg, kind, False))
            if kind in CONTENT_KINDS:  # the other camera's view at the same stamp, so the content gets used
                out.append((1 - camera, self._base(1 - camera, stamp_to_ns(msg.header.stamp)), "partner", False))
        yield from out
        if self.rng.random() < 0.4:
            yield from ((c, m, "good_frame", True) for c, m in enumerate(self.good_frame(clock())))

    # -------------------------------------------------------------------------------------------------- keypoints
    def _base(self, camera: int, stamp_ns: int) -> Keypoints2D:
        t = int(self.rng.integers(self.views[0].keypoints.shape[0]))
        v = self.views[camera]
        return keypoints_to_msg(stamp_ns, f"cam{camera}_optical_frame", v.keypoints[t], v.confidence[t])

    def _hostile_keypoints(self, kind: str, camera: int, now_ns: int) -> Keypoints2D:
        rng = self.rng
        stamp = self._next_stamp(now_ns)
        if kind == "zero_stamp":
            stamp = 0
        elif kind == "backwards_stamp":
            stamp = max(0, self.last_good - int(rng.integers(1, 2 * NS_PER_S)))
        elif kind == "identical_stamp":
            stamp = self.last_good
        elif kind == "stale_stamp":
            stamp = max(0, now_ns - int(rng.uniform(2, 1e6) * NS_PER_S))
        elif kind == "future_far":
            stamp = int(rng.choice([(2**31 - 1) * NS_PER_S, now_ns + 10**6 * NS_PER_S, now_ns + 3600 * NS_PER_S]))
        elif kind == "future_beyond_limit":
            stamp = now_ns + self.max_future_ns + int(rng.uniform(0.05, 10.0) * NS_PER_S)
        elif kind == "future_within_limit":
            stamp = now_ns + int(rng.uniform(0.1, 0.9) * self.max_future_ns)
        msg = self._base(camera, stamp)
        if kind == "wrong_sizes":
            for p in msg.people:
                name = str(rng.choice(["x", "y", "confidence"]))
                n = int(rng.choice([0, 1, 16, 18, 100]))
                setattr(p, name, rng.uniform(0, 1000, n).tolist())
        elif kind == "nan_inf":
            for p in msg.people:
                for name in ("x", "y", "confidence"):
                    values = np.asarray(getattr(p, name), np.float32)
                    mask = rng.random(values.shape) < 0.3
                    values[mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
                    setattr(p, name, values.tolist())
        elif kind == "huge_values":
            for p in msg.people:
                p.x = rng.choice([3e38, -3e38, 1e30, 1e-30, 0.0], 17).tolist()
                p.y = rng.choice([3e38, -3e38, 1e30, 0.0], 17).tolist()
                p.confidence = rng.choice([0.9, 1e30, -1e30, 0.0], 17).tolist()
        elif kind == "unknown_layout":
            msg.layout = str(rng.choice(["body25", "H36M17", " ", "coco17\x00", "🙂" * 50, "x" * 5000]))
        elif kind == "odd_frame_id":
            msg.header.frame_id = str(rng.choice(ODD_FRAME_IDS))
        elif kind == "crowd":
            count = int(rng.integers(100, self.crowd_max + 1))
            msg.people = [PersonKeypoints2D(track_id=i, x=rng.uniform(0, 1280, 17).tolist(),
                                            y=rng.uniform(0, 720, 17).tolist(),
                                            confidence=rng.uniform(0, 1, 17).tolist()) for i in range(count)]
        elif kind == "empty":
            msg.people = []
        elif kind == "extreme_track_ids":
            for p in msg.people:
                p.track_id = int(rng.choice([-(2**31), 2**31 - 1, -1, 0]))
        return msg

    def _pair(self, kind: str, now_ns: int) -> tuple[Keypoints2D, Keypoints2D]:
        """Both cameras at the same stamp: random garbage people, or the scene moved 600 m away (consistent)."""
        rng = self.rng
        stamp = self._next_stamp(now_ns)
        if kind == "garbage_pair":
            n = int(rng.integers(1, 6))
            size = [(cam.model.width, cam.model.height) for cam in self.rig.cameras]
            kp = [np.stack([rng.uniform(-0.2, 1.2, (n, 17)) * w, rng.uniform(-0.2, 1.2, (n, 17)) * h], -1)
                  for w, h in size]
        else:
            t = int(rng.integers(self.cloud.shape[0]))
            pts = self.cloud[t]
            kp = [self.rig.cameras[0].model.project(pts),
                  self.rig.cameras[1].model.project(self.rig.cam1_from_cam0.apply(pts))]
        conf = [np.where(np.isfinite(k).all(-1), 0.9, 0.0) for k in kp]
        return tuple(keypoints_to_msg(stamp, f"cam{c}_optical_frame", kp[c], conf[c]) for c in (0, 1))

    # -------------------------------------------------------------------------------------------------- camera_info
    def _hostile_info(self, kind: str, camera: int) -> CameraInfo:
        good = self.good_info[camera]
        k = list(good["k"])
        if kind == "ci_wrong_sizes":
            return self.camera_info(camera, **{str(self.rng.choice(["d", "k", "r", "p"])): [1.0] * int(
                self.rng.choice([0, 3, 5, 100]))})
        if kind == "ci_nan_k":
            k[0] = float("nan")
            return self.camera_info(camera, k=k)
        if kind == "ci_zero_k":
            return self.camera_info(camera, k=[0.0] * 9)
        if kind == "ci_singular_k":
            return self.camera_info(camera, k=[k[0], 0.0, k[2], 0.0, 0.0, k[5], 0.0, 0.0, 1.0])
        if kind == "ci_tiny_k":
            return self.camera_info(camera, k=[1e-300, 0.0, k[2], 0.0, 1e-300, k[5], 0.0, 0.0, 1.0])
        if kind == "ci_absurd_d":
            return self.camera_info(camera, distortion_model="plumb_bob",
                                    d=[float(self.rng.choice([1e6, -1e6, 50.0])), 0.0, 0.0, 0.0, 0.0])
        if kind == "ci_unknown_model":
            return self.camera_info(camera, distortion_model=str(self.rng.choice(["kannala", "fov", "🙂"])))
        if kind == "ci_zero_size":
            return self.camera_info(camera, width=0, height=0)
        return self.camera_info(camera, width=2**32 - 1, height=2**32 - 1)


class _Probe:
    """Publishes a stream into the node and checks every output as it arrives (nothing is stored but stamps)."""

    def __init__(self, context: rclpy.Context, namespace: str, node, report: FuzzReport, max_range: float,
                 camera_centres: np.ndarray) -> None:
        self.node = rclpy.create_node("fuzz_probe", context=context, namespace=namespace)
        self.report, self.max_range, self.centres = report, max_range, camera_centres
        self.rules = FrameIdRules(node.params.tf_naming.prefix, node.params.tf_naming.root_format,
                                  node.params.tf_naming.joint_format)
        self.pub_kp = [self.node.create_publisher(Keypoints2D, f"cam{c}/keypoints", RELIABLE) for c in (0, 1)]
        self.pub_info = [self.node.create_publisher(CameraInfo, f"cam{c}/camera_info", RELIABLE) for c in (0, 1)]
        self.answered: set[int] = set()
        for topic in ("skeletons", "skeletons_coarse"):
            self.node.create_subscription(Skeleton3DArray, topic, self._on_skeletons, RELIABLE)
        self.node.create_subscription(MarkerArray, "skeleton_markers", self._on_markers, RELIABLE)
        self.node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS)

    def _on_skeletons(self, msg: Skeleton3DArray) -> None:
        self.report.outputs += 1
        self.answered.add(stamp_to_ns(msg.header.stamp))
        if not msg.skeletons:
            return
        joints = np.array([[(p.x, p.y, p.z) for p in s.joints] for s in msg.skeletons], np.float64)
        conf = np.array([list(s.confidence) for s in msg.skeletons], np.float64)
        errors = np.array([s.reprojection_error for s in msg.skeletons], np.float64)
        missing = np.isnan(joints).any(axis=-1)
        self.report.nonfinite_outputs += int(np.isinf(joints).sum() + (~np.isfinite(conf)).sum()
                                             + (missing & (conf > 0)).sum() + np.isinf(errors).sum())
        distance = np.linalg.norm(joints[..., None, :] - self.centres, axis=-1).min(axis=-1)
        with np.errstate(invalid="ignore"):
            self.report.joints_beyond_range += int((distance > self.max_range).sum())

    def _on_markers(self, msg: MarkerArray) -> None:
        for m in msg.markers:
            values = [(p.x, p.y, p.z) for p in m.points] + [(m.pose.position.x, m.pose.position.y,
                                                             m.pose.position.z)]
            self.report.nonfinite_outputs += int((~np.isfinite(np.asarray(values, np.float64))).sum())

    def _on_tf(self, msg: TFMessage) -> None:
        for t in msg.transforms:
            tr, rot = t.transform.translation, t.transform.rotation
            values = np.array([tr.x, tr.y, tr.z, rot.x, rot.y, rot.z, rot.w])
            self.report.nonfinite_outputs += int((~np.isfinite(values)).sum())
        # the reference frame is the parent that is no child here (person roots are parents of their joints)
        tops = {t.header.frame_id for t in msg.transforms} - {t.child_frame_id for t in msg.transforms}
        self.report.bad_tf_frames += sum(self.rules.problem(f) is not None for f in tops)


class _LockoutMeter:
    """Wraps the node's synchroniser: for every good message it refuses, how much later the message would have had to
    be stamped to get through (the stamp that blocked it minus its own). A live camera stamps with the time, so this
    is how long a camera is locked out; it does not depend on how fast the fuzz sends good frames."""

    def __init__(self, sync) -> None:
        self.good: tuple[set[int], set[int]] = (set(), set())  # good stamps not yet pushed, per camera
        self.longest_ns = 0
        self.refused = 0
        self._sync = sync
        self._push = sync.push
        sync.push = self.push

    def push(self, camera: int, stamp_ns: int, payload, now_ns: int | None = None):
        pair, events = self._push(camera, stamp_ns, payload, now_ns)
        if stamp_ns in self.good[camera]:  # the good message itself (a hostile copy of its stamp comes later)
            self.good[camera].discard(stamp_ns)
            if SyncEvent.FUTURE in events:  # a good frame is stamped now: never expected
                self.refused += 1
                self.longest_ns = max(self.longest_ns, 10**18)
            elif SyncEvent.OUT_OF_ORDER in events and self._sync.blocked_by is not None:
                self.refused += 1
                self.longest_ns = max(self.longest_ns, self._sync.blocked_by[1] - stamp_ns)
        return pair, events


def _unanswered(good: list[tuple[int, float]], answered: set[int]) -> float:
    """Longest wall time from an unanswered good frame to the next answered one (or the last good frame)."""
    longest, start = 0.0, None
    for stamp, sent in good:
        if stamp in answered:
            if start is not None:
                longest = max(longest, sent - start)
            start = None
        elif start is None:
            start = sent
    if start is not None:
        longest = max(longest, good[-1][1] - start)
    return longest


def run_fuzz(messages: int, seed: int = 0, parameters: dict | None = None, namespace: str = "fuzz",
             spin_s: float = 0.004, crowd_max: int = 1000, progress=None) -> FuzzReport:
    """Play about `messages` hostile and good messages into a fresh in-process RefinerNode; returns the report.

    `parameters` override the node's (the rig's camera pose is set here); `progress(n)` is called per step.
    """
    from cvpose_ros.ros.refiner_node import RefinerNode

    rig = make_rig("demo")
    cam0_from_cam1 = rig.cam1_from_cam0.inverse()
    values = {"cam1.translation": cam0_from_cam1.t.tolist(), "cam1.rotation": cam0_from_cam1.quaternion().tolist(),
              "input_depth": 200, "warn_throttle": 5.0, "sync_slop": 0.002, **(parameters or {})}
    report = FuzzReport()
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = RefinerNode(context=context, namespace=namespace,
                           parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        centres = np.stack([np.zeros(3), cam0_from_cam1.t])
        probe = _Probe(context, namespace, node, report, node.params.max_range, centres)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(probe.node)
        deadline = time.monotonic() + 10.0
        while not all(p.get_subscription_count() > 0 for p in probe.pub_kp + probe.pub_info):
            if time.monotonic() > deadline:
                raise TimeoutError("fuzz: the node's subscriptions were not discovered")
            executor.spin_once(timeout_sec=0.01)
        meter = _LockoutMeter(node.sync)
        stream = HostileStream(rig, seed, node.params.max_stamp_future, node.params.sync_slop, crowd_max)
        sent = {CameraInfo: [1, 1], Keypoints2D: [0, 0]}
        taken = {CameraInfo: node.diag.camera_info_in, Keypoints2D: node.diag.frames_in}
        for c in (0, 1):
            probe.pub_info[c].publish(stream.camera_info(c))
        good: list[tuple[int, float]] = []
        start = time.monotonic()

        def spin(seconds: float) -> None:
            until = time.monotonic() + seconds
            while True:
                try:
                    executor.spin_once(timeout_sec=0.0005)
                except Exception:  # noqa: BLE001 - anything escaping the node's callbacks is a crash
                    report.crashes += 1
                if time.monotonic() >= until:
                    return

        def publish(camera: int, msg) -> None:
            """Publish and wait until the node took the message (closed loop: no backlog, so stamps stay near
            the node's clock and topics cannot overtake each other); a lost one (best effort) is given up."""
            kind = type(msg)
            (probe.pub_info if kind is CameraInfo else probe.pub_kp)[camera].publish(msg)
            sent[kind][camera] += 1
            until = time.monotonic() + 0.5
            while taken[kind][camera] < sent[kind][camera] and time.monotonic() < until:
                spin(0.0005)
            sent[kind][camera] = taken[kind][camera]

        spin(0.05)
        while report.messages < messages:
            for camera, msg, kind, is_good in stream.steps(lambda: node.get_clock().now().nanoseconds):
                if is_good:
                    meter.good[camera].add(stamp_to_ns(msg.header.stamp))
                publish(camera, msg)
                for _ in range(5):  # a good frame must never meet a bad calibration: re-send a lost good one
                    if kind != "good_camera_info" or node.diag.camera_info_error[camera] is None:
                        break
                    publish(camera, msg)
                report.messages += 1
                report.kinds[kind] += 1
                if is_good and camera == 1:
                    good.append((stamp_to_ns(msg.header.stamp), time.monotonic()))
            spin(spin_s)
            if progress is not None:
                progress(report.messages)
        spin(1.0)
        report.wall_s = time.monotonic() - start
        report.good_frames = len(good)
        report.answered_good_frames = sum(stamp in probe.answered for stamp, _ in good)
        report.longest_unanswered_s = _unanswered(good, probe.answered)
        report.longest_lockout_s = meter.longest_ns / NS_PER_S
        report.refused_good_messages = meter.refused
        report.processing_errors = int(node.diag.problems[Problem.PROCESSING_ERROR])
        report.problems = {p.value: int(n) for p, n in node.diag.problems.items() if n}
        executor.shutdown()
        probe.node.destroy_node()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    return report


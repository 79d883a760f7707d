"""`refiner_node`: two cameras' 2D keypoints in; refined 3D skeletons, markers, TF and diagnostics out.

A thin ROS layer: it converts messages, holds parameters and publishes. Pairing is `cvpose_ros.sync`, the per-frame
work is `cvpose_ros.frame_processor.SkeletonPipeline`. Whatever arrives, the node keeps running: a frame it cannot
use is skipped, counted in /diagnostics and reported with a warning throttled per problem kind.
"""

from __future__ import annotations

import sys
import time

from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from cvpose_ros.frame_processor import FrameResult, SkeletonPipeline, Skeletons
from cvpose_ros.ros.conversions import keypoints_from_msg, skeletons_to_msg, stamp_to_ns
from cvpose_ros.ros.diagnostics import NodeDiagnostics
from cvpose_ros.ros.entry import run_node
from cvpose_ros.ros.extrinsics import CalibrationCache, ExtrinsicsUnavailable
from cvpose_ros.ros.markers import delete_all_markers, skeleton_markers
from cvpose_ros.ros.params import ParameterError, RefinerParams, read_parameters
from cvpose_ros.ros.tf import TF_QOS, TF_STATIC_QOS, skeleton_transforms, static_camera_transforms
from cvpose_ros.sync import ApproximateTimeSync, SyncedPair, SyncEvent
from cvpose_ros.view_input import FrameError, Problem

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
NS_PER_S = 1_000_000_000


class StartupError(RuntimeError):
    """The node cannot start with this configuration (bad checkpoint, unusable device or extrinsics source)."""


class RefinerNode(Node):
    """Subscribes cam{0,1}/keypoints and cam{0,1}/camera_info; publishes skeletons, markers, /tf, /diagnostics."""

    def __init__(self, **kwargs) -> None:
        super().__init__("refiner_node", **kwargs)
        self.params: RefinerParams = read_parameters(self)
        p = self.params
        self.diag = NodeDiagnostics(hardware_id=self.get_fully_qualified_name())
        self.pipeline = SkeletonPipeline(self._create_refiner(), p.layout, p.min_confidence, p.min_valid_joints,
                                         p.association_gate, p.track_max_distance, p.track_max_missed,
                                         p.guard, p.max_people)
        try:
            self.calibration = CalibrationCache(p, self._create_tf_buffer())
        except ExtrinsicsUnavailable as exc:
            raise StartupError(str(exc)) from exc
        self.sync = ApproximateTimeSync(p.sync_slop, p.queue_size)
        self._last_warning: dict[Problem, float] = {}
        self._static_frames: tuple[str, str] | None = None

        self.pub_skeletons = self.create_publisher(Skeleton3DArray, "skeletons", OUTPUT_QOS)
        self.pub_coarse = self.create_publisher(Skeleton3DArray, "skeletons_coarse", OUTPUT_QOS) \
            if p.publish_coarse else None
        self.pub_markers = self.create_publisher(MarkerArray, "skeleton_markers", OUTPUT_QOS) \
            if p.publish_markers else None
        self.pub_tf = self.create_publisher(TFMessage, "/tf", TF_QOS) if p.publish_tf else None
        self.pub_tf_static = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS) \
            if p.extrinsics_source == "parameters" else None
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_QOS)
        # Sensor-data style inputs (best effort, volatile) with a short history: when processing falls behind the
        # cameras, the middleware overwrites old frames instead of queueing them, so latency stays bounded.
        input_qos = QoSProfile(depth=p.input_depth, reliability=ReliabilityPolicy.BEST_EFFORT,
                               durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
        for cam in (0, 1):
            self.create_subscription(Keypoints2D, f"cam{cam}/keypoints",
                                     lambda msg, c=cam: self._on_keypoints(c, msg), input_qos)
            self.create_subscription(CameraInfo, f"cam{cam}/camera_info",
                                     lambda msg, c=cam: self._on_camera_info(c, msg), input_qos)
        self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1.0), on_clock_change=True),
            post_callback=self._on_time_jump)
        if self.pub_markers is not None:
            self.pub_markers.publish(delete_all_markers(p.reference_frame or p.frame_ids[0] or "cam0_optical_frame"))
        if self.pub_tf_static is not None and p.frame_ids[0] and p.frame_ids[1]:
            self._publish_static_tf(p.frame_ids)
        self.get_logger().info(f"refiner_node ready: refinement {self.diag.refinement_state}; extrinsics from "
                               f"{p.extrinsics_source}; outputs in {p.reference_frame or 'camera 0 optical frame'}")

    # ------------------------------------------------------------------------------------------------ start-up
    def _create_refiner(self):
        """CV-UGCN refiners per keypoint layout, or None when refinement is switched off."""
        if not self.params.refine:
            self.diag.refinement_state = "off (refine=false)"
            return None
        from cvpose_ros.model.checkpoint import CheckpointError
        from cvpose_ros.refiner import LayoutRefiners

        try:
            refiners = LayoutRefiners([self.params.checkpoint] if self.params.checkpoint else [], self.params.device,
                                      num_threads=self.params.cpu_threads or None, runtime=self.params.runtime)
        except (CheckpointError, ValueError, OSError) as exc:
            raise StartupError(f"cannot load refiner: {exc}") from exc
        self.diag.refinement_state = ("on: " if refiners.enabled else "disabled: ") + refiners.reason
        self.diag.layout_refinement = {layout: r.enabled for layout, r in refiners.refiners.items()}
        for layout, refiner in refiners.refiners.items():
            if not refiner.enabled:
                self.get_logger().warning(f"refinement disabled for {layout}: {refiner.reason}")
        return refiners

    def _create_tf_buffer(self):
        if self.params.extrinsics_source != "tf":
            return None
        try:
            import tf2_ros
        except ImportError:
            return None
        buffer = tf2_ros.Buffer()
        self._tf_listener = tf2_ros.TransformListener(buffer, self)
        return buffer

    # ------------------------------------------------------------------------------------------------ callbacks
    def _on_camera_info(self, camera: int, msg: CameraInfo) -> None:
        try:
            error = self.calibration.update(camera, msg)
        except Exception as exc:  # e.g. arrays of the wrong size: never let a message stop the node
            self._problem(Problem.INVALID_CALIBRATION, f"cam{camera}/camera_info unusable: {exc!r}")
            return
        if error is not None:
            self._problem(error.problem, f"cam{camera}/camera_info rejected: {error}")

    def _on_keypoints(self, camera: int, msg: Keypoints2D) -> None:
        self.diag.frames_in[camera] += 1
        try:
            stamp_ns = stamp_to_ns(msg.header.stamp)
            max_age_ns = int(self.params.max_stamp_age * NS_PER_S)
            age_ns = self.get_clock().now().nanoseconds - stamp_ns
            if max_age_ns > 0 and age_ns > max_age_ns:
                self._problem(Problem.STALE_STAMP, f"cam{camera} keypoints are {age_ns / NS_PER_S:.3f} s old "
                                                   f"(max_stamp_age {self.params.max_stamp_age} s): skipped")
                return
            pair, events = self.sync.push(camera, stamp_ns, keypoints_from_msg(msg))
            for event in events:
                if event is SyncEvent.DROPPED:
                    self.diag.count(Problem.SYNC_DROP)
                elif event is SyncEvent.OUT_OF_ORDER:
                    self._problem(Problem.OUT_OF_ORDER, f"cam{camera} keypoints stamp {stamp_ns / NS_PER_S:.6f} s "
                                                        "is not newer than the previous one: skipped")
            if pair is not None:
                self._process(pair)
        except Exception as exc:  # the node must survive anything a message can contain
            self._problem(Problem.PROCESSING_ERROR, f"unexpected error on cam{camera} keypoints: {exc!r}")

    def _on_time_jump(self, _info) -> None:
        """Replays restart: forget queued messages and tracks when time goes back."""
        self.sync.reset()
        self.pipeline.reset()
        self.get_logger().info("time jumped backwards: synchroniser and person ids reset")

    # ------------------------------------------------------------------------------------------------ processing
    def _frame_ids(self, pair: SyncedPair) -> tuple[str, str]:
        views = (pair.cam0.payload, pair.cam1.payload)
        return tuple(self.params.frame_ids[c] or views[c].frame_id.lstrip("/") or f"cam{c}_optical_frame"
                     for c in (0, 1))

    def _process(self, pair: SyncedPair) -> None:
        start = time.perf_counter()
        self.diag.pairs += 1
        frame_ids = self._frame_ids(pair)
        reference = self.params.reference_frame or frame_ids[0]
        try:
            cameras = self.calibration.setup(frame_ids, reference, pair.stamp_ns)
            self.diag.calibration_ok = True
            result = self.pipeline.process(cameras, pair.cam0.payload, pair.cam1.payload)
        except FrameError as err:
            self.diag.calibration_ok &= err.problem not in (Problem.NO_CAMERA_INFO, Problem.INVALID_CALIBRATION)
            self._problem(err.problem, f"frame {pair.stamp_ns / NS_PER_S:.6f} skipped: {err}")
            return
        for problem, count in result.problems.items():
            self._problem(problem, f"frame {pair.stamp_ns / NS_PER_S:.6f}: {count} x {problem.value}", count)
        if self.pub_tf_static is not None and frame_ids != self._static_frames:
            self._publish_static_tf(frame_ids)
        self._publish(result, reference)
        self.diag.frame_done(len(result.refined.track_ids), (time.perf_counter() - start) * 1e3)
        self.diag.layout_frame(result.layout, result.refined_applied, result.guarded_joints)
        self.diag.matching_frame(result.swap_repairs, result.dropped_joints)

    def _publish(self, result: FrameResult, reference: str) -> None:
        refined: Skeletons = result.refined
        stamp = result.stamp_ns
        layout = result.layout
        self.pub_skeletons.publish(skeletons_to_msg(stamp, reference, refined.track_ids, refined.joints,
                                                    refined.confidence, refined.reprojection_error, layout))
        if self.pub_coarse is not None:
            c = result.coarse
            self.pub_coarse.publish(skeletons_to_msg(stamp, reference, c.track_ids, c.joints, c.confidence,
                                                     c.reprojection_error, layout))
        if self.pub_markers is not None:
            self.pub_markers.publish(skeleton_markers(stamp, reference, refined.track_ids, refined.joints,
                                                      self.params.marker_lifetime, layout=layout))
        if self.pub_tf is not None and len(refined.track_ids):
            self.pub_tf.publish(skeleton_transforms(stamp, reference, refined.track_ids, refined.joints,
                                                    self.params.tf_naming, layout))

    def _publish_static_tf(self, frame_ids: tuple[str, str]) -> None:
        reference = self.params.reference_frame or frame_ids[0]
        cams = list(zip(frame_ids, self.params.reference_from_cams, strict=True))
        self.pub_tf_static.publish(static_camera_transforms(self.get_clock().now().nanoseconds, reference, cams))
        self._static_frames = frame_ids

    def _problem(self, problem: Problem, message: str, count: int = 1) -> None:
        """Count a problem in /diagnostics and warn, at most once per `warn_throttle` seconds per kind."""
        self.diag.count(problem, count)
        now = time.monotonic()
        if now - self._last_warning.get(problem, -1e18) >= self.params.warn_throttle:
            self._last_warning[problem] = now
            self.get_logger().warning(f"[{problem.value}] {message}")

    def _publish_diagnostics(self) -> None:
        self.pub_diagnostics.publish(self.diag.to_msg(self.get_clock().now().nanoseconds))


def main(args: list[str] | None = None) -> int:
    """Console entry point (`refiner_node`, `cvpose-refiner`); exit status 1 on an invalid configuration."""
    return run_node(RefinerNode, "refiner_node: cannot start: ", (ParameterError, StartupError), args)


if __name__ == "__main__":
    sys.exit(main())

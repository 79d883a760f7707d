"""`refiner_node`: two (or more, `cameras`) cameras' 2D keypoints in; refined 3D skeletons, markers, TF and
diagnostics out.

A thin ROS layer: it converts messages, holds parameters and publishes. Pairing is `cvpose_ros.pipeline.sync`, the
per-frame work is `cvpose_ros.pipeline.frame_processor.SkeletonPipeline`. Whatever arrives, the node keeps running: a
frame it cannot use is skipped, counted in /diagnostics and reported with a warning throttled per problem kind.

`RefinerCore` holds all of it in three steps (configure: parameters -> pipeline and publishers; activate: inputs
and timers; deactivate/cleanup: the reverse) so the plain node (`RefinerNode`) and the managed one
(`cvpose_ros.ros.managed_refiner_node`) share one implementation. Parameters marked live in
`cvpose_ros.ros.params` are validated and applied on `ros2 param set`; the others are read-only.
"""

from __future__ import annotations

import sys
import time

from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from cvpose_ros.body.plausibility import PlausibilityCheck
from cvpose_ros.pipeline.frame_processor import FrameResult, SkeletonPipeline, Skeletons
from cvpose_ros.pipeline.sync import NS_PER_S, ApproximateTimeSync, SyncedPair, SyncEvent
from cvpose_ros.pipeline.view_input import FrameError, Problem
from cvpose_ros.ros.conversions import keypoints_from_msg, skeletons_to_msg, stamp_to_ns
from cvpose_ros.ros.diagnostics import NodeDiagnostics
from cvpose_ros.ros.entry import run_node
from cvpose_ros.ros.extrinsics import CalibrationCache, ExtrinsicsUnavailable
from cvpose_ros.ros.frame_ids import FrameIdRules
from cvpose_ros.ros.markers import delete_all_markers, skeleton_markers
from cvpose_ros.ros.params import LiveParameters, ParameterError, RefinerParams, refiner_parameters
from cvpose_ros.ros.tf import TF_QOS, TF_STATIC_QOS, ForeignFrames, skeleton_transforms, static_camera_transforms

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
_HINTS = {Problem.IMPLAUSIBLE_PERSON: " (dropped: a joint beyond max_range {p.max_range} m or a bone outside a "
                                      "human length range)"}
CAMERA_TF_DELAY_S = 1.0  # listen to TF this long before the first /tf_static of the cameras (see _camera_tf_check)
CAMERA_TF_WATCH_S = 10.0  # then keep reading /tf (not only /tf_static) this long for camera frames, and stop


class StartupError(RuntimeError):
    """The node cannot start with this configuration (bad checkpoint, unusable device or extrinsics source)."""


class RefinerCore:
    """The refiner's state and callbacks, mixed into an rclpy Node or LifecycleNode (see module docstring)."""

    params: RefinerParams

    # ------------------------------------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> None:
        """Declare and validate every parameter (raises ParameterError); later sets go through `_on_params`."""
        self._live: LiveParameters[RefinerParams] = refiner_parameters(self, self._on_params)
        self.params = self._live.settings
        self._configured = False

    def _on_params(self, old: RefinerParams, new: RefinerParams) -> None:
        """Apply an accepted `ros2 param set` (only live parameters get here; the rest are read-only)."""
        self.params = new
        if not self._configured:
            return
        self.pipeline.default_layout = new.layout
        self.pipeline.min_confidence = new.min_confidence
        self.pipeline.min_valid_joints = new.min_valid_joints
        self.pipeline.set_association_gate(new.association_gate)
        self.pipeline.max_people = new.max_people
        self.pipeline.guard = new.guard
        self.pipeline.tracker.max_distance_m = new.track_max_distance
        self.pipeline.tracker.timeout_s = new.track_timeout
        if (new.sync_slop, new.queue_size) != (old.sync_slop, old.queue_size):
            self.sync = ApproximateTimeSync(new.sync_slop, new.queue_size,  # queued messages are dropped once
                                            max_future_s=new.max_stamp_future, cameras=len(new.cameras))
        self.diag.name = new.diagnostics_name
        self._update_output_publishers()

    # ------------------------------------------------------------------------------------------------ life cycle
    def _configure(self) -> None:
        """Parameters -> refiner, calibration, synchroniser and publishers (raises StartupError)."""
        p = self.params
        self.diag = NodeDiagnostics(hardware_id=self.get_fully_qualified_name(), name=p.diagnostics_name,
                                    hold_s=p.diagnostics_hold, camera_timeout_s=p.camera_timeout,
                                    cameras=len(p.cameras))
        self.pipeline = SkeletonPipeline(self._create_refiner(), p.layout, p.min_confidence, p.min_valid_joints,
                                         p.association_gate, p.track_max_distance, p.track_timeout, p.guard,
                                         p.max_people, plausibility=PlausibilityCheck(p.max_range, p.bone_check))
        self.frame_rules = FrameIdRules(p.tf_naming.prefix, p.tf_naming.root_format, p.tf_naming.joint_format)
        self.pipeline.tracker.next_id = getattr(self, "_next_person_id", 0)  # after a cleanup: ids go on growing
        try:
            self.calibration = CalibrationCache(p, self._create_tf_buffer())
        except ExtrinsicsUnavailable as exc:
            raise StartupError(str(exc)) from exc
        self.sync = ApproximateTimeSync(p.sync_slop, p.queue_size, max_future_s=p.max_stamp_future,
                                        cameras=len(p.cameras))
        self._known_frames: list[str | None] = [None] * len(p.cameras)  # each camera's latest frame id
        self._camera_offset_ns: int | None = None  # last measured stamp offset between unpaired camera messages
        self._last_warning: dict[Problem, float] = {}
        self._camera_frames: tuple[str, ...] | None = None   # every camera's frame, once all are known
        self.pub_skeletons = self.create_publisher(Skeleton3DArray, "skeletons", OUTPUT_QOS)
        self.pub_coarse = self.pub_markers = self.pub_tf = None
        self._update_output_publishers()
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_QOS)
        # Camera frames: only with parameters as the source and on request, and never over a frame TF already has.
        self.pub_tf_static = None
        self._camera_tf_sent: tuple = ()                     # (parent, child) edges on /tf_static now
        self._camera_tf_conflicts: set[str] = set()          # frames left out (warned once each)
        self._camera_tf_after = 0.0
        if p.extrinsics_source == "parameters" and p.publish_camera_tf:
            self.pub_tf_static = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
            self.foreign_frames = ForeignFrames()
            self._tf_watch = [self.create_subscription(TFMessage, topic, self.foreign_frames.add, qos)
                              for topic, qos in (("/tf_static", TF_STATIC_QOS), ("/tf", TF_QOS))]
        self._subscriptions_in: list = []
        self._timers: list = []
        self._configured = True

    def _activate(self) -> None:
        """Start the inputs and timers."""
        p = self.params
        # Sensor-data style inputs (best effort, volatile) with a short history: when processing falls behind the
        # cameras, the middleware overwrites old frames instead of queueing them, so latency stays bounded.
        input_qos = QoSProfile(depth=p.input_depth, reliability=ReliabilityPolicy.BEST_EFFORT,
                               durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
        for cam, namespace in enumerate(p.cameras):
            self._subscriptions_in.append(self.create_subscription(
                Keypoints2D, f"{namespace}/keypoints", lambda msg, c=cam: self._on_keypoints(c, msg), input_qos))
            self._subscriptions_in.append(self.create_subscription(
                CameraInfo, f"{namespace}/camera_info", lambda msg, c=cam: self._on_camera_info(c, msg), input_qos))
        self.diag.started_s = time.monotonic()
        self._timers.append(self.create_timer(p.diagnostics_period, self._on_diagnostics_timer))
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1.0), on_clock_change=True),
            post_callback=self._on_time_jump)
        self._camera_tf_after = time.monotonic() + CAMERA_TF_DELAY_S
        if self.pub_tf_static is not None and all(p.frame_ids):
            self._camera_frames = p.frame_ids
            self._timers.append(self.create_timer(CAMERA_TF_DELAY_S, self._camera_tf_check))
        self.get_logger().info(f"refiner_node ready: refinement {self.diag.refinement_state}; extrinsics from "
                               f"{p.extrinsics_source}; outputs in {p.reference_frame or 'camera 0 optical frame'}"
                               + ("" if len(p.cameras) == 2 else f"; {len(p.cameras)} cameras: {', '.join(p.cameras)}"))

    def _deactivate(self) -> None:
        """Stop the inputs and timers; queued messages and tracks are forgotten."""
        for entity in self._subscriptions_in:
            self.destroy_subscription(entity)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subscriptions_in, self._timers = [], []
        if getattr(self, "_jump_handle", None) is not None:
            self._jump_handle.unregister()
            self._jump_handle = None
        self.sync.reset()
        self.pipeline.reset()

    def _cleanup(self) -> None:
        """Release what `_configure` created (the refiner's weights, publishers, TF listeners)."""
        for name in ("pub_skeletons", "pub_coarse", "pub_markers", "pub_tf", "pub_diagnostics", "pub_tf_static"):
            pub = getattr(self, name, None)
            if pub is not None:
                self.destroy_publisher(pub)
            setattr(self, name, None)
        for sub in getattr(self, "_tf_watch", []):
            self.destroy_subscription(sub)
        self._tf_watch = []
        if getattr(self, "pipeline", None) is not None:
            self._next_person_id = self.pipeline.tracker.next_id
        self.pipeline = None
        self._configured = False

    # ------------------------------------------------------------------------------------------------ start-up
    def _create_refiner(self):
        """CV-UGCN refiners per keypoint layout, or None when refinement is switched off."""
        if not self.params.refine:
            self.diag.refinement_state = "off (refine=false)"
            return None
        from cvpose_ros.model.checkpoint import CheckpointError
        from cvpose_ros.refine.refiner import LayoutRefiners

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
        # Its own spin thread: a lookup waiting (up to tf_timeout) inside our callback still receives TF.
        self._tf_listener = tf2_ros.TransformListener(buffer, self, spin_thread=True)
        return buffer

    def _update_output_publishers(self) -> None:
        """Create or destroy the optional publishers to match publish_coarse / publish_markers / publish_tf."""
        p = self.params
        wanted = {"pub_coarse": (p.publish_coarse, Skeleton3DArray, "skeletons_coarse", OUTPUT_QOS, None),
                  "pub_markers": (p.publish_markers, MarkerArray, "skeleton_markers", OUTPUT_QOS,
                                  PublisherEventCallbacks(matched=self._on_marker_subscriber)),
                  "pub_tf": (p.publish_tf, TFMessage, "/tf", TF_QOS, None)}
        for attr, (on, kind, topic, qos, events) in wanted.items():
            pub = getattr(self, attr)
            if on and pub is None:
                try:
                    setattr(self, attr, self.create_publisher(kind, topic, qos, event_callbacks=events))
                except UnsupportedEventTypeError:  # an rmw without matched events: one DELETEALL now instead
                    setattr(self, attr, self.create_publisher(kind, topic, qos))
                    self._on_marker_subscriber(None)
            elif not on and pub is not None:
                self.destroy_publisher(pub)
                setattr(self, attr, None)

    # ------------------------------------------------------------------------------------------------ callbacks
    def _on_marker_subscriber(self, info) -> None:
        """A new skeleton_markers subscriber (RViz) first gets a DELETEALL, clearing what an earlier run left."""
        if (info is None or info.current_count_change > 0) and self.pub_markers is not None:
            p = self.params
            frame = p.reference_frame or (self._camera_frames or p.frame_ids)[0] or "cam0_optical_frame"
            self.pub_markers.publish(delete_all_markers(frame))

    def _on_camera_info(self, camera: int, msg: CameraInfo) -> None:
        self.diag.camera_info_in[camera] += 1
        try:
            error = self.calibration.update(camera, msg)
        except Exception as exc:  # e.g. arrays of the wrong size: never let a message stop the node
            self.diag.camera_info_error[camera] = f"camera_info unusable: {exc!r}"
            self._problem(Problem.INVALID_CALIBRATION, f"cam{camera}/camera_info unusable: {exc!r}")
            return
        self.diag.camera_info_error[camera] = None if error is None else f"camera_info rejected: {error}"
        if error is not None:
            self._problem(error.problem, f"cam{camera}/camera_info rejected: {error}")

    def _on_keypoints(self, camera: int, msg: Keypoints2D) -> None:
        try:
            stamp_ns = stamp_to_ns(msg.header.stamp)
            self.diag.keypoints_in(camera, stamp_ns)
            now_ns = self.get_clock().now().nanoseconds
            max_age_ns = int(self.params.max_stamp_age * NS_PER_S)
            age_ns = now_ns - stamp_ns
            if max_age_ns > 0 and age_ns > max_age_ns:
                self._problem(Problem.STALE_STAMP, f"cam{camera} keypoints are {age_ns / NS_PER_S:.3f} s old "
                                                   f"(max_stamp_age {self.params.max_stamp_age} s): skipped")
                return
            if self.sync.cameras > 2:  # three or more cameras: frames go on without a silent one
                live = self.diag.live_cameras(time.monotonic())
                required = live if len(live) >= 2 else set(range(self.sync.cameras))
                if required != self.sync.required:
                    self.sync.set_required(required)
            pair, events = self.sync.push(camera, stamp_ns, keypoints_from_msg(msg), now_ns)
            if self.sync.nearest_miss_ns is not None:
                self._camera_offset_ns = self.sync.nearest_miss_ns
            self._report_sync_events(camera, stamp_ns, now_ns, events)
            if pair is not None:
                self._process(pair)
        except Exception as exc:  # the node must survive anything a message can contain
            self._problem(Problem.PROCESSING_ERROR, f"unexpected error on cam{camera} keypoints: {exc!r}")

    def _report_sync_events(self, camera: int, stamp_ns: int, now_ns: int, events: list[SyncEvent]) -> None:
        """Warn (throttled) and count what the synchroniser did with a message, naming the message at fault."""
        if SyncEvent.FUTURE in events:
            hint = " (the node clock is at 0: with use_sim_time, is /clock published?)" if now_ns == 0 else ""
            self._problem(Problem.FUTURE_STAMP, f"cam{camera} keypoints stamped {stamp_ns / NS_PER_S:.6f} s are "
                                                f"{(stamp_ns - now_ns) / NS_PER_S:.3f} s ahead of the node clock "
                                                f"(max_stamp_future {self.params.max_stamp_future} s): skipped{hint}")
        if SyncEvent.OUT_OF_ORDER in events and self.sync.blocked_by is not None:
            what, blocker = self.sync.blocked_by
            self._problem(Problem.OUT_OF_ORDER, f"cam{camera} keypoints stamped {stamp_ns / NS_PER_S:.6f} s are not "
                                                f"newer than {what} ({blocker / NS_PER_S:.6f} s): skipped")
        drops = events.count(SyncEvent.DROPPED)
        if drops:
            slop_ms = self.params.sync_slop * 1e3
            offset = "not measured yet" if self._camera_offset_ns is None else \
                f"{self._camera_offset_ns / 1e6:.1f} ms apart"
            self._problem(Problem.SYNC_DROP, f"{drops} keypoint message(s) dropped without a partner: the two "
                                             f"cameras' nearest stamps are {offset} (sync_slop {slop_ms:.1f} ms); "
                                             "raise sync_slop (up to half the frame period) if the cameras are not "
                                             "hardware-synchronised", drops)

    def _on_time_jump(self, _info) -> None:
        """Replays restart: forget queued messages and tracks when time goes back (ids are still never reused)."""
        self.sync.reset()
        self.pipeline.reset()
        self.get_logger().info("time jumped backwards: synchroniser and person tracks reset")

    def _on_diagnostics_timer(self) -> None:
        self._camera_tf_check()
        self.pub_diagnostics.publish(self.diag.to_msg(self.get_clock().now().nanoseconds))

    # ------------------------------------------------------------------------------------------------ processing
    def _frame_ids(self, pair: SyncedPair) -> tuple[str | None, ...]:
        """Every camera's frame (parameter, else the message header, else cam<c>_optical_frame; None for a camera
        not in the frame); FrameError (invalid_frame_id) when one is not a usable TF frame name or two are the same."""
        ids = tuple(None if item is None else
                    self.params.frame_ids[c] or item.payload.frame_id.lstrip("/") or f"cam{c}_optical_frame"
                    for c, item in enumerate(pair.items))
        for c, frame_id in enumerate(ids):
            problem = None if frame_id is None else self.frame_rules.problem(frame_id)
            if problem is not None:
                raise FrameError(Problem.INVALID_FRAME_ID, f"cam{c} {problem}")
        present = [f for f in ids if f is not None]
        if len(set(present)) < len(present):
            if len(ids) == 2:
                raise FrameError(Problem.INVALID_FRAME_ID, f"both cameras are in frame {ids[0]!r}")
            twice = next(f for f in present if present.count(f) > 1)
            raise FrameError(Problem.INVALID_FRAME_ID, f"two cameras are in frame {twice!r}")
        return ids

    def _process(self, pair: SyncedPair) -> None:
        start = time.perf_counter()
        self.diag.pairs += 1
        try:
            frame_ids = self._frame_ids(pair)
            reference = self.params.reference_frame or frame_ids[0] or self._known_frames[0] or "cam0_optical_frame"
            try:
                if len(frame_ids) == 2:
                    cameras = self.calibration.setup(frame_ids, reference, pair.stamp_ns,
                                                     timeout_s=self.params.tf_timeout)
                else:
                    cameras, left_out = self.calibration.setup_rig(frame_ids, reference, pair.stamp_ns,
                                                                   timeout_s=self.params.tf_timeout)
                    for err in left_out:
                        self._problem(err.problem, f"frame {pair.stamp_ns / NS_PER_S:.6f}: left out {err}")
            except FrameError as err:
                calibrated = all(e is None for e in self.diag.camera_info_error)
                extrinsics = err.problem in (Problem.NO_TRANSFORM, Problem.INVALID_CALIBRATION)
                self.diag.extrinsics_error = str(err) if calibrated and extrinsics else None
                raise
            self.diag.extrinsics_error = None
            if len(frame_ids) == 2:
                result = self.pipeline.process(cameras, pair.cam0.payload, pair.cam1.payload)
            else:
                result = self.pipeline.process_views(cameras, [None if i is None else i.payload for i in pair.items])
        except FrameError as err:
            self._problem(err.problem, f"frame {pair.stamp_ns / NS_PER_S:.6f} skipped: {err}")
            return
        for problem, count in result.problems.items():
            hint = _HINTS.get(problem, "").format(p=self.params)
            self._problem(problem, f"frame {pair.stamp_ns / NS_PER_S:.6f}: {count} x {problem.value}{hint}", count)
        self._known_frames = [f if f is not None else k for f, k in zip(frame_ids, self._known_frames, strict=True)]
        if None not in self._known_frames and tuple(self._known_frames) != self._camera_frames:
            self._camera_frames = tuple(self._known_frames)
            self._camera_tf_check()
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

    def _camera_tf_check(self) -> None:
        """(Re)publish reference -> camera frames on /tf_static, leaving out any frame TF already has.

        Runs after CAMERA_TF_DELAY_S of listening (TF_STATIC is transient local, so a robot's static frames arrive
        within discovery), then on every new pair of camera frames and every diagnostics period: a conflicting
        frame that appears later is removed from the latched message and named in a warning. /tf_static is
        watched for the node's life, /tf (cameras on moving links) for the first CAMERA_TF_WATCH_S seconds.
        """
        if self.pub_tf_static is None or self._camera_frames is None or time.monotonic() < self._camera_tf_after:
            return
        if len(self._tf_watch) > 1 and time.monotonic() > self._camera_tf_after + CAMERA_TF_WATCH_S:
            self.destroy_subscription(self._tf_watch.pop())  # /tf is high-rate on a robot: stop deserialising it
        reference = self.params.reference_frame or self._camera_frames[0]
        cams, edges = [], []
        for frame_id, pose in zip(self._camera_frames, self.params.reference_from_cams, strict=True):
            if frame_id == reference:
                continue
            conflict = self.foreign_frames.conflict(reference, frame_id)
            if conflict is not None:
                if frame_id not in self._camera_tf_conflicts:
                    self._camera_tf_conflicts.add(frame_id)
                    self.get_logger().warning(
                        f"publish_camera_tf: not publishing {reference} -> {frame_id}: {conflict}; a frame is never "
                        "re-parented (set publish_camera_tf: false, or extrinsics_source: tf to use the robot's TF)")
                continue
            cams.append((frame_id, pose))
            edges.append((reference, frame_id))
        if tuple(edges) != self._camera_tf_sent:
            self.pub_tf_static.publish(static_camera_transforms(self.get_clock().now().nanoseconds, reference, cams))
            self._camera_tf_sent = tuple(edges)

    def _problem(self, problem: Problem, message: str, count: int = 1) -> None:
        """Count a problem in /diagnostics and warn, at most once per `warn_throttle` seconds per kind."""
        self.diag.report(problem, message, count)
        now = time.monotonic()
        if now - self._last_warning.get(problem, -1e18) >= self.params.warn_throttle:
            self._last_warning[problem] = now
            self.get_logger().warning(f"[{problem.value}] {message}")


class RefinerNode(RefinerCore, Node):
    """Subscribes <camera>/keypoints and <camera>/camera_info of each of `cameras` (cam0, cam1); publishes
    skeletons, markers, /tf, /diagnostics."""

    def __init__(self, node_name: str = "refiner_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._declare_parameters()
        self._configure()
        self._activate()


def main(args: list[str] | None = None) -> int:
    """Console entry point (`refiner_node`, `cvpose-refiner`); exit status 1 on an invalid configuration."""
    return run_node(RefinerNode, "refiner_node: cannot start: ", (ParameterError, StartupError), args)


if __name__ == "__main__":
    sys.exit(main())

"""detector_node: one camera's images in, 2D keypoints (cvpose_ros_msgs/Keypoints2D) out.

Subscribes `image` (sensor_msgs/Image) or, with use_compressed, `image/compressed` (sensor_msgs/CompressedImage)
with a best-effort (default) or reliable QoS, and the camera's `camera_info`; publishes `keypoints` (reliable)
stamped with the image's stamp and frame. Remap the topics or run one instance per camera namespace.
Images are received on the executor thread and detected on a worker thread that always takes the newest one, so
every delivered image is counted: /diagnostics reports the fraction of the camera's images that arrive (loss in
transport) apart from those dropped because the detector was busy. A frame that cannot be converted or detected
is skipped with a throttled warning and counted on /diagnostics; the node keeps running.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from cvpose_ros_msgs.msg import Keypoints2D, PersonKeypoints2D
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from cvpose_ros.detection import Detections, DetectorError, create_backend, finalize
from cvpose_ros.detection.config import PARAMETERS, DetectorConfig, config_from_values
from cvpose_ros.detection.image_conversion import ImageConversionError, ImageConverter
from cvpose_ros.detection.input_monitor import OK, WARN, InputMonitor
from cvpose_ros.detection.latest_slot import LatestSlot
from cvpose_ros.detection.reduced_decode import CompressedDecoder, DecodedImage, reduced_size, to_full_resolution
from cvpose_ros.detection.tracking import PersonTracker, first_id_for
from cvpose_ros.ros.dds_profile import PROFILE_ENV
from cvpose_ros.ros.entry import run_node
from cvpose_ros.ros.param_kit import LiveParameters

WARN_THROTTLE_S = 5.0
LOSS_WINDOW_S = 5.0  # sliding window of the received-fraction figures on /diagnostics
RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


@dataclass
class DetectorCounters:
    """Frame counters and processing times for /diagnostics (times of the current period only)."""

    received: int = 0
    published: int = 0
    conversion_errors: int = 0
    detector_errors: int = 0
    people_last: int = 0
    last_error: str = ""
    period_times_ms: list[float] = field(default_factory=list)
    period_failures: int = 0
    qos_problem: str = ""      # the last incompatible-QoS event, until an image arrives again
    qos_events: int = 0


class DetectorNode(Node):
    """Runs one detector backend on one camera's images (see module docstring)."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("detector", **node_kwargs)
        self.parameters = LiveParameters(self, PARAMETERS, config_from_values, self._on_parameters)
        self.config: DetectorConfig = self.parameters.settings
        self.backend = create_backend(self.config.backend, **self.config.backend_options())
        self.converter = ImageConverter(self.config.use_cv_bridge)
        self.decoder = CompressedDecoder(self.config.decode_scale, self.backend.max_input_reduction,
                                         self.converter.compressed_to_rgb)
        self.tracker = self._make_tracker()
        self.counters = DetectorCounters()
        self.monitor = InputMonitor(LOSS_WINDOW_S, self.config.expected_rate, self.config.min_received_fraction)
        self._lock = threading.Lock()  # counters and monitor: written by both threads
        self._slot: LatestSlot[tuple] = LatestSlot()
        self._warned: dict[str, float] = {}  # report kind -> when it was last logged
        self._logged_decode: tuple[int, int, int] | None = None  # (width, height, factor) last logged

        self.image_qos = QoSProfile(depth=self.config.queue_depth, history=HistoryPolicy.KEEP_LAST,
                                    reliability=RELIABILITY[self.config.image_reliability],
                                    durability=DurabilityPolicy.VOLATILE)
        self.publisher = self.create_publisher(Keypoints2D, "keypoints",
                                               QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        if self.config.use_compressed:
            self.subscription = self.create_subscription(CompressedImage, "image/compressed", self._on_compressed,
                                                         self.image_qos, event_callbacks=events)
        else:
            self.subscription = self.create_subscription(Image, "image", self._on_image, self.image_qos,
                                                         event_callbacks=events)
        # best effort, volatile: matches every camera_info publisher; small, so it arrives when images do not
        self.info_subscription = self.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info,
            QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE))
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="cvpose_detector", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"detector ready: backend {self.backend.name}, output {self.config.output_layout}, input "
            f"{self.subscription.topic_name} ({self.config.image_reliability}, depth {self.config.queue_depth}), "
            f"camera_info {self.info_subscription.topic_name}, cv_bridge "
            f"{'on' if self.converter.uses_cv_bridge else 'off'}, {PROFILE_ENV}="
            f"{os.environ.get(PROFILE_ENV, '(unset: Fast DDS defaults)')}")

    def _make_tracker(self) -> PersonTracker | None:
        """The per-camera tracker (None when `track` is off); ids start in a block of this camera's own."""
        if not self.config.track:
            return None
        first = self.config.track_id_start
        self._first_track_id = first if first >= 0 else first_id_for(self.get_namespace())
        return PersonTracker(**self.config.tracker_options(), first_id=self._first_track_id)

    # -- parameters ------------------------------------------------------------------------------------------------
    def _on_parameters(self, _old: DetectorConfig, new: DetectorConfig) -> None:
        """A live change accepted by the kit (min_confidence, max_people, frame_id; the rest are read-only)."""
        self.config = new

    # -- frames: received on the executor thread, detected on the worker --------------------------------------
    def _on_image(self, msg: Image) -> None:
        self._arrived(msg, self._raw_to_rgb)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._arrived(msg, self.decoder.decode)

    def _raw_to_rgb(self, msg: Image) -> DecodedImage:
        return DecodedImage.full(self.converter.image_to_rgb(msg))

    def _arrived(self, msg, convert) -> None:
        now = time.monotonic()
        with self._lock:
            self.counters.received += 1
            self.counters.qos_problem = ""
            self.monitor.image_arrived(_stamp_ns(msg), now)
            if self._slot.put((msg, convert)):
                self.monitor.dropped_busy(now)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self.monitor.info_arrived(_stamp_ns(msg), time.monotonic())

    def _on_incompatible_qos(self, event: QoSRequestedIncompatibleQoSInfo) -> None:
        """Name both sides: this subscription's QoS and every publisher's on the topic."""
        topic = self.subscription.topic_name
        try:
            policy = QoSPolicyKind(event.last_policy_kind).name
        except ValueError:
            policy = str(event.last_policy_kind)
        publishers = ", ".join(
            f"{info.node_namespace.rstrip('/')}/{info.node_name} ({_qos_text(info.qos_profile)})"
            for info in self.get_publishers_info_by_topic(topic)) or "unknown"
        message = (f"image QoS incompatible ({policy}) on {topic}: this node subscribes {_qos_text(self.image_qos)}; "
                   f"publishers: {publishers}; set image_reliability to match (best_effort connects to both)")
        self.get_logger().warning(message, throttle_duration_sec=WARN_THROTTLE_S)
        with self._lock:
            self.counters.qos_problem = message
            self.counters.qos_events += 1

    def _work(self) -> None:
        """Worker thread: detect the newest image until the node is destroyed."""
        while True:
            item = self._slot.take()
            if item is None:
                return
            self._process(*item)

    def _process(self, msg, convert) -> None:
        start = time.perf_counter()
        try:
            image = convert(msg)
        except ImageConversionError as exc:
            self._fail("conversion_errors", f"image skipped: {exc}")
            return
        except Exception as exc:  # e.g. cv2.error on odd sizes: skip the frame, never stop the node
            self._fail("conversion_errors", f"image skipped: {type(exc).__name__}: {exc}")
            return
        self._log_decode(image)
        config = self.config
        try:
            found = self.backend.detect(image.rgb)
            if image.factor > 1:  # decoded reduced: keypoints back to pixels of the original image
                found = Detections(to_full_resolution(found.keypoints, image.factor), found.confidence, found.scores,
                                   found.layout)
            detections = finalize(found, image.width, image.height, config.output_layout, config.min_confidence,
                                  config.max_people)
        except (DetectorError, ValueError) as exc:
            self._fail("detector_errors", f"detection failed: {exc}")
            return
        except Exception as exc:  # a native backend failure must not take the node down either
            self._fail("detector_errors", f"detection failed: {type(exc).__name__}: {exc}")
            return
        if self.tracker is not None:
            ids = self.tracker.update(detections.keypoints, detections.confidence)
        else:
            ids = np.full(detections.num_people, -1, dtype=np.int64)
        out = Keypoints2D()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = config.frame_id or msg.header.frame_id.lstrip("/")
        out.layout = detections.layout
        out.people = [_person_msg(kp, conf, int(tid)) for kp, conf, tid in
                      zip(detections.keypoints, detections.confidence, ids, strict=True)]
        if self._slot.closed:
            return
        self.publisher.publish(out)
        with self._lock:
            self.counters.published += 1
            self.counters.people_last = detections.num_people
            self.counters.period_times_ms.append((time.perf_counter() - start) * 1e3)

    def _log_decode(self, image: DecodedImage) -> None:
        """Say once per image size at which resolution JPEGs are decoded (the first image is always full)."""
        if not self.config.use_compressed:
            return
        key = (image.width, image.height, self.decoder.factor)
        if key != self._logged_decode:
            self._logged_decode = key
            reduced = reduced_size(image.width, image.height, key[2])
            self.get_logger().info(
                f"{image.width}x{image.height} JPEG images decoded at 1/{key[2]} ({reduced[0]}x{reduced[1]}; "
                f"decode_scale {self.config.decode_scale or 'auto'}); keypoints in {image.width}x{image.height} "
                "pixels")

    def _fail(self, counter: str, message: str) -> None:
        with self._lock:
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)
            self.counters.period_failures += 1
            self.counters.last_error = message
        self.get_logger().warning(message, throttle_duration_sec=WARN_THROTTLE_S)

    # -- diagnostics -----------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        with self._lock:
            c = self.counters
            report = self.monitor.report(time.monotonic())
            times = np.asarray(c.period_times_ms) if c.period_times_ms else np.full(1, math.nan)
            problems = []  # (level, message), most severe first below
            if c.qos_problem:
                problems.append((WARN, c.qos_problem))
            if report.level != OK:
                problems.append((report.level, report.message))
            if c.period_failures:
                problems.append((WARN, f"{c.period_failures} frames skipped: {c.last_error}"))
            values = {"backend": self.backend.name, "output_layout": self.config.output_layout,
                      "decode_factor": self.decoder.factor if self.config.use_compressed else 1,
                      "images_decoded_reduced": self.decoder.reduced_count,
                      "frames_received": c.received, "frames_published": c.published,
                      "conversion_errors": c.conversion_errors, "detector_errors": c.detector_errors,
                      "people_last_frame": c.people_last, "frames_this_period": len(c.period_times_ms),
                      "tracks_alive": "off" if self.tracker is None else self.tracker.num_tracks,
                      "track_ids_issued": "off" if self.tracker is None else
                      self.tracker.next_id - self._first_track_id,
                      "processing_ms_mean": f"{np.mean(times):.2f}", "processing_ms_max": f"{np.max(times):.2f}",
                      "last_error": c.last_error, **report.values,
                      "image_qos": f"{self.config.image_reliability}, depth {self.config.queue_depth}",
                      "incompatible_qos_events": c.qos_events, "dds_profile": os.environ.get(PROFILE_ENV, "")}
            c.period_times_ms, c.period_failures = [], 0
        problems.sort(key=lambda p: -p[0])
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: 2D detector",
                                  hardware_id=self.config.frame_id or self.subscription.topic_name)
        status.level = bytes([max([OK] + [p[0] for p in problems])])
        status.message = "; ".join(p[1] for p in problems) or "ok"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(array)
        now = time.monotonic()
        if report.kind in ("transport", "busy") and now - self._warned.get(report.kind, -math.inf) >= WARN_THROTTLE_S:
            self._warned[report.kind] = now  # throttled per kind, so a busy warning never hides a transport one
            self.get_logger().warning(report.message)

    def destroy_node(self) -> None:
        slot, worker = getattr(self, "_slot", None), getattr(self, "_worker", None)
        if slot is not None:
            slot.close()
        if worker is not None and worker.is_alive():
            worker.join(timeout=10.0)  # the image in progress finishes before the backend closes
        backend = getattr(self, "backend", None)  # absent when the constructor failed
        if backend is not None:
            backend.close()
        super().destroy_node()


def _person_msg(keypoints: np.ndarray, confidence: np.ndarray, track_id: int) -> PersonKeypoints2D:
    """One person's (J, 2) pixels, (J,) confidence and track id (-1 = untracked) as a message."""
    return PersonKeypoints2D(track_id=track_id, x=keypoints[:, 0].tolist(), y=keypoints[:, 1].tolist(),
                             confidence=confidence.tolist())


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _qos_text(qos) -> str:
    """'best_effort/volatile' for a QoS profile."""
    return f"{qos.reliability.name.lower()}/{qos.durability.name.lower()}"


def main(args: list[str] | None = None) -> int:
    """Console script `detector_node` / `cvpose-detector`; exit status 1 on bad parameters or backend."""
    return run_node(DetectorNode, "detector_node: ", (DetectorError, ValueError, ParameterException), args)


if __name__ == "__main__":
    sys.exit(main())

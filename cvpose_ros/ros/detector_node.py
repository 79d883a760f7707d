"""detector_node: one camera's images in, 2D keypoints (cvpose_ros_msgs/Keypoints2D) out.

Subscribes `image` (sensor_msgs/Image) or, with use_compressed, `image/compressed` (sensor_msgs/CompressedImage)
with a sensor-data QoS; publishes `keypoints` (reliable) stamped with the image's stamp and frame. Remap the topics
or run one instance per camera namespace. A frame that cannot be converted or detected is skipped with a throttled
warning and counted on /diagnostics; the node keeps running.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from cvpose_ros_msgs.msg import Keypoints2D, PersonKeypoints2D
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from cvpose_ros.detection import DetectorError, create_backend, finalize
from cvpose_ros.detection.config import PARAMETER_DOCS, RUNTIME_PARAMETERS, DetectorConfig, defaults
from cvpose_ros.detection.image_conversion import ImageConversionError, ImageConverter
from cvpose_ros.detection.tracking import PersonTracker, first_id_for
from cvpose_ros.ros.entry import run_node

WARN_THROTTLE_S = 5.0


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


class DetectorNode(Node):
    """Runs one detector backend on one camera's images (see module docstring)."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("detector", **node_kwargs)
        for name, default in defaults().items():
            self.declare_parameter(name, default, ParameterDescriptor(
                description=PARAMETER_DOCS[name], read_only=name not in RUNTIME_PARAMETERS))
        self.config = DetectorConfig(**{name: self.get_parameter(name).value for name in defaults()})
        self.backend = create_backend(self.config.backend, **self.config.backend_options())
        self.converter = ImageConverter(self.config.use_cv_bridge)
        self.tracker = self._make_tracker()
        self.counters = DetectorCounters()
        self.add_on_set_parameters_callback(self._on_set_parameters)

        sensor_qos = QoSProfile(depth=self.config.queue_depth, reliability=qos_profile_sensor_data.reliability,
                                durability=qos_profile_sensor_data.durability,
                                history=qos_profile_sensor_data.history)
        self.publisher = self.create_publisher(Keypoints2D, "keypoints",
                                               QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if self.config.use_compressed:
            self.subscription = self.create_subscription(CompressedImage, "image/compressed",
                                                         self._on_compressed, sensor_qos)
        else:
            self.subscription = self.create_subscription(Image, "image", self._on_image, sensor_qos)
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(
            f"detector ready: backend {self.backend.name}, output {self.config.output_layout}, input "
            f"{self.subscription.topic_name}, cv_bridge {'on' if self.converter.uses_cv_bridge else 'off'}")

    def _make_tracker(self) -> PersonTracker | None:
        """The per-camera tracker (None when `track` is off); ids start in a block of this camera's own."""
        if not self.config.track:
            return None
        first = self.config.track_id_start
        return PersonTracker(**self.config.tracker_options(),
                             first_id=first if first >= 0 else first_id_for(self.get_namespace()))

    # -- parameters ------------------------------------------------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        updates = {p.name: p.value for p in params if p.name in self.config.__dict__}  # others: rclpy's own
        read_only = sorted(set(updates) - set(RUNTIME_PARAMETERS))
        if read_only:
            return SetParametersResult(successful=False, reason=f"{read_only} are read-only; restart the node")
        try:
            merged = DetectorConfig(**{**self.config.__dict__, **updates})
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.config = merged
        return SetParametersResult(successful=True)

    # -- frames ----------------------------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        self._process(msg, self.converter.image_to_rgb)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._process(msg, self.converter.compressed_to_rgb)

    def _process(self, msg, convert) -> None:
        start = time.perf_counter()
        self.counters.received += 1
        try:
            rgb = convert(msg)
        except ImageConversionError as exc:
            self._fail("conversion_errors", f"image skipped: {exc}")
            return
        except Exception as exc:  # e.g. cv2.error on odd sizes: skip the frame, never stop the node
            self._fail("conversion_errors", f"image skipped: {type(exc).__name__}: {exc}")
            return
        try:
            detections = finalize(self.backend.detect(rgb), rgb.shape[1], rgb.shape[0], self.config.output_layout,
                                  self.config.min_confidence, self.config.max_people)
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
        out.header.frame_id = self.config.frame_id or msg.header.frame_id.lstrip("/")
        out.layout = detections.layout
        out.people = [_person_msg(kp, conf, int(tid)) for kp, conf, tid in
                      zip(detections.keypoints, detections.confidence, ids, strict=True)]
        self.publisher.publish(out)
        self.counters.published += 1
        self.counters.people_last = detections.num_people
        self.counters.period_times_ms.append((time.perf_counter() - start) * 1e3)

    def _fail(self, counter: str, message: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.period_failures += 1
        self.counters.last_error = message
        self.get_logger().warning(message, throttle_duration_sec=WARN_THROTTLE_S)

    # -- diagnostics -----------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        c = self.counters
        times = np.asarray(c.period_times_ms) if c.period_times_ms else np.full(1, math.nan)
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: 2D detector",
                                  hardware_id=self.config.frame_id or self.subscription.topic_name)
        if c.period_failures:
            status.level, status.message = DiagnosticStatus.WARN, f"{c.period_failures} frames skipped: {c.last_error}"
        elif c.received == 0:
            status.level, status.message = DiagnosticStatus.WARN, "no images received yet"
        else:
            status.level, status.message = DiagnosticStatus.OK, "ok"
        values = {"backend": self.backend.name, "output_layout": self.config.output_layout,
                  "frames_received": c.received, "frames_published": c.published,
                  "conversion_errors": c.conversion_errors, "detector_errors": c.detector_errors,
                  "people_last_frame": c.people_last, "frames_this_period": len(c.period_times_ms),
                  "processing_ms_mean": f"{np.mean(times):.2f}", "processing_ms_max": f"{np.max(times):.2f}",
                  "last_error": c.last_error}
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(array)
        c.period_times_ms, c.period_failures = [], 0

    def destroy_node(self) -> None:
        backend = getattr(self, "backend", None)  # absent when the constructor failed
        if backend is not None:
            backend.close()
        super().destroy_node()


def _person_msg(keypoints: np.ndarray, confidence: np.ndarray, track_id: int) -> PersonKeypoints2D:
    """One person's (J, 2) pixels, (J,) confidence and track id (-1 = untracked) as a message."""
    return PersonKeypoints2D(track_id=track_id, x=keypoints[:, 0].tolist(), y=keypoints[:, 1].tolist(),
                             confidence=confidence.tolist())


def main(args: list[str] | None = None) -> int:
    """Console script `detector_node` / `cvpose-detector`; exit status 1 on bad parameters or backend."""
    return run_node(DetectorNode, "detector_node: ", (DetectorError, ValueError, ParameterException), args)


if __name__ == "__main__":
    sys.exit(main())

"""A camera_info publisher for cameras whose driver publishes no calibration (console script `cvpose-camera-info`).

Reads one camera_info YAML (as `cvpose-calib --out` or ROS `camera_calibration` write it) and publishes it on
`camera_info` (remap as needed, e.g. `-r __ns:=/cam0`) at `rate` Hz, stamped with the node clock, reliable with
transient-local durability so that late subscribers that ask for it get the last message at once.
"""

from __future__ import annotations

import sys

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo

from cvpose_ros.calibration import CalibrationError, read_camera_info_yaml
from cvpose_ros.calibration.types import CalibratedCamera
from cvpose_ros.param_spec import ParameterError, ParamSpec
from cvpose_ros.ros.entry import run_node
from cvpose_ros.ros.param_kit import LiveParameters

RATE_RANGE = (0.1, 1000.0)
# All read-only: the file is read once at start-up.
PARAMETERS: dict[str, ParamSpec] = {
    "camera_info_file": ParamSpec("", "camera_info YAML to publish (required)", restart=True),
    "frame_id": ParamSpec("", "header.frame_id; '' = '<camera_name>_optical_frame' from the file", restart=True),
    "rate": ParamSpec(5.0, "messages per second", RATE_RANGE, restart=True),
}
CAMERA_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)


def camera_info_msg(camera: CalibratedCamera, frame_id: str) -> CameraInfo:
    """The CameraInfo of an unrectified camera (R = I, P = [K | 0]) in optical frame `frame_id`."""
    model = camera.model
    distortion_model = model.distortion_model if model.distortion_model != "none" else "plumb_bob"
    d = model.dist.tolist() if model.distortion_model != "none" else [0.0] * 5
    msg = CameraInfo(width=model.width, height=model.height, distortion_model=distortion_model, d=d,
                     k=model.K.ravel().tolist(), r=np.eye(3).ravel().tolist(),
                     p=np.concatenate([model.K, np.zeros((3, 1))], axis=1).ravel().tolist())
    msg.header.frame_id = frame_id
    return msg


def _checked(values: dict) -> dict:
    if not values["camera_info_file"]:
        raise ParameterError("parameter camera_info_file is required (a camera_info YAML, e.g. from cvpose-calib)")
    return values


class CameraInfoNode(Node):
    """Publishes one camera's calibration from a file at a fixed rate."""

    def __init__(self, name: str = "camera_info_publisher", **kwargs) -> None:
        super().__init__(name, **kwargs)
        values = LiveParameters(self, PARAMETERS, _checked).settings
        path, rate = values["camera_info_file"], values["rate"]
        camera = read_camera_info_yaml([path])[0]
        frame_id = values["frame_id"] or f"{camera.name}_optical_frame"
        self.msg = camera_info_msg(camera, frame_id)
        self.publisher = self.create_publisher(CameraInfo, "camera_info", CAMERA_INFO_QOS)
        self.create_timer(1.0 / rate, self._publish)
        self._publish()
        self.get_logger().info(f"publishing {path} ({camera.model.width}x{camera.model.height}, frame {frame_id}) "
                               f"on {self.publisher.topic_name} at {rate:g} Hz")

    def _publish(self) -> None:
        self.msg.header.stamp = self.get_clock().now().to_msg()
        self.publisher.publish(self.msg)


def main(args: list[str] | None = None) -> int:
    return run_node(CameraInfoNode, "cvpose-camera-info: error: ",
                    (ValueError, CalibrationError), args)  # ParameterError is a ValueError


if __name__ == "__main__":
    sys.exit(main())

"""Multi-camera calibrations: readers of the common formats (all return `CalibratedCamera`s in one world frame),
rig checks and the files the node needs (`cvpose-calib`)."""

from cvpose_ros.calibration.checks import check_rig
from cvpose_ros.calibration.export import refiner_parameters_yaml
from cvpose_ros.calibration.kalibr import read_kalibr
from cvpose_ros.calibration.opencv_storage import read_opencv
from cvpose_ros.calibration.panoptic import read_panoptic
from cvpose_ros.calibration.qualisys import read_qualisys
from cvpose_ros.calibration.read import FORMATS, detect_format, read_calibration
from cvpose_ros.calibration.rig_yaml import read_rig_yaml, rig_yaml
from cvpose_ros.calibration.ros_yaml import camera_info_yaml, read_camera_info_yaml
from cvpose_ros.calibration.rotation import proper_rotation
from cvpose_ros.calibration.toml_rig import read_toml_rig
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera

__all__ = ["FORMATS", "CalibratedCamera", "CalibrationError", "build_camera", "camera_info_yaml", "check_rig",
           "detect_format", "proper_rotation", "read_calibration", "read_camera_info_yaml", "read_kalibr",
           "read_opencv", "read_panoptic", "read_qualisys", "read_rig_yaml", "read_toml_rig", "refiner_parameters_yaml",
           "rig_yaml"]

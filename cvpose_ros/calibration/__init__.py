"""Readers of multi-camera calibration files; every reader returns a list of `CalibratedCamera`."""

from cvpose_ros.calibration.qualisys import read_qualisys
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError

__all__ = ["CalibratedCamera", "CalibrationError", "read_qualisys"]

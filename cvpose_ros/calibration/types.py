"""Types shared by the calibration readers: one calibrated camera and the error every reader raises."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cvpose_ros.camera import CameraModel, RigidTransform


class CalibrationError(ValueError):
    """A calibration file that cannot be used; str() is one line naming the file and what is wrong."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"calibration {self.path}: {reason}")


@dataclass(eq=False)
class CalibratedCamera:
    """One camera of a multi-camera calibration: its lens model and pose (x_cam = R @ x_world + t, metres)."""

    name: str
    model: CameraModel
    cam_from_world: RigidTransform

    def project(self, points_world: ArrayLike) -> np.ndarray:
        """World points (..., 3) -> raw (distorted) pixels (..., 2); NaN behind the camera."""
        return self.model.project(self.cam_from_world.apply(points_world))

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates (metres)."""
        return -self.cam_from_world.R.T @ self.cam_from_world.t

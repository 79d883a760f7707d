"""Types shared by the calibration readers: one calibrated camera, the error every reader raises, and the one
place where a reader's numbers become a checked `CameraModel` and pose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cvpose_ros.calibration.rotation import WARN_DEVIATION, proper_rotation
from cvpose_ros.geometry.camera import CameraError, CameraModel, RigidTransform


class CalibrationError(ValueError):
    """A calibration file that cannot be used; str() is one line naming the file and what is wrong."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"calibration {self.path}: {reason}")


def parse_document(path: Path, parse: Callable[[str], Any], kind: str,
                   errors: tuple[type[Exception], ...]) -> Any:
    """`parse` of the text of the file at `path`, or CalibrationError naming the file: missing, unreadable, or
    malformed `kind` (the parser's first message line)."""
    if not path.is_file():
        raise CalibrationError(path, "no such file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(path, f"cannot read: {exc}") from None
    try:
        return parse(text)
    except errors as exc:
        raise CalibrationError(path, f"malformed {kind}: {str(exc).splitlines()[0]}") from None


@dataclass(eq=False)
class CalibratedCamera:
    """One camera of a multi-camera calibration: its lens model and pose (x_cam = R @ x_world + t, metres).

    `warnings` lists what the reader repaired or could not know (e.g. an orthonormalised rotation, no extrinsics).
    """

    name: str
    model: CameraModel
    cam_from_world: RigidTransform
    warnings: tuple[str, ...] = field(default=())

    def project(self, points_world: ArrayLike) -> np.ndarray:
        """World points (..., 3) -> raw (distorted) pixels (..., 2); NaN behind the camera."""
        return self.model.project(self.cam_from_world.apply(points_world))

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates (metres)."""
        return -self.cam_from_world.R.T @ self.cam_from_world.t


def build_camera(path: object, name: str, K: ArrayLike, dist: ArrayLike, distortion_model: str, width: int,
                 height: int, rotation: ArrayLike | None = None, translation: ArrayLike | None = None,
                 warnings: tuple[str, ...] = ()) -> CalibratedCamera:
    """A `CalibratedCamera` from a reader's raw numbers (rotation: cam_from_world 3x3; translation in metres).

    Near-rotations are orthonormalised with a warning stating the deviation; everything else that is wrong raises
    CalibrationError naming the file, the camera and the field.
    """
    notes = list(warnings)
    try:
        model = CameraModel(K=np.asarray(K, dtype=np.float64), dist=np.asarray(dist, dtype=np.float64),
                            distortion_model=distortion_model, width=int(width), height=int(height))
    except (CameraError, ValueError, TypeError) as exc:
        raise CalibrationError(path, f"camera {name}: {exc}") from None
    try:
        R, deviation = proper_rotation(np.eye(3) if rotation is None else rotation)
    except ValueError as exc:
        raise CalibrationError(path, f"camera {name}: rotation: {exc}") from None
    if deviation > WARN_DEVIATION:
        notes.append(f"rotation orthonormalised (|R R^T - I| was {deviation:.2g}, rounding in the file)")
    t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64).ravel()
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise CalibrationError(path, f"camera {name}: translation must be 3 finite numbers, got {t.tolist()}")
    return CalibratedCamera(name, model, RigidTransform(R, t), tuple(notes))

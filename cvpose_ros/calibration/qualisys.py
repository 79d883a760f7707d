"""Qualisys Track Manager calibration files (`.qca.txt`, XML), as Pose2Sim ships them.

Per camera: `transform` holds a row-major matrix M (r11..r33) and the camera centre C (x, y, z) in millimetres;
Qualisys camera axes are turned by pi about x against OpenCV's optical frame, so the world-to-camera rotation is
R = diag(1, -1, -1) @ M and t = -R @ C / 1000 (metres). `intrinsic` gives focal lengths, principal point and skew
in sensor units of 1/64 pixel and OpenCV plumb_bob distortion (k1, k2, p1, p2, k3 = radialDistortion1,
radialDistortion2, tangentalDistortion1, tangentalDistortion2, radialDistortion3). The image size is the
`fov_video` rectangle (inclusive pixel bounds).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from cvpose_ros.calibration.rotation import proper_rotation
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera

SENSOR_UNITS_PER_PIXEL = 64.0
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
_ROTATION_KEYS = tuple(f"r{i}{j}" for i in range(1, 4) for j in range(1, 4))


def _number(path: Path, camera: str, element: ET.Element | None, tag: str, key: str,
            default: float | None = None) -> float:
    """Attribute `key` of `element` as a finite float, or CalibrationError naming camera, element and key."""
    raw = None if element is None else element.get(key)
    if raw is None:
        if default is not None:
            return default
        where = f"<{tag}>" if element is not None else f"<{tag}> element"
        raise CalibrationError(path, f"camera {camera}: missing {key!r} in {where}")
    try:
        value = float(raw)
    except ValueError:
        raise CalibrationError(path, f"camera {camera}: {tag}.{key} = {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise CalibrationError(path, f"camera {camera}: {tag}.{key} = {raw!r} is not finite")
    return value


def _image_size(path: Path, camera: str, element: ET.Element) -> tuple[int, int]:
    """(width, height) from `fov_video` (inclusive bounds), else 0 x 0 (unknown)."""
    fov = element.find("fov_video")
    if fov is None:
        return 0, 0
    left, right, top, bottom = (_number(path, camera, fov, "fov_video", k) for k in ("left", "right", "top", "bottom"))
    if right < left or bottom < top:
        raise CalibrationError(path, f"camera {camera}: empty fov_video rectangle")
    return int(right - left) + 1, int(bottom - top) + 1


def _camera(path: Path, index: int, element: ET.Element) -> CalibratedCamera:
    name = element.get("serial") or f"camera{index + 1}"
    transform, intrinsic = element.find("transform"), element.find("intrinsic")
    m = np.array([_number(path, name, transform, "transform", k) for k in _ROTATION_KEYS]).reshape(3, 3)
    centre_mm = np.array([_number(path, name, transform, "transform", k) for k in ("x", "y", "z")])
    try:
        m, _ = proper_rotation(m)  # checked here: the file's matrix, before the axis flip
    except ValueError as exc:
        raise CalibrationError(path, f"camera {name}: transform r11..r33: {exc}") from None
    rotation = QUALISYS_TO_OPENCV @ m
    number = {k: _number(path, name, intrinsic, "intrinsic", k) for k in
              ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "radialDistortion1",
               "radialDistortion2", "tangentalDistortion1", "tangentalDistortion2")}
    k3 = _number(path, name, intrinsic, "intrinsic", "radialDistortion3", default=0.0)
    skew = _number(path, name, intrinsic, "intrinsic", "skew", default=0.0)
    fx, fy = number["focalLengthU"] / SENSOR_UNITS_PER_PIXEL, number["focalLengthV"] / SENSOR_UNITS_PER_PIXEL
    if fx <= 0 or fy <= 0:
        raise CalibrationError(path, f"camera {name}: focal length must be positive, got focalLengthU = "
                                     f"{number['focalLengthU']}, focalLengthV = {number['focalLengthV']}")
    K = np.array([[fx, skew / SENSOR_UNITS_PER_PIXEL, number["centerPointU"] / SENSOR_UNITS_PER_PIXEL],
                  [0.0, fy, number["centerPointV"] / SENSOR_UNITS_PER_PIXEL], [0.0, 0.0, 1.0]])
    dist = [number["radialDistortion1"], number["radialDistortion2"], number["tangentalDistortion1"],
            number["tangentalDistortion2"], k3]
    width, height = _image_size(path, name, element)
    return build_camera(path, name, K, dist, "plumb_bob", width, height, rotation, -rotation @ (centre_mm / 1000.0))


def read_qualisys(path: str | Path) -> list[CalibratedCamera]:
    """Every camera of a Qualisys `.qca.txt` calibration, in file order (world frame of the file, metres).

    Raises CalibrationError (one line naming the file) for a missing or unreadable file, malformed XML, a missing
    or non-numeric field, a non-positive focal length or a matrix that is not a rotation.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(path, "no such file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CalibrationError(path, f"malformed XML: {exc}") from None
    except OSError as exc:
        raise CalibrationError(path, f"cannot read: {exc.strerror or exc}") from None
    if root.tag != "calibration":
        raise CalibrationError(path, f"root element is <{root.tag}>, expected <calibration> (Qualisys .qca.txt)")
    elements = root.findall("./cameras/camera")
    if not elements:
        raise CalibrationError(path, "no <cameras>/<camera> elements")
    cameras = [_camera(path, i, e) for i, e in enumerate(elements)]
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise CalibrationError(path, f"duplicate camera serials {names}")
    return cameras

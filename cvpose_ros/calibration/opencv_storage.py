"""OpenCV FileStorage calibrations (YAML or XML) as `calibrateCamera` / `stereoCalibrate` users save them.

Keys are those of OpenCV's samples and common scripts; several files (e.g. intrinsics.yml + extrinsics.yml) are
merged. One camera: camera_matrix | cameraMatrix | K | M, distortion_coefficients | dist_coeffs | distCoeffs | D,
image_width + image_height or image_size, optional pose rvec/tvec or R/T (camera-from-world). A stereo pair:
K1/M1, D1, K2/M2, D2 and R, T (camera 2 from camera 1; world = camera 1). Translations are in the calibration
board's units: `units_per_metre` converts them (1000 for millimetres).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cvpose_ros.calibration.rotation import rotation_from_rvec
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera

_SINGLE_K = ("camera_matrix", "cameraMatrix", "K", "M")
_SINGLE_D = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D", "dist")
_MODEL_BY_COUNT = {0: "none", 4: "plumb_bob", 5: "plumb_bob", 8: "rational_polynomial"}


def _read_nodes(paths: list[Path]) -> tuple[dict[str, np.ndarray | float | str], Path]:
    """Every top-level key of the files (later files win) as arrays, numbers or strings."""
    values: dict[str, np.ndarray | float | str] = {}
    for path in paths:
        if not path.is_file():
            raise CalibrationError(path, "no such file")
        try:
            storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        except cv2.error as exc:
            raise CalibrationError(path, f"not an OpenCV FileStorage file: {str(exc).strip().splitlines()[-1]}") \
                from None
        if not storage.isOpened():
            raise CalibrationError(path, "not an OpenCV FileStorage file (cannot open)")
        root = storage.root()
        for key in root.keys():
            node = storage.getNode(key)
            if node.isMap() and node.mat() is not None:
                values[key] = np.asarray(node.mat(), dtype=np.float64)
            elif node.isSeq():
                values[key] = np.asarray([node.at(i).real() for i in range(node.size())], dtype=np.float64)
            elif node.isReal() or node.isInt():
                values[key] = float(node.real())
            elif node.isString():
                values[key] = node.string()
            elif node.mat() is not None:
                values[key] = np.asarray(node.mat(), dtype=np.float64)
        storage.release()
    return values, paths[0]


def _first(values: dict, keys: tuple[str, ...]) -> np.ndarray | None:
    for key in keys:
        if key in values and isinstance(values[key], np.ndarray):
            return values[key]
    return None


def _size(values: dict, path: Path) -> tuple[int, int]:
    if "image_width" in values and "image_height" in values:
        return int(values["image_width"]), int(values["image_height"])
    for key in ("image_size", "imageSize", "size"):
        if key in values:
            size = np.asarray(values[key]).ravel()
            if size.size != 2:
                raise CalibrationError(path, f"{key} needs 2 numbers (width, height), got {size.tolist()}")
            return int(size[0]), int(size[1])
    raise CalibrationError(path, "missing image size (image_width/image_height or image_size)")


def _model(values: dict, dist: np.ndarray) -> str:
    if isinstance(values.get("distortion_model"), str):
        return str(values["distortion_model"])
    if dist.size not in _MODEL_BY_COUNT:
        return "unknown"
    return _MODEL_BY_COUNT[dist.size]


def read_opencv(paths: list[str | Path], units_per_metre: float = 1.0) -> list[CalibratedCamera]:
    """Cameras of OpenCV FileStorage files: one camera, or a stereo pair (K1, D1, K2, D2, R, T)."""
    files = [Path(p) for p in paths]
    values, path = _read_nodes(files)
    width, height = _size(values, path)
    if _first(values, ("K1", "M1")) is not None:
        cams = []
        for i in (1, 2):
            K = _first(values, (f"K{i}", f"M{i}"))
            dist = _first(values, (f"D{i}",))
            if K is None or dist is None:
                raise CalibrationError(path, f"stereo calibration needs K{i} (or M{i}) and D{i}")
            cams.append((f"camera{i}", K, dist.ravel()))
        if "R" not in values or "T" not in values:
            raise CalibrationError(path, "stereo calibration needs R and T (camera 2 from camera 1)")
        R, T = np.asarray(values["R"]), np.asarray(values["T"]).ravel()
        if R.size == 3:
            R = rotation_from_rvec(R)
        poses = [(None, None), (R, T / units_per_metre)]
        return [build_camera(path, name, K, dist, _model(values, dist), width, height, rot, tr)
                for (name, K, dist), (rot, tr) in zip(cams, poses, strict=True)]
    K, dist = _first(values, _SINGLE_K), _first(values, _SINGLE_D)
    if K is None:
        raise CalibrationError(path, f"no camera matrix (looked for {', '.join(_SINGLE_K + ('K1', 'M1'))})")
    dist = np.zeros(0) if dist is None else dist.ravel()
    rotation, translation, notes = None, None, ()
    if "rvec" in values and "tvec" in values:
        rotation, translation = rotation_from_rvec(values["rvec"]), np.asarray(values["tvec"]).ravel()
    elif "R" in values and "T" in values:
        rotation, translation = np.asarray(values["R"]), np.asarray(values["T"]).ravel()
    else:
        notes = ("no extrinsics in the file: pose set to identity",)
    if translation is not None:
        translation = translation / units_per_metre
    name = str(values.get("camera_name") or files[0].stem)
    return [build_camera(path, name, K, dist, _model(values, dist), width, height, rotation, translation, notes)]

"""Kalibr camchain YAML (`camchain.yaml` / `camchain-imucam.yaml`): cam0, cam1, ... with pinhole intrinsics
[fu, fv, pu, pv], `radtan` (plumb_bob) or `equidistant` distortion, `resolution` [w, h] and `T_cn_cnm1`, the pose
of camera n from camera n-1 (4x4, metres). The world frame is cam0's optical frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvpose_ros.calibration.ros_yaml import load_yaml, numbers
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera

_DISTORTION = {"radtan": "plumb_bob", "equidistant": "equidistant", "none": "none"}


def read_kalibr(path: str | Path) -> list[CalibratedCamera]:
    """Every camera of a Kalibr camchain, chained from cam0."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc, dict) or "cam0" not in doc:
        raise CalibrationError(path, "not a Kalibr camchain (no cam0)")
    cameras: list[CalibratedCamera] = []
    cam_from_cam0 = np.eye(4)
    index = 0
    while f"cam{index}" in doc:
        key = f"cam{index}"
        cam = doc[key]
        if not isinstance(cam, dict):
            raise CalibrationError(path, f"{key} must be a mapping")
        if str(cam.get("camera_model", "pinhole")) != "pinhole":
            raise CalibrationError(path, f"{key}.camera_model {cam.get('camera_model')!r} is not supported "
                                         "(pinhole only)")
        fu, fv, pu, pv = numbers(path, f"{key}.intrinsics", cam.get("intrinsics"), 4)
        kind = str(cam.get("distortion_model", "none"))
        if kind not in _DISTORTION:
            raise CalibrationError(path, f"{key}.distortion_model {kind!r} is not supported; expected "
                                         f"{sorted(_DISTORTION)}")
        dist = numbers(path, f"{key}.distortion_coeffs", cam.get("distortion_coeffs", []))
        width, height = numbers(path, f"{key}.resolution", cam.get("resolution"), 2).astype(int)
        if index > 0:
            if "T_cn_cnm1" not in cam:
                raise CalibrationError(path, f"{key}: missing T_cn_cnm1 (pose from cam{index - 1})")
            step = numbers(path, f"{key}.T_cn_cnm1", cam["T_cn_cnm1"], 16).reshape(4, 4)
            if not np.allclose(step[3], [0, 0, 0, 1]):
                raise CalibrationError(path, f"{key}.T_cn_cnm1 last row must be 0 0 0 1, got {step[3].tolist()}")
            cam_from_cam0 = step @ cam_from_cam0
        K = np.array([[fu, 0.0, pu], [0.0, fv, pv], [0.0, 0.0, 1.0]])
        name = str(cam.get("rostopic") or key).strip("/").replace("/", "_") or key
        cameras.append(build_camera(path, name, K, dist, _DISTORTION[kind], width, height,
                                    cam_from_cam0[:3, :3], cam_from_cam0[:3, 3]))
        index += 1
    return cameras

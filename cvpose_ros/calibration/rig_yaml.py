"""The package's own rig YAML: every camera's intrinsics and pose in one file, with the pose's direction stated.

    cameras:
      - name: cam0
        image_size: [1280, 720]
        K: [fx, 0, cx, 0, fy, cy, 0, 0, 1]
        distortion_model: plumb_bob          # none | plumb_bob | rational_polynomial | equidistant
        D: [k1, k2, p1, p2, k3]
        pose:                                # optional: identity (world = this camera) when absent
          direction: world_from_camera       # the camera's pose in the world (what TF and the node take)
                                             # or camera_from_world (what OpenCV's rvec/tvec give)
          translation: [x, y, z]             # metres
          rotation: {quaternion: [x, y, z, w]}   # or {rpy: [roll, pitch, yaw]}, {matrix: [9 row-major]}, {rvec: [3]}

`cvpose-calib` writes this file for every calibration it reads, camera poses as world_from_camera quaternions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cvpose_ros.calibration.ros_yaml import load_yaml, numbers
from cvpose_ros.calibration.rotation import (
    rotation_from_quaternion,
    rotation_from_rpy,
    rotation_from_rvec,
    rotation_to,
)
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera

DIRECTIONS = ("world_from_camera", "camera_from_world")
_ROTATION_FORMS = {"quaternion": (4, rotation_from_quaternion), "rpy": (3, rotation_from_rpy),
                   "rvec": (3, rotation_from_rvec), "matrix": (9, lambda v: np.reshape(v, (3, 3)))}


def _rotation(path: Path, where: str, node: Any) -> np.ndarray:
    if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in _ROTATION_FORMS:
        raise CalibrationError(path, f"{where}.rotation must be one of {{{', '.join(_ROTATION_FORMS)}: [...]}}, "
                                     f"got {node!r}")
    form, values = next(iter(node.items()))
    count, convert = _ROTATION_FORMS[form]
    try:
        return convert(numbers(path, f"{where}.rotation.{form}", values, count))
    except ValueError as exc:
        raise CalibrationError(path, f"{where}.rotation.{form}: {exc}") from None


def read_rig_yaml(path: str | Path) -> list[CalibratedCamera]:
    """Cameras of a rig YAML file (see the module docstring)."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("cameras"), list) or not doc["cameras"]:
        raise CalibrationError(path, "not a rig YAML (needs a non-empty 'cameras' list)")
    cameras = []
    for i, cam in enumerate(doc["cameras"]):
        where = f"cameras[{i}]"
        if not isinstance(cam, dict):
            raise CalibrationError(path, f"{where} must be a mapping")
        name = str(cam.get("name") or f"camera{i}")
        width, height = numbers(path, f"{where}.image_size", cam.get("image_size"), 2).astype(int)
        K = numbers(path, f"{where}.K", cam.get("K"), 9)
        dist = numbers(path, f"{where}.D", cam.get("D", []))
        rotation, translation, notes = None, None, ()
        pose = cam.get("pose")
        if pose is None:
            notes = ("no pose: identity",)
        else:
            direction = pose.get("direction") if isinstance(pose, dict) else None
            if direction not in DIRECTIONS:
                raise CalibrationError(path, f"{where}.pose.direction must be one of {DIRECTIONS}, got {direction!r}")
            rotation = _rotation(path, f"{where}.pose", pose.get("rotation"))
            translation = numbers(path, f"{where}.pose.translation", pose.get("translation"), 3)
            if direction == "world_from_camera":  # checked below as a rotation; invert the pose here
                rotation, translation = rotation.T, -rotation.T @ translation
        cameras.append(build_camera(path, name, K, dist, str(cam.get("distortion_model", "plumb_bob")), width,
                                    height, rotation, translation, notes))
    return cameras


def rig_yaml(cameras: list[CalibratedCamera]) -> str:
    """`cameras` as a rig YAML, poses as world_from_camera (translation = camera centre, quaternion x y z w)."""
    entries = []
    for cam in cameras:
        model = cam.model
        entries.append({
            "name": cam.name, "image_size": [model.width, model.height],
            "K": [float(x) for x in model.K.ravel()], "distortion_model": model.distortion_model,
            "D": [float(x) for x in model.dist], "pose": {
                "direction": "world_from_camera", "translation": [float(x) for x in cam.center],
                "rotation": {"quaternion": rotation_to(cam.cam_from_world.R.T, "quaternion")}}})
    return yaml.safe_dump({"cameras": entries}, sort_keys=False, default_flow_style=None)

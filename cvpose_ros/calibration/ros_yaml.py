"""ROS camera_info YAML files (as `camera_calibration` and `camera_info_manager` write them), read and written.

One file holds one camera's intrinsics, rectification R and projection P, no pose. Two files of one stereo
calibration still give the pair's extrinsics: with the rectifications R1, R2 and the right projection's
Tx = P2[0,3] / P2[0,0] (= -baseline), x_right = R2^T (R1 x_left + (Tx, 0, 0)). Without that, cameras after the first
get an identity pose and a warning: their extrinsics must come from elsewhere (TF or parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera, parse_document

_MATRIX_SHAPES = {"camera_matrix": (3, 3), "rectification_matrix": (3, 3), "projection_matrix": (3, 4)}


def load_yaml(path: Path) -> Any:
    """Parsed YAML of `path`, or CalibrationError naming the file (missing, unreadable, malformed)."""
    return parse_document(path, yaml.safe_load, "YAML", (yaml.YAMLError,))


def numbers(path: Path, where: str, value: Any, count: int | None = None) -> np.ndarray:
    """`value` as a float array (with `count` entries when given), or CalibrationError naming the field."""
    try:
        array = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise CalibrationError(path, f"{where} must be numbers, got {value!r}") from None
    if count is not None and array.size != count:
        raise CalibrationError(path, f"{where} needs {count} numbers, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise CalibrationError(path, f"{where} has non-finite numbers: {array.tolist()}")
    return array


def _matrix(path: Path, doc: dict, key: str, required: bool = True) -> np.ndarray | None:
    node = doc.get(key)
    if node is None:
        if required:
            raise CalibrationError(path, f"missing {key!r}")
        return None
    if not isinstance(node, dict) or "data" not in node:
        raise CalibrationError(path, f"{key} must be a mapping with rows, cols and data")
    shape = _MATRIX_SHAPES.get(key)
    data = numbers(path, f"{key}.data", node["data"], None if shape is None else shape[0] * shape[1])
    return data if shape is None else data.reshape(shape)


def _read_one(path: Path, index: int) -> tuple[str, dict, np.ndarray, np.ndarray | None, np.ndarray | None]:
    doc = load_yaml(path)
    if not isinstance(doc, dict) or "camera_matrix" not in doc:
        raise CalibrationError(path, "not a camera_info YAML (no camera_matrix)")
    name = str(doc.get("camera_name") or path.stem or f"camera{index}")
    K = _matrix(path, doc, "camera_matrix")
    dist_node = doc.get("distortion_coefficients") or {"data": []}
    dist = numbers(path, "distortion_coefficients.data", dist_node.get("data", []) if isinstance(dist_node, dict)
                   else dist_node)
    for key in ("image_width", "image_height"):
        if not isinstance(doc.get(key), int) or doc[key] < 0:
            raise CalibrationError(path, f"{key} must be a non-negative integer, got {doc.get(key)!r}")
    intrinsics = {"K": K, "dist": dist, "distortion_model": str(doc.get("distortion_model") or "plumb_bob"),
                  "width": doc["image_width"], "height": doc["image_height"]}
    return name, intrinsics, K, _matrix(path, doc, "rectification_matrix", False), \
        _matrix(path, doc, "projection_matrix", False)


def read_camera_info_yaml(paths: list[str | Path]) -> list[CalibratedCamera]:
    """Cameras of one or more camera_info YAML files (world = the first camera's optical frame)."""
    files = [Path(p) for p in paths]
    read = [_read_one(p, i) for i, p in enumerate(files)]
    cameras = []
    first_rect = read[0][3]
    for i, (path, (name, intrinsics, _, rect, proj)) in enumerate(zip(files, read, strict=True)):
        rotation, translation, notes = None, None, ()
        if i > 0:
            stereo = proj is not None and rect is not None and first_rect is not None and abs(proj[0, 3]) > 0
            if stereo:
                tx = proj[0, 3] / proj[0, 0]
                rotation = rect.T @ first_rect
                translation = rect.T @ np.array([tx, 0.0, 0.0])
            else:
                notes = ("no extrinsics in a camera_info YAML: pose set to the first camera's (identity); "
                         "give the pose with TF or the node's parameters",)
        cameras.append(build_camera(path, name, rotation=rotation, translation=translation, warnings=notes,
                                    **intrinsics))
    return cameras


def camera_info_yaml(camera: CalibratedCamera) -> str:
    """`camera` as a camera_info YAML (no rectification: R = I, P = [K | 0]), readable by camera_info_manager."""
    model = camera.model
    dist = model.dist.tolist() if model.distortion_model != "none" else []
    distortion_model = model.distortion_model if model.distortion_model != "none" else "plumb_bob"
    if distortion_model == "plumb_bob" and not dist:
        dist = [0.0] * 5
    P = np.concatenate([model.K, np.zeros((3, 1))], axis=1)

    def block(rows: int, cols: int, data: np.ndarray | list[float]) -> dict:
        return {"rows": rows, "cols": cols, "data": [float(x) for x in np.asarray(data).ravel()]}

    doc = {"image_width": model.width, "image_height": model.height, "camera_name": camera.name,
           "camera_matrix": block(3, 3, model.K), "distortion_model": distortion_model,
           "distortion_coefficients": block(1, len(dist), dist), "rectification_matrix": block(3, 3, np.eye(3)),
           "projection_matrix": block(3, 4, P)}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)

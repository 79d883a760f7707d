"""CMU Panoptic Studio calibrations (`calibration_<sequence>.json`): a `cameras` list whose entries have `name`,
`type` (hd, vga, kinect-color), `resolution` [w, h], `K` (3x3), `distCoef` [k1, k2, p1, p2, k3], and `R` (3x3) and
`t` (3x1, centimetres), both camera-from-world. Every camera is read; `types` keeps some kinds only (the node
wants cameras of one rig, e.g. the 31 HD ones)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from cvpose_ros.calibration.ros_yaml import numbers
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera, parse_document

PANOPTIC_UNITS_PER_METRE = 100.0  # the studio's world is in centimetres


def is_panoptic(doc: object) -> bool:
    """A parsed JSON document that looks like a Panoptic calibration."""
    if not isinstance(doc, dict) or not isinstance(doc.get("cameras"), list) or not doc["cameras"]:
        return False
    first = doc["cameras"][0]
    return isinstance(first, dict) and {"K", "distCoef", "R", "t"} <= set(first)


def read_panoptic(path: str | Path, types: Sequence[str] | None = None) -> list[CalibratedCamera]:
    """The cameras of a Panoptic calibration file in file order (only those whose `type` is in `types` if given)."""
    path = Path(path)
    doc = parse_document(path, json.loads, "JSON", (json.JSONDecodeError,))
    if not isinstance(doc, dict) or not isinstance(doc.get("cameras"), list):
        raise CalibrationError(path, "missing 'cameras' (a list of cameras with K, distCoef, R, t)")
    cameras = []
    for index, entry in enumerate(doc["cameras"]):
        where = f"cameras[{index}]"
        if not isinstance(entry, dict):
            raise CalibrationError(path, f"{where}: expected a mapping")
        if types is not None and entry.get("type") not in types:
            continue
        for field in ("K", "distCoef", "R", "t", "resolution"):
            if field not in entry:
                raise CalibrationError(path, f"{where}: missing {field!r}")
        name = str(entry.get("name") or index)
        K = numbers(path, f"{where}.K", entry["K"], 9).reshape(3, 3)
        dist = numbers(path, f"{where}.distCoef", entry["distCoef"])
        width, height = numbers(path, f"{where}.resolution", entry["resolution"], 2).astype(int)
        R = numbers(path, f"{where}.R", entry["R"], 9).reshape(3, 3)
        t = numbers(path, f"{where}.t", entry["t"], 3) / PANOPTIC_UNITS_PER_METRE
        cameras.append(build_camera(path, name, K, dist, "plumb_bob", width, height, R, t))
    if not cameras:
        kinds = sorted({str(e.get("type")) for e in doc["cameras"] if isinstance(e, dict)})
        raise CalibrationError(path, f"no cameras of type {list(types or [])} (the file has {kinds})")
    return cameras

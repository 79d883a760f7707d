"""Pose2Sim / anipose (aniposelib) TOML calibrations: one table per camera with `name`, `size` [w, h], `matrix`
(3x3), `distortions` [k1, k2, p1, p2], `rotation` (Rodrigues vector) and `translation`, both camera-from-world,
and `fisheye`. Pose2Sim writes metres; anipose writes the board's units (often millimetres): `units_per_metre`
converts. Tables without a `matrix` (e.g. [metadata]) are skipped."""

from __future__ import annotations

import tomllib
from pathlib import Path

from cvpose_ros.calibration.ros_yaml import numbers
from cvpose_ros.calibration.rotation import rotation_from_rvec
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError, build_camera, parse_document


def read_toml_rig(path: str | Path, units_per_metre: float = 1.0) -> list[CalibratedCamera]:
    """Every camera table of a Pose2Sim / anipose TOML file, in file order."""
    path = Path(path)
    doc = parse_document(path, tomllib.loads, "TOML", (tomllib.TOMLDecodeError,))
    cameras = []
    for key, table in doc.items():
        if not isinstance(table, dict) or "matrix" not in table:
            continue
        name = str(table.get("name") or key)
        where = f"[{key}]"
        K = numbers(path, f"{where}.matrix", table["matrix"], 9).reshape(3, 3)
        dist = numbers(path, f"{where}.distortions", table.get("distortions", []))
        width, height = numbers(path, f"{where}.size", table.get("size"), 2).astype(int)
        for field in ("rotation", "translation"):
            if field not in table:
                raise CalibrationError(path, f"{where}: missing {field!r}")
        rvec = numbers(path, f"{where}.rotation", table["rotation"], 3)
        translation = numbers(path, f"{where}.translation", table["translation"], 3) / units_per_metre
        model = "equidistant" if table.get("fisheye") else "plumb_bob"
        cameras.append(build_camera(path, name, K, dist, model, width, height, rotation_from_rvec(rvec),
                                    translation))
    if not cameras:
        raise CalibrationError(path, "no camera tables (a table with matrix, distortions, rotation, translation)")
    return cameras

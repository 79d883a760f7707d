"""One entry point for every calibration format: `read_calibration(paths, format="auto")`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from cvpose_ros.calibration.kalibr import read_kalibr
from cvpose_ros.calibration.opencv_storage import read_opencv
from cvpose_ros.calibration.panoptic import is_panoptic, read_panoptic
from cvpose_ros.calibration.qualisys import read_qualisys
from cvpose_ros.calibration.rig_yaml import read_rig_yaml
from cvpose_ros.calibration.ros_yaml import read_camera_info_yaml
from cvpose_ros.calibration.toml_rig import read_toml_rig
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError

FORMATS = ("auto", "qualisys", "opencv", "ros", "kalibr", "toml", "rig", "panoptic")
# Formats whose translations are in the calibration board's units (others are metres by definition).
UNIT_FORMATS = ("opencv", "toml")


def detect_format(path: Path) -> str:
    """The format of `path`, from its name and first bytes; CalibrationError when none matches."""
    if not path.is_file():
        raise CalibrationError(path, "no such file")
    name = path.name.lower()
    if name.endswith(".toml"):
        return "toml"
    head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    if name.endswith(".qca.txt") or "<calibration" in head:
        return "qualisys"
    if "<opencv_storage>" in head or head.startswith("%YAML") or "!!opencv-matrix" in head:
        return "opencv"
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        doc = None
    if doc is None and name.endswith(".json"):  # JSON with tabs is not YAML
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            doc = None
    if is_panoptic(doc):  # JSON parses as YAML; its camera list would otherwise read as a rig YAML's
        return "panoptic"
    if isinstance(doc, dict):
        if isinstance(doc.get("cam0"), dict) and "intrinsics" in doc["cam0"]:
            return "kalibr"
        if isinstance(doc.get("camera_matrix"), dict):
            return "ros"
        if isinstance(doc.get("cameras"), list):
            return "rig"
    raise CalibrationError(path, "unknown calibration format (expected Qualisys .qca.txt, OpenCV FileStorage, "
                                 "camera_info YAML, Kalibr camchain, Pose2Sim/anipose TOML, rig YAML or "
                                 "Panoptic JSON); name it with --format")


def read_calibration(paths: Sequence[str | Path], format: str = "auto",
                     units_per_metre: float = 1.0) -> list[CalibratedCamera]:
    """Cameras of one calibration (several files only for `ros` and `opencv`), in a shared world frame (metres)."""
    files = [Path(p) for p in paths]
    if not files:
        raise CalibrationError("(none)", "no calibration file given")
    if format not in FORMATS:
        raise CalibrationError(files[0], f"unknown format {format!r}; expected one of {FORMATS}")
    kinds = {detect_format(p) for p in files} if format == "auto" else {format}
    if len(kinds) > 1:
        raise CalibrationError(files[0], f"the files are of different formats {sorted(kinds)}")
    kind = kinds.pop()
    if len(files) > 1 and kind not in ("ros", "opencv"):
        raise CalibrationError(files[1], f"format {kind!r} takes one file; got {len(files)}")
    if units_per_metre <= 0:
        raise CalibrationError(files[0], f"units per metre must be positive, got {units_per_metre}")
    single: dict[str, Callable[[Path], list[CalibratedCamera]]] = {
        "qualisys": read_qualisys, "kalibr": read_kalibr, "rig": read_rig_yaml, "panoptic": read_panoptic,
        "toml": lambda p: read_toml_rig(p, units_per_metre)}
    if kind == "ros":
        cameras = read_camera_info_yaml(files)
    elif kind == "opencv":
        cameras = read_opencv(files, units_per_metre)
    else:
        cameras = single[kind](files[0])
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise CalibrationError(files[0], f"duplicate camera names {names}")
    return cameras

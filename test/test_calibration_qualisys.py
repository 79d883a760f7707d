"""Qualisys .qca.txt reader: a two-camera file written here, checked against an independent projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cvpose_ros.calibration import CalibratedCamera, CalibrationError, read_qualisys
from cvpose_ros.geometry.camera import RigidTransform

FLIP = np.diag([1.0, -1.0, -1.0])
# name, centre (mm), target (m), fx, fy, cx, cy (px), k1, k2, k3, p1, p2
CAMERAS = [
    ("left", (1500.0, -2500.0, 1800.0), (0.0, 0.0, 1.0), 1650.0, 1652.0, 540.5, 955.0, -0.05, 0.13, 0.01,
     6e-4, 7e-4),
    ("right", (-2800.0, 1200.0, 2100.0), (0.2, 0.1, 0.9), 1200.0, 1199.0, 960.0, 540.0, 0.02, -0.01, 0.0,
     -5e-4, 2e-4),
]


def qualisys_matrix(centre_mm: tuple[float, ...], target: tuple[float, ...]) -> np.ndarray:
    """The file's M for a camera at `centre_mm` looking at `target` (Qualisys axes: pi about x from OpenCV's)."""
    return FLIP @ RigidTransform.look_at(np.array(centre_mm) / 1000.0, target).R


def camera_xml(name: str, centre: tuple[float, ...], target: tuple[float, ...], fx: float, fy: float, cx: float,
               cy: float, k1: float, k2: float, k3: float, p1: float, p2: float, m: np.ndarray | None = None,
               drop: str = "") -> str:
    m = qualisys_matrix(centre, target) if m is None else m
    rot = " ".join(f'r{i + 1}{j + 1}="{float(m[i, j])!r}"' for i in range(3) for j in range(3))
    intrinsic = {"focalLengthU": fx * 64, "focalLengthV": fy * 64, "centerPointU": cx * 64, "centerPointV": cy * 64,
                 "radialDistortion1": k1, "radialDistortion2": k2, "radialDistortion3": k3,
                 "tangentalDistortion1": p1, "tangentalDistortion2": p2, "skew": 0.0}
    attrs = " ".join(f'{k}="{float(v)!r}"' for k, v in intrinsic.items() if k != drop)
    return (f'<camera active="1" serial="{name}">\n'
            f'  <fov_video bottom="{2 * cy - 1:.0f}" left="0" right="{2 * cx - 1:.0f}" top="0"/>\n'
            f'  <transform {rot} x="{centre[0]}" y="{centre[1]}" z="{centre[2]}"/>\n'
            f'  <intrinsic {attrs}/>\n</camera>\n')


def write_file(path: Path, cameras: list[str]) -> Path:
    path.write_text("<?xml version='1.0' encoding='ASCII'?>\n<calibration type=\"regular\">\n<cameras>\n"
                    + "".join(cameras) + "</cameras>\n</calibration>\n")
    return path


def expected_pixel(point: np.ndarray, centre_mm, target, fx, fy, cx, cy, k1, k2, k3, p1, p2) -> np.ndarray:
    """Plumb-bob projection written out by hand from the file's conventions."""
    x, y, z = FLIP @ qualisys_matrix(centre_mm, target) @ (point - np.array(centre_mm) / 1000.0)
    a, b = x / z, y / z
    r2 = a * a + b * b
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    ad = a * radial + 2 * p1 * a * b + p2 * (r2 + 2 * a * a)
    bd = b * radial + p1 * (r2 + 2 * b * b) + 2 * p2 * a * b
    return np.array([fx * ad + cx, fy * bd + cy])


def test_projection_matches_the_file_conventions(tmp_path):
    path = write_file(tmp_path / "calib.qca.txt", [camera_xml(*c) for c in CAMERAS])
    cameras = read_qualisys(path)
    assert [c.name for c in cameras] == ["left", "right"] and all(isinstance(c, CalibratedCamera) for c in cameras)
    assert (cameras[0].model.width, cameras[0].model.height) == (1081, 1910)
    np.testing.assert_allclose(cameras[0].center, np.array(CAMERAS[0][1]) / 1000.0, atol=1e-12)
    for point in (np.array([0.1, -0.2, 1.2]), np.array([-0.3, 0.25, 0.4])):
        for cam, spec in zip(cameras, CAMERAS, strict=True):
            np.testing.assert_allclose(cam.project(point), expected_pixel(point, *spec[1:]), atol=1e-6)


def test_small_rotation_errors_are_repaired(tmp_path):
    name, centre, target, *rest = CAMERAS[0]
    m = qualisys_matrix(centre, target) + 2e-5 * np.arange(9).reshape(3, 3)
    camera = read_qualisys(write_file(tmp_path / "c.qca.txt", [camera_xml(name, centre, target, *rest, m=m)]))[0]
    np.testing.assert_allclose(camera.cam_from_world.R @ camera.cam_from_world.R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(camera.cam_from_world.R, FLIP @ qualisys_matrix(centre, target), atol=1e-3)


def one_line_error(path: Path, *fragments: str) -> None:
    with pytest.raises(CalibrationError) as err:
        read_qualisys(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_errors_name_the_file_and_the_problem(tmp_path):
    name, centre, target, *rest = CAMERAS[0]
    one_line_error(tmp_path / "missing.qca.txt", "no such file")
    (tmp_path / "broken.qca.txt").write_text("<calibration><cameras><camera></cameras>")
    one_line_error(tmp_path / "broken.qca.txt", "malformed XML")
    one_line_error(write_file(tmp_path / "empty.qca.txt", []), "no <cameras>/<camera>")
    (tmp_path / "other.xml").write_text("<data/>")
    one_line_error(tmp_path / "other.xml", "<data>")
    one_line_error(write_file(tmp_path / "nofocal.qca.txt", [camera_xml(*CAMERAS[0], drop="focalLengthU")]),
                   "left", "focalLengthU")
    zero = camera_xml(name, centre, target, 0.0, *rest[1:])
    one_line_error(write_file(tmp_path / "zero.qca.txt", [zero]), "left", "focal length")
    scaled = camera_xml(name, centre, target, *rest, m=1.1 * qualisys_matrix(centre, target))
    one_line_error(write_file(tmp_path / "scaled.qca.txt", [scaled]), "not a rotation", "tolerance")
    mirrored = camera_xml(name, centre, target, *rest, m=-qualisys_matrix(centre, target))
    one_line_error(write_file(tmp_path / "mirror.qca.txt", [mirrored]), "not a rotation")
    text = camera_xml(*CAMERAS[0]).replace('x="1500.0"', 'x="abc"')
    one_line_error(write_file(tmp_path / "nan.qca.txt", [text]), "transform.x", "not a number")
    twice = [camera_xml(*CAMERAS[0]), camera_xml(*CAMERAS[0])]
    one_line_error(write_file(tmp_path / "twice.qca.txt", twice), "duplicate")

"""Every calibration reader on files the test writes in that format, the rig checks and `cvpose-calib`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from cvpose_ros.calibration import (
    CalibrationError,
    camera_info_yaml,
    check_rig,
    detect_format,
    read_calibration,
    read_panoptic,
    rig_yaml,
)
from cvpose_ros.calibration.cli import main as calib_main
from cvpose_ros.geometry.camera import CameraModel, RigidTransform, projection_matrix
from cvpose_ros.geometry.multiview import triangulate_views
from cvpose_ros.geometry.triangulation import triangulate_dlt

CENTRE = np.array([0.0, 0.0, 1.0])
EYES = [np.array([3.0, -0.5, 1.8]), np.array([0.4, 3.2, 2.2]), np.array([-2.8, -1.5, 1.5])]
SIZE = (1280, 720)
DIST = [np.array([-0.11, 0.05, 0.0004, -0.0003, 0.0]), np.zeros(5), np.array([0.08, -0.02, 0.0, 0.0, 0.0])]
POINTS = np.array([[0.1, -0.2, 1.2], [-0.3, 0.25, 0.4], [0.4, 0.3, 1.7], [0.0, 0.0, 1.0]])


def truth() -> list[tuple[np.ndarray, np.ndarray, RigidTransform]]:
    """(K, dist, cam_from_world) of three cameras around CENTRE."""
    rig = []
    for i, eye in enumerate(EYES):
        K = np.array([[900.0 + 40 * i, 0.0, 640.0 + 3 * i], [0.0, 905.0 + 40 * i, 360.0 - 2 * i], [0.0, 0.0, 1.0]])
        rig.append((K, DIST[i], RigidTransform.look_at(eye, CENTRE)))
    return rig


def expected_pixels(index: int, points: np.ndarray, world_from_ref: RigidTransform | None = None) -> np.ndarray:
    K, dist, pose = truth()[index]
    if world_from_ref is not None:
        pose = pose.compose(world_from_ref)
    model = CameraModel(K=K, dist=dist, distortion_model="plumb_bob", width=SIZE[0], height=SIZE[1])
    return model.project(pose.apply(points))


def assert_matches(cameras, indices, world_from_ref: RigidTransform | None = None, atol: float = 1e-6) -> None:
    assert len(cameras) == len(indices)
    for cam, index in zip(cameras, indices, strict=True):
        assert (cam.model.width, cam.model.height) == SIZE
        np.testing.assert_allclose(cam.project(POINTS), expected_pixels(index, POINTS, world_from_ref), atol=atol)


# ------------------------------------------------------------------------------------------------ file writers
def write_toml(path: Path, scale: float = 1.0) -> Path:
    lines = []
    for i, (K, dist, pose) in enumerate(truth()):
        rvec = Rotation.from_matrix(pose.R).as_rotvec()
        lines += [f"[cam_{i:02d}]", f'name = "cam_{i:02d}"', f"size = [ {SIZE[0]}.0, {SIZE[1]}.0]",
                  f"matrix = {np.round(K, 12).tolist()}", f"distortions = {dist[:4].tolist()}",
                  f"rotation = {rvec.tolist()}", f"translation = {(pose.t * scale).tolist()}", "fisheye = false", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0"]
    path.write_text("\n".join(lines))
    return path


def write_kalibr(path: Path) -> Path:
    doc, previous = {}, None
    for i, (K, dist, pose) in enumerate(truth()):
        cam = {"camera_model": "pinhole", "intrinsics": [float(v) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2])],
               "distortion_model": "radtan", "distortion_coeffs": dist[:4].tolist(), "resolution": list(SIZE),
               "rostopic": f"/cam{i}/image_raw"}
        if previous is not None:
            cam["T_cn_cnm1"] = pose.compose(previous.inverse()).matrix().tolist()
        doc[f"cam{i}"], previous = cam, pose
    path.write_text(yaml.safe_dump(doc))
    return path


def write_opencv_stereo(path: Path, scale: float = 1000.0) -> Path:
    (K1, D1, pose1), (K2, D2, pose2) = truth()[:2]
    rel = pose2.compose(pose1.inverse())
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for key, value in (("K1", K1), ("D1", D1[None]), ("K2", K2), ("D2", D2[None]), ("R", rel.R),
                       ("T", rel.t[:, None] * scale), ("image_size", np.array(SIZE, dtype=np.int32)[:, None])):
        fs.write(key, value)
    fs.release()
    return path


def write_opencv_single(path: Path, index: int = 2) -> Path:
    K, dist, pose = truth()[index]
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", SIZE[0])
    fs.write("image_height", SIZE[1])
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", dist[None])
    fs.write("rvec", Rotation.from_matrix(pose.R).as_rotvec()[:, None])
    fs.write("tvec", pose.t[:, None])
    fs.release()
    return path


def write_panoptic(path: Path) -> Path:
    """A Panoptic Studio calibration JSON: the three cameras as HD cameras (centimetres, R and t as nested lists)
    plus a VGA camera the reader can leave out."""
    cams = []
    for i, (K, dist, pose) in enumerate(truth()):
        cams.append({"name": f"00_{i:02d}", "type": "hd", "resolution": list(SIZE), "panel": 0, "node": i,
                     "K": K.tolist(), "distCoef": dist.tolist(), "R": pose.R.tolist(),
                     "t": (100.0 * pose.t)[:, None].tolist()})
    vga = dict(cams[0], name="01_01", type="vga", resolution=[640, 480])
    path.write_text(json.dumps({"calibDataSource": "test", "cameras": [*cams, vga]}, indent="\t"))  # as shipped
    return path


# ----------------------------------------------------------------------------------------------------- readers
def test_pose2sim_toml_in_metres_and_anipose_in_millimetres(tmp_path):
    assert detect_format(write_toml(tmp_path / "Calib.toml")) == "toml"
    assert_matches(read_calibration([tmp_path / "Calib.toml"]), [0, 1, 2])
    mm = write_toml(tmp_path / "anipose.toml", scale=1000.0)
    assert_matches(read_calibration([mm], units_per_metre=1000.0), [0, 1, 2])
    assert any("millimetres" in w for w in check_rig(read_calibration([mm])))


def test_panoptic_json_in_centimetres_by_camera_type(tmp_path):
    path = write_panoptic(tmp_path / "calibration_seq.json")
    assert detect_format(path) == "panoptic"  # not the rig YAML reader, although JSON parses as YAML
    assert [c.name for c in read_calibration([path])] == ["00_00", "00_01", "00_02", "01_01"]
    hd = read_panoptic(path, types=("hd",))
    assert_matches(hd, [0, 1, 2])
    np.testing.assert_allclose(hd[1].center, EYES[1], atol=1e-9)  # centimetres became metres
    with pytest.raises(CalibrationError, match="no cameras of type .*kinect.*the file has"):
        read_panoptic(path, types=("kinect-color",))
    doc = json.loads(path.read_text())
    del doc["cameras"][1]["distCoef"]
    (tmp_path / "nodist.json").write_text(json.dumps(doc))
    one_line([tmp_path / "nodist.json"], "cameras[1]", "distCoef")
    doc["cameras"][1]["distCoef"] = [0.0] * 5
    doc["cameras"][1]["t"] = [[1.0], [2.0]]
    (tmp_path / "short_t.json").write_text(json.dumps(doc))
    one_line([tmp_path / "short_t.json"], "cameras[1].t", "3 numbers")
    (tmp_path / "broken.json").write_text(path.read_text()[:-20])
    one_line([tmp_path / "broken.json"], "unknown calibration format")
    one_line([tmp_path / "broken.json"], "malformed JSON", format="panoptic")


def test_kalibr_camchain_chains_from_cam0(tmp_path):
    path = write_kalibr(tmp_path / "camchain.yaml")
    assert detect_format(path) == "kalibr"
    cameras = read_calibration([path])
    assert [c.name for c in cameras] == ["cam0_image_raw", "cam1_image_raw", "cam2_image_raw"]
    assert_matches(cameras, [0, 1, 2], world_from_ref=truth()[0][2].inverse())


def test_opencv_stereo_and_single_camera_files(tmp_path):
    for name in ("stereo.yml", "stereo.xml"):
        path = write_opencv_stereo(tmp_path / name)
        assert detect_format(path) == "opencv"
        assert_matches(read_calibration([path], units_per_metre=1000.0), [0, 1],
                       world_from_ref=truth()[0][2].inverse())
    single = read_calibration([write_opencv_single(tmp_path / "cam2.xml")])
    assert_matches(single, [2])


def test_ros_camera_info_yaml_pair_from_stereo_rectification(tmp_path):
    (K1, D1, pose1), (K2, D2, pose2) = truth()[:2]
    # A close, nearly parallel pair as camera_calibration's stereo mode sees it.
    pose2 = RigidTransform(Rotation.from_euler("xyz", [0.01, -0.03, 0.02]).as_matrix(), [-0.12, 0.002, 0.001])
    pose2 = pose2.compose(pose1)
    rel = pose2.compose(pose1.inverse())
    R1, R2, P1, P2, *_ = cv2.stereoRectify(K1, D1, K2, D2, SIZE, rel.R, rel.t[:, None])
    files = []
    for i, (K, D, R, P) in enumerate(((K1, D1, R1, P1), (K2, D2, R2, P2))):
        doc = {"image_width": SIZE[0], "image_height": SIZE[1], "camera_name": f"stereo_{i}",
               "camera_matrix": {"rows": 3, "cols": 3, "data": K.ravel().tolist()}, "distortion_model": "plumb_bob",
               "distortion_coefficients": {"rows": 1, "cols": 5, "data": D.tolist()},
               "rectification_matrix": {"rows": 3, "cols": 3, "data": R.ravel().tolist()},
               "projection_matrix": {"rows": 3, "cols": 4, "data": P.ravel().tolist()}}
        files.append(tmp_path / f"stereo_{i}.yaml")
        files[-1].write_text(yaml.safe_dump(doc))
    assert detect_format(files[0]) == "ros"
    left, right = read_calibration(files)
    np.testing.assert_allclose(right.cam_from_world.R, rel.R, atol=1e-9)
    np.testing.assert_allclose(right.cam_from_world.t, rel.t, atol=1e-9)
    only = read_calibration(files[1:])
    assert only[0].name == "stereo_1" and only[0].warnings == ()


def test_written_camera_info_and_rig_yaml_read_back(tmp_path):
    cameras = read_calibration([write_toml(tmp_path / "c.toml")])
    (tmp_path / "rig.yaml").write_text(rig_yaml(cameras))
    assert detect_format(tmp_path / "rig.yaml") == "rig"
    assert_matches(read_calibration([tmp_path / "rig.yaml"]), [0, 1, 2])
    (tmp_path / "cam.yaml").write_text(camera_info_yaml(cameras[1]))
    back = read_calibration([tmp_path / "cam.yaml"])[0]
    np.testing.assert_allclose(back.model.K, cameras[1].model.K)
    np.testing.assert_allclose(back.model.project(POINTS + [0, 0, 3]), cameras[1].model.project(POINTS + [0, 0, 3]))


def test_rig_yaml_rotation_forms_and_directions(tmp_path):
    K, dist, pose = truth()[0]
    world_from_cam = pose.inverse()
    forms = {"quaternion": world_from_cam.quaternion().tolist(),
             "rpy": Rotation.from_matrix(world_from_cam.R).as_euler("xyz").tolist(),
             "matrix": np.round(world_from_cam.R, 5).ravel().tolist()}
    for form, value in forms.items():
        doc = {"cameras": [{"name": "a", "image_size": list(SIZE), "K": K.ravel().tolist(), "D": dist.tolist(),
                            "pose": {"direction": "world_from_camera", "translation": world_from_cam.t.tolist(),
                                     "rotation": {form: value}}}]}
        (tmp_path / "r.yaml").write_text(yaml.safe_dump(doc))
        camera = read_calibration([tmp_path / "r.yaml"])[0]
        assert_matches([camera], [0], atol=0.05 if form == "matrix" else 1e-6)
        assert any("orthonormalised" in w for w in camera.warnings) == (form == "matrix")


# ------------------------------------------------------------------------------------------------ bad files
def one_line(paths, *fragments, **kwargs) -> None:
    with pytest.raises(CalibrationError) as err:
        read_calibration(paths, **kwargs)
    assert "\n" not in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_bad_files_give_one_line_naming_the_field(tmp_path):
    one_line([tmp_path / "none.toml"], "no such file")
    (tmp_path / "x.txt").write_text("hello: world\n")
    one_line([tmp_path / "x.txt"], "unknown calibration format")
    text = write_toml(tmp_path / "t.toml").read_text()
    (tmp_path / "bad.toml").write_text(text.replace("distortions = [", "distortions = [ 1e400, "))
    one_line([tmp_path / "bad.toml"], "distortions")
    (tmp_path / "norot.toml").write_text(text.replace("rotation = ", "rot = "))
    one_line([tmp_path / "norot.toml"], "[cam_00]", "rotation")
    doc = yaml.safe_load(write_kalibr(tmp_path / "k.yaml").read_text())
    doc["cam1"]["intrinsics"] = [1.0, 2.0]
    (tmp_path / "k2.yaml").write_text(yaml.safe_dump(doc))
    one_line([tmp_path / "k2.yaml"], "cam1.intrinsics", "4 numbers")
    doc["cam1"]["intrinsics"] = [900.0, 900.0, 640.0, 360.0]
    doc["cam1"]["distortion_model"] = "fov"
    (tmp_path / "k3.yaml").write_text(yaml.safe_dump(doc))
    one_line([tmp_path / "k3.yaml"], "cam1.distortion_model", "fov")
    K, dist, pose = truth()[0]
    gross = {"cameras": [{"name": "a", "image_size": list(SIZE), "K": K.ravel().tolist(), "D": dist.tolist(),
                          "pose": {"direction": "camera_from_world", "translation": pose.t.tolist(),
                                   "rotation": {"matrix": (1.05 * pose.R).ravel().tolist()}}}]}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(gross))
    one_line([tmp_path / "g.yaml"], "camera a", "not a rotation", "tolerance")
    gross["cameras"][0]["pose"]["direction"] = "cam_to_world"
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(gross))
    one_line([tmp_path / "d.yaml"], "direction")
    gross["cameras"][0]["K"] = [0.0] * 9
    gross["cameras"][0]["pose"]["direction"] = "camera_from_world"
    (tmp_path / "z.yaml").write_text(yaml.safe_dump(gross))
    one_line([tmp_path / "z.yaml"], "camera a", "uncalibrated")


def test_checks_flag_inverted_poses():
    """Cameras around a scene away from the world origin (a room corner), as real calibrations are: inverted poses
    put the scene behind or outside the cameras."""
    from cvpose_ros.calibration import CalibratedCamera

    room = np.array([4.0, 3.0, 0.0])
    cameras = [CalibratedCamera(c.name, c.model, RigidTransform.look_at(room + eye, room + CENTRE))
               for c, eye in zip(read_calibration_rig(), EYES, strict=False)]
    assert check_rig(cameras) == []
    inverted = [CalibratedCamera(c.name, c.model, c.cam_from_world.inverse()) for c in cameras]
    warnings = check_rig(inverted)
    assert warnings and all("inverted" in w for w in warnings)


# ------------------------------------------------------------------------------------------------------- CLI
def test_cli_writes_what_the_node_needs(tmp_path, capsys):
    calib = write_toml(tmp_path / "Calib.toml")
    assert calib_main([str(calib), "--pair", "cam_00,cam_02", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "cam_02" in out and "baseline" in out
    params = yaml.safe_load((tmp_path / "out" / "refiner_extrinsics.yaml").read_text())["/**"]["ros__parameters"]
    ref0 = RigidTransform.from_quaternion(params["cam0"]["rotation"], params["cam0"]["translation"])
    ref1 = RigidTransform.from_quaternion(params["cam1"]["rotation"], params["cam1"]["translation"])
    cam1_from_cam0 = ref1.inverse().compose(ref0)  # what the node computes from these parameters
    expected = truth()[2][2].compose(truth()[0][2].inverse())
    np.testing.assert_allclose(cam1_from_cam0.matrix(), expected.matrix(), atol=1e-8)
    infos = sorted(p.name for p in (tmp_path / "out").glob("cam_*.yaml"))
    assert infos == ["cam_00.yaml", "cam_01.yaml", "cam_02.yaml"]
    assert read_calibration([tmp_path / "out" / "rig.yaml"])[2].name == "cam_02"



def test_cli_keeps_only_the_listed_cameras_of_a_large_rig(tmp_path, capsys):
    """A studio file holds many cameras (Panoptic: 520); --cameras keeps those the robot uses, in the given order,
    for the report, the written files and --pair's indices."""
    calib = write_panoptic(tmp_path / "calibration_studio.json")
    out = tmp_path / "out"
    assert calib_main([str(calib), "--cameras", "00_02,0", "--pair", "all", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "[0] 00_02" in report and "[1] 00_00" in report and "01_01" not in report
    assert sorted(p.name for p in out.glob("0*.yaml")) == ["00_00.yaml", "00_02.yaml"]
    assert [c.name for c in read_calibration([out / "rig.yaml"])] == ["00_02", "00_00"]
    params = yaml.safe_load((out / "refiner_extrinsics.yaml").read_text())["/**"]["ros__parameters"]
    ref0 = RigidTransform.from_quaternion(params["cam0"]["rotation"], params["cam0"]["translation"])
    ref1 = RigidTransform.from_quaternion(params["cam1"]["rotation"], params["cam1"]["translation"])
    expected = truth()[0][2].compose(truth()[2][2].inverse())  # cam1 = 00_00, cam0 = 00_02: the pair follows the list
    np.testing.assert_allclose(ref1.inverse().compose(ref0).matrix(), expected.matrix(), atol=1e-8)
    assert calib_main([str(calib), "--cameras", "00_02,00_09"]) == 2
    assert "--cameras" in capsys.readouterr().err and calib_main([str(calib), "--cameras", "1,1"]) == 2

def test_cli_errors_and_strict(tmp_path, capsys):
    assert calib_main([str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    assert calib_main([str(write_toml(tmp_path / "c.toml")), "--pair", "0,7", "--out", str(tmp_path / "o")]) == 2
    assert "out of range" in capsys.readouterr().err
    mm = write_toml(tmp_path / "mm.toml", scale=1000.0)
    assert calib_main([str(mm)]) == 0
    assert "millimetres" in capsys.readouterr().out
    assert calib_main([str(mm), "--strict"]) == 1
    assert calib_main([str(mm), "--units", "mm", "--strict"]) == 0


def test_cli_keypoint_check_triangulates_every_camera(tmp_path, capsys):
    calib = write_toml(tmp_path / "c.toml")
    rng = np.random.default_rng(0)
    frames = CENTRE + rng.uniform(-0.4, 0.4, size=(20, 17, 3))
    data = {}
    for i in range(3):
        pixels = expected_pixels(i, frames) + rng.normal(0, 1.0, size=(20, 17, 2))
        data[f"keypoints_{i}"], data[f"confidence_{i}"] = pixels, np.full((20, 17), 0.9)
    np.savez(tmp_path / "kp.npz", **data)
    assert calib_main([str(calib), "--keypoints", str(tmp_path / "kp.npz"), "--max-lag", "2"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("keypoints:")][0]
    assert "lags [0, 0, 0]" in line
    assert float(line.split("median residual of ")[1].split(" px")[0]) < 1.5


def test_n_view_triangulation_drops_one_views_outlier():
    cameras = read_calibration_rig()
    pixels = np.stack([cam.project(POINTS) for cam in cameras])
    pixels[1, 2] += [90.0, -60.0]  # one camera's detector is far off on one joint
    conf = np.ones(pixels.shape[:2])
    plain = triangulate_views(cameras, pixels, conf)
    robust = triangulate_views(cameras, pixels, conf, reject_outliers=True)
    assert np.linalg.norm(plain[2] - POINTS[2]) > 0.02
    np.testing.assert_allclose(robust, POINTS, atol=1e-6)


def test_robust_triangulation_fades_out_one_far_off_view_among_three():
    """Issue 14: among three views the leave-one-out rejection cannot tell an outlier (it needs four); the
    reweighted DLT (`robust=True`) does, and leaves consistent views alone."""
    cameras = read_calibration_rig()[:3]
    rng = np.random.default_rng(1)
    people = CENTRE + rng.uniform(-0.3, 0.3, size=(20, 17, 3))           # 20 people of 17 joints, ~0.6 m tall
    pixels = np.stack([cam.project(people) for cam in cameras])          # (3, 20, 17, 2)
    noisy = pixels + rng.normal(0.0, 1.0, pixels.shape)
    conf = np.ones(pixels.shape[:3])
    far = noisy.copy()
    far[1, :, 5] += [60.0, -45.0]  # one camera's detector is far off on one joint of everyone
    def errors(robust: bool) -> tuple[float, float]:
        """Median error (m) of the far-off joint, and of all joints without the far-off view."""
        far_error = np.linalg.norm(triangulate_views(cameras, far, conf, robust=robust) - people, axis=-1)
        clean = np.linalg.norm(triangulate_views(cameras, noisy, conf, robust=robust) - people, axis=-1)
        return float(np.median(far_error[:, 5])), float(np.median(clean))

    (plain_far, plain_clean), (robust_far, robust_clean) = errors(False), errors(True)
    assert robust_far < 0.4 * plain_far and robust_clean < 1.1 * plain_clean
    pair = triangulate_views(cameras[:2], far[:2], conf[:2])
    np.testing.assert_array_equal(triangulate_views(cameras[:2], far[:2], conf[:2], robust=True), pair)
    # the plain N-view path solves exactly the DLT of `triangulate_dlt` (its normal matrices are built once)
    rays = np.stack([cam.model.undistort_points(p) for cam, p in zip(cameras, far, strict=True)])
    proj = np.stack([projection_matrix(cam.cam_from_world) for cam in cameras])
    np.testing.assert_allclose(triangulate_views(cameras, far, conf),
                               triangulate_dlt(proj, np.moveaxis(rays, 0, -3), np.moveaxis(conf, 0, -2)), atol=1e-12)


def read_calibration_rig():
    from cvpose_ros.calibration import CalibratedCamera

    extra = RigidTransform.look_at([0.5, -3.0, 2.5], CENTRE)
    cams = [CalibratedCamera(f"c{i}", CameraModel(K=K, dist=dist, distortion_model="plumb_bob", width=SIZE[0],
                                                  height=SIZE[1]), pose) for i, (K, dist, pose) in enumerate(truth())]
    cams.append(CalibratedCamera("c3", cams[0].model, extra))
    return cams


def test_a_steady_offset_of_a_near_person_is_not_an_outlier():
    """A detector that marks one view's joints a steady 12 % of the person's size off (the near surface of a close
    person) is noise the other views average, not an outlier: the leave-one-out rejection keeps that view, while
    a joint off by most of the person's size is still dropped."""
    cameras = read_calibration_rig()
    rng = np.random.default_rng(0)
    body = CENTRE + rng.normal(0.0, 0.35, (17, 3))            # a person-sized cloud of joints
    pixels = np.stack([cam.project(body) for cam in cameras])
    size = np.ptp(pixels[1], axis=0).max()
    shifted = pixels.copy()
    shifted[1] += 0.12 * size * np.array([0.6, 0.8])          # every joint of view 1, the same way
    conf = np.ones(pixels.shape[:2])
    plain = triangulate_views(cameras, shifted, conf)
    np.testing.assert_allclose(triangulate_views(cameras, shifted, conf, reject_outliers=True), plain, atol=1e-9)
    shifted[2, 5] += 0.8 * size * np.array([1.0, 0.0])        # and one gross error in another view
    rejected = triangulate_views(cameras, shifted, conf, reject_outliers=True)
    assert np.linalg.norm(rejected[5] - body[5]) < 0.5 * np.linalg.norm(triangulate_views(
        cameras, shifted, conf)[5] - body[5])

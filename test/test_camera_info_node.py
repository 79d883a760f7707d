"""`cvpose-camera-info` over DDS, and the whole way from a calibration file to skeletons: cvpose-calib writes the
node's files, two camera_info publishers read theirs, the refiner triangulates a person where the rig sees it."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter
from refiner_harness import Harness
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo

from cvpose_ros.calibration import CalibrationError
from cvpose_ros.calibration.cli import main as calib_main
from cvpose_ros.devtools import synthetic
from cvpose_ros.ros.camera_info_node import CAMERA_INFO_QOS, CameraInfoNode


def write_rig_toml(rig: synthetic.Rig, path) -> None:
    """The rig as a Pose2Sim TOML file (what a user's multi-camera calibration tool hands over)."""
    lines = []
    for cam in rig.cameras:
        m = cam.model
        lines += [f"[{cam.name}]", f'name = "{cam.name}"', f"size = [{m.width}, {m.height}]",
                  f"matrix = {m.K.tolist()}", f"distortions = {m.dist[:4].tolist()}",
                  f"rotation = {Rotation.from_matrix(cam.cam_from_world.R).as_rotvec().tolist()}",
                  f"translation = {cam.cam_from_world.t.tolist()}", "fisheye = false", ""]
    path.write_text("\n".join(lines))


@pytest.fixture
def calibration(tmp_path):
    rig = synthetic.make_rig("wide")
    write_rig_toml(rig, tmp_path / "Calib.toml")
    assert calib_main([str(tmp_path / "Calib.toml"), "--out", str(tmp_path / "calib"), "--frame-ids",
                       "cam0_optical_frame,cam1_optical_frame"]) == 0
    return rig, tmp_path / "calib"


def test_publisher_sends_the_file(calibration):
    rig, folder = calibration
    name = rig.cameras[1].name
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = CameraInfoNode(context=context, namespace="info_test", parameter_overrides=[
            Parameter("camera_info_file", value=str(folder / f"{name}.yaml")), Parameter("rate", value=20.0)])
        listener = rclpy.create_node("listener", context=context, namespace="info_test")
        got: list[CameraInfo] = []
        listener.create_subscription(CameraInfo, "camera_info", got.append, CAMERA_INFO_QOS)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(listener)
        for _ in range(500):
            executor.spin_once(timeout_sec=0.02)
            if len(got) >= 2:
                break
        assert len(got) >= 2, "no camera_info received"
        msg = got[-1]
        np.testing.assert_allclose(np.reshape(msg.k, (3, 3)), rig.cameras[1].model.K, atol=1e-9)
        assert (msg.width, msg.height) == (rig.cameras[1].model.width, rig.cameras[1].model.height)
        assert msg.header.frame_id == f"{name}_optical_frame" and msg.header.stamp.sec > 0
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
        with pytest.raises(CalibrationError, match="no such file"):
            missing = Parameter("camera_info_file", value="/nonexistent.yaml")
            CameraInfoNode(context=context, parameter_overrides=[missing])
        with pytest.raises(ValueError, match="camera_info_file is required"):
            CameraInfoNode(context=context)
    finally:
        rclpy.shutdown(context=context)


def test_from_a_calibration_file_to_skeletons(calibration):
    rig, folder = calibration
    params = yaml.safe_load((folder / "refiner_extrinsics.yaml").read_text())["/**"]["ros__parameters"]
    flat = [Parameter(f"cam{c}.{k}", value=params[f"cam{c}"][k]) for c in (0, 1) for k in ("translation", "rotation")]
    h = Harness(flat + [Parameter("refine", value=False), Parameter("diagnostics_period", value=0.2)],
                namespace="calib_e2e")
    publishers = [CameraInfoNode(context=h.context, namespace=f"calib_e2e/cam{c}", parameter_overrides=[
        Parameter("camera_info_file", value=str(folder / f"{rig.cameras[c].name}.yaml")),
        Parameter("frame_id", value=f"cam{c}_optical_frame"), Parameter("rate", value=20.0)]) for c in (0, 1)]
    try:
        for node in publishers:
            h.executor.add_node(node)
        h.spin_for(0.5)
        scene = synthetic.generate_scene(1, 1.0, 10.0, seed=3)
        views = synthetic.project_scene(scene, rig, noise="clean")
        for t in range(3):
            kp = tuple(v.keypoints[t] for v in views)
            conf = tuple(v.confidence[t] for v in views)
            msg = h.frame(h.now_ns() + t, kp, conf)
            joints = np.array([[p.x, p.y, p.z] for p in msg.skeletons[0].joints]) if msg.skeletons else None
            assert joints is not None, "no skeleton"
            expected = rig.cameras[0].cam_from_world.apply(scene.joints[t, 0])  # reference: camera 0's frame
            np.testing.assert_allclose(joints, expected, atol=2e-3)
    finally:
        for node in publishers:
            h.executor.remove_node(node)
            node.destroy_node()
        h.close()


def test_parameters_match_config_and_docs():
    from pathlib import Path

    from cvpose_ros.ros.camera_info_node import PARAMETERS

    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "config" / "camera_info.yaml").read_text())
    params = config["/**/camera_info_publisher"]["ros__parameters"]
    assert params == {name: spec.default for name, spec in PARAMETERS.items()}
    for doc in ("README.md", "docs/calibration.md"):
        text = (repo / doc).read_text()
        assert all(f"| `{name}` |" in text for name in params), doc
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        from cvpose_ros.param_spec import ParameterError

        with pytest.raises(ParameterError, match=r"rate must be in \[0.1, 1000.0\]"):
            CameraInfoNode(context=context, parameter_overrides=[Parameter("rate", value=0.0),
                                                                 Parameter("camera_info_file", value="x.yaml")])
    finally:
        rclpy.shutdown(context=context)

"""Two people end to end over real DDS: images -> two detector_nodes -> refiner_node -> two skeletons.

The graph of launch/pipeline.launch.py in one private context. Each camera's detector runs a real ONNX model built
by the test: a YOLO-pose export whose output is fixed to the two people of a synthetic scene as that camera sees
them (so the detector's letterboxing, decoding, NMS, layout and tracking all run for real on real images), and the
refiner must pair the two cameras' people by geometry (their track ids are per-camera and never equal) and
triangulate both.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("cvpose_ros_msgs.msg")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from refiner_harness import camera_info_msg, rig_parameters  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from cvpose_ros.detection.synthetic_models import yolo_pose_constant_model  # noqa: E402
from cvpose_ros.devtools import synthetic  # noqa: E402
from cvpose_ros.ros.conversions import ns_to_stamp, stamp_to_ns  # noqa: E402
from cvpose_ros.ros.detector_node import DetectorNode  # noqa: E402
from cvpose_ros.ros.refiner_node import RefinerNode  # noqa: E402

RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
LETTERBOX_SCALE, LETTERBOX_PAD_Y = 0.5, 140.0  # 1280 x 720 image into the model's 640 x 640 input


def yolo_rows(pixels: np.ndarray, scores: tuple[float, ...]) -> np.ndarray:
    """(56, anchors) YOLO-pose output placing people (P, 17, 2) image pixels, in the model's input pixels."""
    rows = np.zeros((56, 16), np.float32)
    for anchor, (person, score) in enumerate(zip(pixels, scores, strict=True)):
        joints = person * LETTERBOX_SCALE + [0.0, LETTERBOX_PAD_Y]
        low, high = joints.min(axis=0), joints.max(axis=0)
        rows[0:5, anchor] = (*(low + high) / 2, *(high - low), score)
        rows[5:, anchor] = np.concatenate([joints, np.full((17, 1), 0.95)], axis=1).ravel()
    return rows


@pytest.fixture()
def graph(tmp_path):
    scene = synthetic.generate_scene(num_people=2, duration_s=1.0, fps=10.0, seed=0).in_layout("coco17")
    rig = synthetic.make_rig("demo")
    views = synthetic.project_scene(scene, rig, noise=None)
    assert all(v.visible[0].all() and np.isfinite(v.keypoints[0]).all() for v in views), "both people in view"
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []
    for cam, view in enumerate(views):
        order = [1, 0] if cam else [0, 1]  # the cameras list the people in different orders
        model = yolo_pose_constant_model(tmp_path / f"cam{cam}.onnx", yolo_rows(view.keypoints[0][order], (0.9, 0.8)))
        nodes.append(DetectorNode(context=context, namespace=f"cam{cam}", parameter_overrides=[
            Parameter("backend", value="onnx"), Parameter("model_path", value=str(model)),
            Parameter("frame_id", value=rig.cameras[cam].frame_id)]))
    nodes.append(RefinerNode(context=context, parameter_overrides=rig_parameters(rig, max_stamp_age=0.0)))
    tester = rclpy.create_node("pipeline_tester", context=context)
    nodes.append(tester)
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    received = {"skeletons": [], "cam0": [], "cam1": []}
    tester.create_subscription(Skeleton3DArray, "/skeletons", received["skeletons"].append, RELIABLE)
    for cam in ("cam0", "cam1"):
        tester.create_subscription(Keypoints2D, f"/{cam}/keypoints", received[cam].append, RELIABLE)
    images = [tester.create_publisher(Image, f"/cam{c}/image", qos_profile_sensor_data) for c in (0, 1)]
    infos = [tester.create_publisher(CameraInfo, f"/cam{c}/camera_info", qos_profile_sensor_data) for c in (0, 1)]
    yield {"scene": scene, "rig": rig, "executor": executor, "received": received, "images": images,
           "infos": infos, "tester": tester}
    executor.shutdown()
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


def test_two_people_from_images_to_skeletons(graph):
    rig, executor, received = graph["rig"], graph["executor"], graph["received"]
    black = np.zeros((720, 1280, 3), np.uint8)
    answers = []
    for frame in range(3):
        stamp_ns = graph["tester"].get_clock().now().nanoseconds
        image = Image(height=720, width=1280, encoding="rgb8", step=1280 * 3, data=black.tobytes())
        image.header.stamp = ns_to_stamp(stamp_ns)
        deadline = time.monotonic() + 30.0
        answer = None
        while answer is None:
            assert time.monotonic() < deadline, f"no skeletons for frame {frame}"
            for cam in (0, 1):  # best effort: publish again until the pair comes through
                graph["infos"][cam].publish(camera_info_msg(rig, cam, stamp_ns))
                image.header.frame_id = rig.cameras[cam].frame_id
                graph["images"][cam].publish(image)
            until = time.monotonic() + 0.3
            while time.monotonic() < until and answer is None:
                executor.spin_once(timeout_sec=0.02)
                answer = next((m for m in received["skeletons"] if stamp_to_ns(m.header.stamp) == stamp_ns), None)
        answers.append(answer)

    # the detectors: two people each, per-camera ids that never coincide across the cameras
    ids = {cam: {p.track_id for p in received[cam][-1].people} for cam in ("cam0", "cam1")}
    assert len(ids["cam0"]) == len(ids["cam1"]) == 2 and not ids["cam0"] & ids["cam1"]
    # the refiner: both people, where the scene has them (camera 0's optical frame), with steady ids
    truth = rig.cameras[0].world_to_camera(graph["scene"].joints[0])  # (2, 17, 3)
    for answer in answers:
        assert len(answer.skeletons) == 2
        for skeleton in answer.skeletons:
            joints = np.array([[p.x, p.y, p.z] for p in skeleton.joints])
            root = np.nanmean(joints[11:13], axis=0)  # coco17 hips
            errors = np.linalg.norm(truth[:, 11:13].mean(axis=1) - root, axis=1)
            assert errors.min() < 0.05, f"skeleton {skeleton.track_id} hips {errors.min():.3f} m from the truth"
    assert [sorted(s.track_id for s in a.skeletons) for a in answers] == [
        sorted(s.track_id for s in answers[0].skeletons)] * 3

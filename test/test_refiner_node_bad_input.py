"""Bad input never stops the refiner node: each kind is skipped (or the person dropped), counted in /diagnostics,
and the node still answers a good frame afterwards. Invalid start-up configuration fails with one clear line.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from refiner_harness import Harness, camera_info_msg, rig_parameters  # noqa: E402

from cvpose_ros.body.skeleton import COCO17  # noqa: E402
from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene  # noqa: E402
from cvpose_ros.ros.conversions import keypoints_to_msg, skeletons_from_msg, stamp_to_ns  # noqa: E402
from cvpose_ros.ros.params import ParameterError  # noqa: E402
from cvpose_ros.ros.refiner_node import RefinerNode, StartupError  # noqa: E402

RIG = make_rig("demo")
SCENE = generate_scene(2, 1.0, 30.0, seed=5)  # both people fully in both views
VIEWS = project_scene(SCENE, RIG, noise=None)
STEP = 33_333_333


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def harness(request):
    """The node with the packaged weights on each runtime: bad input must be handled the same way by both."""
    h = Harness(rig_parameters(RIG, max_stamp_age=2.0, runtime=request.param), namespace=request.param)
    assert all(r.backend.runtime == request.param for r in h.node.pipeline.refiner.refiners.values())
    yield h
    h.close()




def good_arrays(t: int = 0):
    kp = tuple(v.keypoints[t].copy() for v in VIEWS)
    conf = tuple(np.where(np.isfinite(k).all(-1), 0.9, 0.0) for k in kp)
    return kp, conf


def assert_still_answers(h: Harness, people: int = 2) -> None:
    """A good frame after the bad input still gives skeletons for everyone."""
    kp, conf = good_arrays(5)
    msg = h.frame(h.next_stamp(), kp, conf)
    ids, joints, _, _ = skeletons_from_msg(msg)
    assert len(ids) == people and np.isfinite(joints).any()


def counter(h: Harness, name: str) -> int:
    return int(h.latest_diagnostics(after=0.0)[f"problem_{name}"])


def send_and_settle(h: Harness, kp, conf, layout: str = "h36m17", stamp: int | None = None) -> int:
    stamp = h.next_stamp() if stamp is None else stamp
    h.send_keypoints(tuple(keypoints_to_msg(stamp, f"cam{c}_optical_frame", kp[c], conf[c], layout=layout)
                           for c in (0, 1)))
    h.spin_for(0.1)
    return stamp


def test_missing_camera_info_then_recovers(harness):
    kp, conf = good_arrays()
    stamp = send_and_settle(harness, kp, conf)
    assert harness.skeletons_at(stamp) is None
    values = harness.latest_diagnostics(after=0.0)
    assert int(values["problem_no_camera_info"]) >= 1
    assert harness.received["/diagnostics"][-1].status[0].level == DiagnosticStatus.ERROR  # until calibrated
    harness.send_camera_info(RIG)
    assert_still_answers(harness)


def test_zero_calibration_is_rejected_then_recovers(harness):
    bad = camera_info_msg(RIG, 1)
    bad.k = [0.0] * 9
    harness.send_camera_info(RIG, (camera_info_msg(RIG, 0), bad))
    kp, conf = good_arrays()
    stamp = send_and_settle(harness, kp, conf)
    assert harness.skeletons_at(stamp) is None
    assert counter(harness, "invalid_calibration") >= 2  # the camera_info itself and the skipped frame
    harness.send_camera_info(RIG)
    assert_still_answers(harness)


def test_nan_keypoints_become_missing_joints(harness):
    harness.send_camera_info(RIG)
    kp, conf = good_arrays()
    kp[0][0, 3] = np.nan  # NaN with confidence 0.9: a detector bug
    kp[1][1, :, :] = np.inf
    msg = harness.frame(harness.next_stamp(), kp, conf)
    ids, joints, conf_out, _ = skeletons_from_msg(msg)
    assert len(ids) == 1  # person 1 is all inf in camera 1: dropped, person 0 kept
    assert np.isnan(joints[0, 3]).all() and conf_out[0, 3] == 0
    assert counter(harness, "nan_keypoints") >= 1 and counter(harness, "too_few_joints") >= 1
    assert_still_answers(harness)


def test_missing_keypoints_drop_the_person(harness):
    kp, conf = good_arrays()
    conf[0][1, :] = 0.0  # person 1 has no keypoint in camera 0
    msg = harness.frame(harness.next_stamp(), kp, conf)
    assert len(msg.skeletons) == 1
    assert counter(harness, "too_few_joints") >= 1
    assert_still_answers(harness)


@pytest.mark.parametrize("field,length", [("x", 16), ("y", 18), ("confidence", 0)])
def test_wrong_array_sizes_drop_only_that_person(harness, field, length):
    before = counter(harness, "bad_array_sizes")
    kp, conf = good_arrays()
    stamp = harness.next_stamp()
    msgs = tuple(keypoints_to_msg(stamp, f"cam{c}_optical_frame", kp[c], conf[c]) for c in (0, 1))
    person = msgs[1].people[0]
    setattr(person, field, list(getattr(person, field))[:length] + [1.0] * max(0, length - 17))
    harness.send_keypoints(msgs)
    harness.spin_until(lambda: harness.skeletons_at(stamp) is not None, 3.0, "skeletons")
    assert len(harness.skeletons_at(stamp).skeletons) == 1  # the other person is still estimated
    assert counter(harness, "bad_array_sizes") == before + 1
    assert_still_answers(harness)


def test_unknown_layout_skips_the_frame(harness):
    kp, conf = good_arrays()
    stamp = send_and_settle(harness, kp, conf, layout="body25")
    assert harness.skeletons_at(stamp) is None
    assert counter(harness, "unknown_layout") >= 1
    assert_still_answers(harness)


def test_coco17_layout_stays_coco17(harness):
    coco_from_h36m = [9, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]  # nose, eyes, ears <- neck, head
    kp, conf = good_arrays()
    msg = harness.frame(harness.next_stamp(), tuple(k[:, coco_from_h36m] for k in kp),
                        tuple(c[:, coco_from_h36m] for c in conf), layout="coco17")
    assert msg.layout == "coco17" and list(msg.joint_names) == list(COCO17.joint_names)
    ids, joints, _, _ = skeletons_from_msg(msg)
    truth = RIG.cameras[0].world_to_camera(SCENE.joints[0])
    wrists = joints[:, 9]  # coco's l_wrist is h36m's l_wrist (13)
    seen = np.isfinite(wrists).all(-1)
    assert len(ids) == 2 and seen.any()
    errors = np.linalg.norm(wrists[seen][:, None] - truth[None, :, 13], axis=-1).min(axis=1)
    assert (errors < 0.01).all()


def test_stale_and_out_of_order_stamps_are_skipped(harness):
    kp, conf = good_arrays()
    stale = send_and_settle(harness, kp, conf, stamp=harness.now_ns() - 10 * 10**9)
    assert harness.skeletons_at(stale) is None
    assert counter(harness, "stale_stamp") >= 2
    latest = harness.last_stamp
    older = send_and_settle(harness, kp, conf, stamp=latest - STEP // 2)
    assert harness.skeletons_at(older) is None
    assert counter(harness, "out_of_order") >= 2
    assert_still_answers(harness)


def test_no_nan_reaches_markers_or_tf(harness):
    for ma in harness.received["skeleton_markers"]:
        for m in ma.markers:
            assert np.isfinite([(p.x, p.y, p.z) for p in m.points]).all()
    for tfm in harness.received["/tf"]:
        for t in tfm.transforms:
            tr, rot = t.transform.translation, t.transform.rotation
            assert np.isfinite([tr.x, tr.y, tr.z, rot.x, rot.y, rot.z, rot.w]).all()
    values = harness.latest_diagnostics(after=0.0)
    assert int(values["frames_published"]) >= 8
    assert int(values["problem_processing_error"]) == 0, "a bad input escaped validation"


def test_every_output_stamp_is_an_input_stamp(harness):
    skeleton_stamps = {stamp_to_ns(m.header.stamp) for m in harness.received["skeletons"]}
    tf_stamps = {stamp_to_ns(t.header.stamp) for tfm in harness.received["/tf"] for t in tfm.transforms}
    assert skeleton_stamps and tf_stamps <= skeleton_stamps


# ---------------------------------------------------------------------------------------------------------------
# Start-up configuration
@pytest.mark.parametrize("overrides,fragment", [
    ({"sync_slop": -1.0}, "sync_slop"),
    ({"layout": "body25"}, "layout"),
    ({"extrinsics_source": "magic"}, "extrinsics_source"),
    ({"cam1.translation": [0.0, 0.0, 0.0]}, "apart"),
    ({"cam1.rotation": [0.0, 0.0, 0.0, 0.0]}, "cam1.rotation"),
    ({"queue_size": "ten"}, "queue_size"),
    ({"tf_root_format": "body"}, "format"),
    ({"extrinsics_source": "tf"}, "tf2_ros"),
    ({"runtime": "tensorflow"}, "runtime must be"),
    ({"executor": "multi_threaded"}, "executor must be one of events, single_threaded"),
    ({"device": "tensorrt", "runtime": "torch"}, "needs runtime onnxruntime"),
    ({"device": "tpu"}, "device must be"),
    ({"max_people": 0}, "max_people"),
    ({"max_people": 5000}, "max_people"),
    ({"association_gate": 25.0}, "association_gate"),
    ({"reference_frame": "map/../world"}, "reference_frame: frame id"),
    ({"cam0.frame_id": "body_0"}, "own person frames"),
    ({"cam0.frame_id": "left", "cam1.frame_id": "left"}, "each camera needs its own frame"),
    ({"max_stamp_future": 0.0}, "max_stamp_future"),
    ({"max_range": -1.0}, "max_range"),
    ({"camera_timeout": 0.0}, "camera_timeout"),
])
def test_invalid_configuration_is_a_clear_startup_error(overrides, fragment):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        params = {p.name: p for p in rig_parameters(RIG, refine=False)}
        params.update({k: Parameter(k, value=v) for k, v in overrides.items()})
        with pytest.raises((ParameterError, StartupError), match=fragment):
            RefinerNode(context=context, parameter_overrides=list(params.values()))
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize("overrides,fragment", [
    ({"runtime": "torch", "checkpoint": "weights.onnx"}, "runtime 'torch' cannot run"),
    ({"runtime": "onnxruntime", "device": "cuda"}, "CUDAExecutionProvider"),
    ({"runtime": "onnxruntime", "device": "tensorrt:1"}, "TensorrtExecutionProvider"),
])
def test_unusable_runtime_choice_is_a_clear_startup_error(overrides, fragment):
    """No GPU provider here: asking ONNX Runtime for CUDA/TensorRT stops start-up with one line, never a silent CPU
    fallback (`auto` is the setting that falls back)."""
    import onnxruntime

    if any(p in onnxruntime.get_available_providers() for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        pytest.skip("this onnxruntime build has GPU providers")
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        params = {p.name: p for p in rig_parameters(RIG)}
        params.update({k: Parameter(k, value=v) for k, v in overrides.items()})
        with pytest.raises(StartupError, match=fragment):
            RefinerNode(context=context, parameter_overrides=list(params.values()))
    finally:
        rclpy.shutdown(context=context)


def test_corrupt_onnx_checkpoint_exits_non_zero_with_one_line(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not an onnx model")
    cam0_from_cam1 = RIG.cam1_from_cam0.inverse()
    args = [sys.executable, "-m", "cvpose_ros.ros.refiner_node", "--ros-args", "-p", f"checkpoint:={bad}",
            "-p", f"cam1.translation:={cam0_from_cam1.t.tolist()}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr and "corrupt.onnx" in proc.stderr and "ONNX" in proc.stderr


def test_corrupt_checkpoint_exits_non_zero_with_one_line(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a checkpoint")
    cam0_from_cam1 = RIG.cam1_from_cam0.inverse()
    args = [sys.executable, "-m", "cvpose_ros.ros.refiner_node", "--ros-args", "-p", f"checkpoint:={bad}",
            "-p", f"cam1.translation:={cam0_from_cam1.t.tolist()}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr and "corrupt.pt" in proc.stderr

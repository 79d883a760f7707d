"""Integration: the refiner node in-process with rclpy, fed by a synthetic two-camera rig over real DDS.

Checks the skeletons (coarse and refined) against the synthetic truth, the stability of ids, the markers, the TF
frames (names, parents, values) and that every output carries the input pair's stamp.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from refiner_harness import Harness, rig_parameters  # noqa: E402

from cvpose_ros.body.skeleton import H36M17  # noqa: E402
from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene  # noqa: E402
from cvpose_ros.ros.conversions import skeletons_from_msg, stamp_to_ns  # noqa: E402
from cvpose_ros.ros.diagnostics import diagnostics_values  # noqa: E402

NS_PER_FRAME = 33_333_333
RIG = make_rig("demo")
CAM0 = "cam0_optical_frame"


@pytest.fixture(scope="module")
def harness():
    # no stale-stamp check here (test_refiner_node_bad_input tests it): on a loaded machine a second-long pause of
    # the test process would otherwise make a frame "stale" and the test time out waiting for it
    h = Harness(rig_parameters(RIG, max_stamp_age=0.0))
    yield h
    h.close()


def play(harness: Harness, num_people: int, frames: int, noise_px: float, seed: int, shuffle_cam1: bool = True):
    """Publish `frames` frames of a synthetic scene.

    Returns (truth in cam0 (T, P, J, 3), joints seen by both cameras (T, P, J), stamps, received messages).
    """
    scene = generate_scene(num_people, frames / 30.0 + 0.1, 30.0, seed=seed)
    views = project_scene(scene, RIG, noise=None)
    rng = np.random.default_rng(seed)
    truth = RIG.cameras[0].world_to_camera(scene.joints)
    harness.send_camera_info(RIG)
    base = max(harness.now_ns(), harness.last_stamp + NS_PER_FRAME)  # stamps keep increasing across tests
    stamps, msgs = [], []
    for t in range(frames):
        kp = [v.keypoints[t] + rng.normal(0, noise_px, v.keypoints[t].shape) for v in views]
        conf = [np.where(np.isfinite(k).all(-1), 0.9, 0.0) for k in kp]
        if shuffle_cam1:  # people come in a different order from camera 1: association must sort it out
            order = rng.permutation(num_people)
            kp[1], conf[1] = kp[1][order], conf[1][order]
        stamp = base + t * NS_PER_FRAME
        msgs.append(harness.frame(stamp, tuple(kp), tuple(conf)))
        stamps.append(stamp)
        harness.last_stamp = stamp
    seen = np.isfinite(views[0].keypoints).all(-1) & np.isfinite(views[1].keypoints).all(-1)
    return truth[:frames], seen[:frames], stamps, msgs


def nearest_truth(joints: np.ndarray, truth: np.ndarray) -> tuple[int, float]:
    """Index of the truth person closest to `joints` and the mean joint error (m) over valid joints."""
    err = np.nanmean(np.linalg.norm(truth - joints[None], axis=-1), axis=-1)
    best = int(np.nanargmin(err))
    return best, float(err[best])


def test_one_moving_person(harness):
    truth, seen, stamps, msgs = play(harness, 1, 30, noise_px=0.5, seed=3)
    ids = set()
    for t, (stamp, msg) in enumerate(zip(stamps, msgs, strict=True)):
        assert stamp_to_ns(msg.header.stamp) == stamp and msg.header.frame_id == CAM0
        assert list(msg.joint_names) == list(H36M17.joint_names) and msg.layout == "h36m17"
        tid, joints, conf, err = skeletons_from_msg(msg)
        assert joints.shape == (1, 17, 3)
        coarse = harness.skeletons_at(stamp, "skeletons_coarse")
        assert coarse is not None and coarse.header.frame_id == CAM0
        _, cjoints, _, _ = skeletons_from_msg(coarse)
        visible = np.isfinite(cjoints[0]).all(-1)
        np.testing.assert_array_equal(visible, seen[t][0])  # every joint both cameras see, and only those
        # Triangulation of 0.5 px noise from 5.4 m apart cameras: a few millimetres to centimetres.
        assert np.linalg.norm(cjoints[0][visible] - truth[t][0][visible], axis=-1).mean() < 0.03
        if harness.node.pipeline.refinement_enabled:
            assert np.nanmean(np.linalg.norm(joints[0] - truth[t][0], axis=-1)) < 0.08
        else:  # pass-through until weights exist: refined == coarse
            np.testing.assert_array_equal(joints, cjoints)
        assert (conf[0][~visible] == 0).all() and (conf[0][visible] > 0).all()
        assert np.isfinite(err).all() and err[0] < 3.0
        ids.update(tid.tolist())
    assert len(ids) == 1, f"id changed while one person stayed in view: {ids}"


def test_three_people_ids_stable_and_correct(harness):
    truth, _, stamps, msgs = play(harness, 3, 20, noise_px=0.5, seed=11)
    id_to_truth: dict[int, int] = {}
    for t, msg in enumerate(msgs):
        tid, joints, _, _ = skeletons_from_msg(msg)
        assert len(tid) == 3 and len(set(tid.tolist())) == 3
        for k, person in enumerate(tid.tolist()):
            best, err = nearest_truth(joints[k], truth[t])
            assert err < 0.08, f"person {person} is {err:.3f} m from the nearest true skeleton"
            assert id_to_truth.setdefault(person, best) == best, "an id jumped to another person"
    assert sorted(id_to_truth.values()) == [0, 1, 2]


def test_markers_tf_and_static_tf(harness):
    _, _, stamps, msgs = play(harness, 3, 5, noise_px=0.0, seed=5, shuffle_cam1=False)
    harness.spin_for(0.2)
    stamp, msg = stamps[-1], msgs[-1]
    tid, joints, _, _ = skeletons_from_msg(msg)
    markers = [m for ma in harness.received["skeleton_markers"] for m in ma.markers
               if m.action == m.ADD and stamp_to_ns(m.header.stamp) == stamp]
    assert sorted({m.ns for m in markers}) == sorted(f"person_{i}" for i in tid)
    for m in markers:
        pts = np.array([(p.x, p.y, p.z) for p in m.points])
        assert np.isfinite(pts).all() and m.header.frame_id == CAM0 and m.id in (0, 1)
        assert m.lifetime.sec + m.lifetime.nanosec > 0
        person = joints[list(tid).index(int(m.ns.split("_")[1]))]
        if m.type == m.SPHERE_LIST:
            np.testing.assert_allclose(pts, person[np.isfinite(person).all(-1)], atol=1e-6)
        else:
            assert m.type == m.LINE_LIST and len(pts) % 2 == 0

    transforms = {t.child_frame_id: t for tfm in harness.received["/tf"] for t in tfm.transforms
                  if stamp_to_ns(t.header.stamp) == stamp}
    for k, person in enumerate(tid.tolist()):
        root = transforms[f"body_{person}"]
        assert root.header.frame_id == CAM0
        pelvis = joints[k][0]
        tr = root.transform.translation
        np.testing.assert_allclose([tr.x, tr.y, tr.z], pelvis, atol=1e-9)
        for j, name in enumerate(H36M17.joint_names):
            if not np.isfinite(joints[k][j]).all():
                assert f"{name}_{person}" not in transforms
                continue
            link = transforms[f"{name}_{person}"]
            assert link.header.frame_id == f"body_{person}"
            lt = link.transform.translation
            np.testing.assert_allclose([lt.x, lt.y, lt.z], joints[k][j] - pelvis, atol=1e-9)
            assert link.transform.rotation.w == 1.0
    for t in (t for tfm in harness.received["/tf"] for t in tfm.transforms):
        vals = [t.transform.translation.x, t.transform.translation.y, t.transform.translation.z]
        assert np.isfinite(vals).all()

    # camera frames go out after CAMERA_TF_DELAY_S of listening, on the diagnostics period: wait for them
    harness.spin_until(lambda: harness.received["/tf_static"], 5.0, "/tf_static")
    static = [t for tfm in harness.received["/tf_static"] for t in tfm.transforms]
    cam1 = next(t for t in static if t.child_frame_id == "cam1_optical_frame")
    assert cam1.header.frame_id == CAM0
    expected = RIG.cam1_from_cam0.inverse()
    tr = cam1.transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], expected.t, atol=1e-9)
    assert all(t.child_frame_id != CAM0 for t in static)


def test_diagnostics_report_frames_and_people(harness):
    play(harness, 3, 3, noise_px=0.0, seed=8)
    values = harness.latest_diagnostics()
    assert int(values["frames_published"]) >= 3 and values["people"] == "3"
    assert float(values["processing_ms_mean"]) > 0
    assert "refinement" in values and "sync_drops" in values
    assert diagnostics_values(harness.received["/diagnostics"][-1]) == values


def test_the_node_on_the_events_executor():
    """What `refiner_node` spins on by default (`executor: events`): frames in, skeletons, markers, TF, the
    camera frames on /tf_static (timer) and /diagnostics out, and a live parameter set through its service."""
    from rcl_interfaces.srv import SetParameters

    h = Harness(rig_parameters(RIG, max_stamp_age=0.0), namespace="events", executor="events")
    try:
        assert type(h.executor).__name__ == "EventsExecutor"
        _, _, stamps, msgs = play(h, 2, 5, noise_px=0.0, seed=3)
        assert all(len(skeletons_from_msg(m)[0]) == 2 for m in msgs)
        # /tf, /tf_static and /diagnostics are global topics: look for this node's own messages
        h.spin_until(lambda: any(stamp_to_ns(t.header.stamp) == stamps[-1] for tfm in h.received["/tf"]
                                 for t in tfm.transforms), 5.0, "/tf of the last frame")
        h.spin_until(lambda: any(s.name.startswith("events/") for d in h.received["/diagnostics"] for s in d.status),
                     5.0, "this node's /diagnostics (timer)")
        h.spin_until(lambda: h.received["/tf_static"], 5.0, "/tf_static")
        assert h.received["skeleton_markers"]
        client = h.rig.create_client(SetParameters, h.node.get_fully_qualified_name() + "/set_parameters")
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(SetParameters.Request(parameters=[
            Parameter("association_gate", value=0.2).to_parameter_msg()]))
        h.spin_until(future.done, 5.0, "set_parameters")
        assert future.result().results[0].successful and h.node.params.association_gate == 0.2
    finally:
        h.close()


def test_refinement_on_with_a_real_checkpoint(tmp_path):
    """With weights the node refines every person in one batch; a zero-residual network keeps the truth."""
    from rclpy.parameter import Parameter
    from tiny_checkpoint import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "zero.pt", zero_residual=True)
    h = Harness(rig_parameters(RIG) + [Parameter("checkpoint", value=str(ckpt)), Parameter("device", value="cpu"),
                                       Parameter("tf_prefix", value="h/"), Parameter("publish_markers", value=False)],
                namespace="refined")
    try:
        assert h.node.pipeline.refinement_enabled
        truth, seen, stamps, msgs = play(h, 3, 4, noise_px=0.3, seed=11)
        for t, msg in enumerate(msgs):
            _, refined, _, _ = skeletons_from_msg(msg)
            _, coarse, _, _ = skeletons_from_msg(h.skeletons_at(stamps[t], "skeletons_coarse"))
            np.testing.assert_allclose(refined, coarse, atol=0.01)  # fused views: within a centimetre
            for person in refined:
                assert nearest_truth(person, truth[t])[1] < 0.03
        assert h.latest_diagnostics()["refinement"].startswith("on")
        assert any(t.child_frame_id.startswith("h/body_") for tfm in h.received["/tf"] for t in tfm.transforms)
        assert not h.received["skeleton_markers"]
    finally:
        h.close()


def test_rectified_stereo_extrinsics_from_camera_info():
    """extrinsics_source=camera_info: baseline from the right camera's P, keypoints on rectified images."""
    from rclpy.parameter import Parameter
    from refiner_harness import camera_info_msg

    from cvpose_ros.geometry.camera import CameraModel

    baseline, fx = 0.30, 700.0
    K = np.array([[fx, 0.0, 640.0], [0.0, fx, 360.0], [0.0, 0.0, 1.0]])
    pinhole = CameraModel(K=K, dist=np.zeros(0), distortion_model="none", width=1280, height=720)
    infos = (camera_info_msg(RIG, 0), camera_info_msg(RIG, 1))
    for cam, info in enumerate(infos):  # raw K/D say something else: the rectified P must be what counts
        info.p = np.hstack([K, [[-fx * baseline * cam], [0.0], [0.0]]]).ravel().tolist()
    scene = generate_scene(1, 0.5, 30.0, seed=2)
    centre = scene.joints[0, 0].mean(axis=0)
    # Put the person 3 m in front of the left camera (optical frame: z forward, y down).
    truth = (scene.joints[:, 0] - centre) @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]).T + [0.0, 0.0, 3.0]
    h = Harness([Parameter("extrinsics_source", value="camera_info"), Parameter("refine", value=False),
                 Parameter("cam0.frame_id", value="left_optical"), Parameter("cam1.frame_id", value="right_optical"),
                 Parameter("diagnostics_period", value=0.2)], namespace="rectified")
    try:
        h.send_camera_info(RIG, infos)
        base = h.now_ns()
        for t in range(0, 15, 5):
            kp = (pinhole.project(truth[t])[None], pinhole.project(truth[t] - [baseline, 0.0, 0.0])[None])
            msg = h.frame(base + t * NS_PER_FRAME, kp, (np.ones((1, 17)), np.ones((1, 17))))
            _, joints, _, _ = skeletons_from_msg(msg)
            np.testing.assert_allclose(joints[0], truth[t], atol=1e-4)  # float32 pixels in the message
            assert msg.header.frame_id == "left_optical"  # the frame_id parameters win over the headers
        assert h.node.pub_tf_static is None, "the node must not own camera TF when extrinsics come from camera_info"
    finally:
        h.close()


def test_node_picks_the_weights_of_each_frames_layout(tmp_path):
    """Over DDS: `checkpoint` is a coco17 file, so coco17 frames are refined by it (a wild tiny net: outputs move
    off the triangulation) while h36m17 frames in the same node use the packaged h36m17 weights (exact input stays
    exact); outputs keep each frame's joint definition, and /diagnostics tells which layouts have weights."""
    from tiny_checkpoint import make_tiny_checkpoint

    from cvpose_ros.body.skeleton import COCO17

    coco_weights = make_tiny_checkpoint(tmp_path / "coco.pt", False, layout="coco17", residual_std=0.5)
    # bone_check off: the wild net's skeletons are not human-shaped and would be dropped as implausible
    h = Harness(rig_parameters(RIG, checkpoint=str(coco_weights), guard=False, bone_check=False), namespace="layouts")
    try:
        scene = generate_scene(1, 0.3, 30.0, seed=11)
        h36m_views = project_scene(scene, RIG, noise=None)
        coco_views = project_scene(scene.in_layout("coco17"), RIG, noise=None)
        h.send_camera_info(RIG)
        stamp = max(h.now_ns(), h.last_stamp + NS_PER_FRAME)
        conf = (np.full((1, 17), 0.9), np.full((1, 17), 0.9))
        coco_msg = h.frame(stamp, tuple(v.keypoints[0] for v in coco_views), conf, layout="coco17")
        h36m_msg = h.frame(stamp + NS_PER_FRAME, tuple(v.keypoints[1] for v in h36m_views), conf)
        assert coco_msg.layout == "coco17" and list(coco_msg.joint_names) == list(COCO17.joint_names)
        assert h36m_msg.layout == "h36m17" and list(h36m_msg.joint_names) == list(H36M17.joint_names)
        coco_coarse = skeletons_from_msg(h.skeletons_at(stamp, "skeletons_coarse"))[1]
        coco_refined = skeletons_from_msg(coco_msg)[1]
        assert np.linalg.norm(coco_refined - coco_coarse, axis=-1).mean() > 0.05  # the coco17 file refined it
        truth = RIG.cameras[0].world_to_camera(scene.joints[1, 0])
        h36m_refined = skeletons_from_msg(h36m_msg)[1][0]
        assert np.linalg.norm(h36m_refined - truth, axis=-1).max() < 0.003  # packaged h36m17 weights: exact
        diag = h.latest_diagnostics()
        assert diag["refinement_coco17"] == "on" and diag["refinement_h36m17"] == "on"
        assert "coco.pt" in diag["refinement"] and "cvugcn_h36m17.pt" in diag["refinement"]
    finally:
        h.close()


def test_a_layout_without_weights_is_triangulated_and_reported(tmp_path, monkeypatch):
    """Over DDS, packaged coco17 weights missing: coco17 frames come out as the triangulation, and /diagnostics
    names the layout that is not refined."""
    import cvpose_ros.refine.refiner as refiner_module

    monkeypatch.setitem(refiner_module.DEFAULT_CHECKPOINTS, "coco17", tmp_path / "absent.pt")
    h = Harness(rig_parameters(RIG), namespace="no_coco_weights")
    try:
        scene = generate_scene(1, 0.3, 30.0, seed=12).in_layout("coco17")
        views = project_scene(scene, RIG, noise=None)
        h.send_camera_info(RIG)
        stamp = max(h.now_ns(), h.last_stamp + NS_PER_FRAME)
        kp = tuple(v.keypoints[0] + np.random.default_rng(c).normal(0, 2.0, v.keypoints[0].shape)
                   for c, v in enumerate(views))
        msg = h.frame(stamp, kp, (np.full((1, 17), 0.9), np.full((1, 17), 0.9)), layout="coco17")
        refined = skeletons_from_msg(msg)[1]
        coarse = skeletons_from_msg(h.skeletons_at(stamp, "skeletons_coarse"))[1]
        np.testing.assert_array_equal(refined, coarse)
        diag = h.latest_diagnostics()
        assert diag["refinement_coco17"].startswith("off") and diag["refinement_h36m17"] == "on"
        assert int(diag["unrefined_frames_coco17"]) >= 1 and diag["layout"] == "coco17"
    finally:
        h.close()


def test_both_runtimes_publish_the_same_skeletons(tmp_path):
    """Over DDS: the node on torch (.pt) and on ONNX Runtime (the cvpose-export .onnx of the same weights) publishes
    the same refined skeletons within 1e-4 m for the same frames (a tiny net that moves joints visibly, no guard),
    and /diagnostics names the runtime."""
    pytest.importorskip("onnxruntime")
    from tiny_checkpoint import make_tiny_checkpoint

    from cvpose_ros.model.export_cli import main as export_main

    pt = make_tiny_checkpoint(tmp_path / "tiny.pt", zero_residual=False, residual_std=0.05)
    assert export_main([str(pt), "-o", str(tmp_path / "tiny.onnx")]) == 0
    scene = generate_scene(3, 0.5, 30.0, seed=4)
    views = project_scene(scene, RIG, noise="detector", seed=4)
    outputs = {}
    for runtime, weights in (("torch", pt), ("onnxruntime", tmp_path / "tiny.onnx")):
        h = Harness(rig_parameters(RIG, checkpoint=str(weights), device="cpu", guard=False, max_stamp_age=0.0),
                    namespace=f"runtime_{runtime}")
        try:
            assert h.node.pipeline.refiner.for_layout("h36m17").backend.runtime == runtime
            h.send_camera_info(RIG)
            frames = []
            for t in range(0, 12, 3):
                kp = tuple(v.keypoints[t] for v in views)
                conf = tuple(v.confidence[t] for v in views)
                stamp = 1_000_000_000 + t * NS_PER_FRAME
                refined = skeletons_from_msg(h.frame(stamp, kp, conf))
                coarse = skeletons_from_msg(h.skeletons_at(stamp, "skeletons_coarse"))
                frames.append((refined, coarse))
            outputs[runtime] = frames
            expected = "onnxruntime CPU" if runtime == "onnxruntime" else "on cpu"
            assert expected in h.latest_diagnostics()["refinement"]
        finally:
            h.close()
    moved = []
    for (ref_t, coarse_t), (ref_o, _) in zip(outputs["torch"], outputs["onnxruntime"], strict=True):
        np.testing.assert_array_equal(ref_t[0], ref_o[0])  # the same people with the same ids
        assert np.array_equal(np.isnan(ref_t[1]), np.isnan(ref_o[1]))
        np.testing.assert_allclose(ref_o[1], ref_t[1], atol=1e-4, equal_nan=True)
        moved.append(np.nanmean(np.linalg.norm(ref_t[1] - coarse_t[1], axis=-1)))
    assert np.mean(moved) > 1e-3  # refinement changed the poses, so agreement is not trivial


def test_int8_weights_run_in_the_node(tmp_path):
    """Over DDS: an `cvpose-export --int8` file as `checkpoint` starts the node on ONNX Runtime, /diagnostics says
    int8, and the skeletons stay close to the float export's (quantised, so not equal) for the same frames."""
    pytest.importorskip("onnxruntime")
    from tiny_checkpoint import make_tiny_checkpoint

    from cvpose_ros.model.export_cli import main as export_main

    pt = make_tiny_checkpoint(tmp_path / "tiny.pt", zero_residual=False, residual_std=0.05)
    assert export_main([str(pt), "-o", str(tmp_path / "float.onnx")]) == 0
    assert export_main([str(pt), "--int8", "--max-mpjpe-increase", "100", "-o", str(tmp_path / "int8.onnx")]) == 0
    scene = generate_scene(2, 0.3, 30.0, seed=5)
    views = project_scene(scene, RIG, noise="detector", seed=5)
    outputs = {}
    for name in ("float", "int8"):
        h = Harness(rig_parameters(RIG, checkpoint=str(tmp_path / f"{name}.onnx"), device="cpu", guard=False,
                                   max_stamp_age=0.0), namespace=f"weights_{name}")
        try:
            h.send_camera_info(RIG)
            outputs[name] = [skeletons_from_msg(h.frame(1_000_000_000 + t * NS_PER_FRAME,
                                                        tuple(v.keypoints[t] for v in views),
                                                        tuple(v.confidence[t] for v in views)))
                             for t in range(0, 8, 2)]
            refinement = h.latest_diagnostics()["refinement"]
            assert ("int8" in refinement) == (name == "int8"), refinement
        finally:
            h.close()
    for by_float, by_int8 in zip(outputs["float"], outputs["int8"], strict=True):
        np.testing.assert_array_equal(by_float[0], by_int8[0])
        assert np.array_equal(np.isnan(by_float[1]), np.isnan(by_int8[1]))
        assert np.nanmax(np.abs(by_float[1] - by_int8[1])) < 0.03

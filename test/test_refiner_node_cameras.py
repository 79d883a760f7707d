"""Integration: the refiner node with three and four cameras (`cameras`), fed by a synthetic corner rig over DDS.

The node's refined skeletons must beat the best camera pair's (the same packaged weights, the two-camera pipeline in
this process, on the same frames); a camera that sends NaN keypoints or goes silent must not stop the others.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from refiner_harness import Harness, rig_parameters  # noqa: E402
from test_nview import mpjpe_mm, pair_setup, view_input  # noqa: E402

from cvpose_ros.devtools.synthetic import corner_rig, generate_scene, project_scene  # noqa: E402
from cvpose_ros.pipeline.frame_processor import SkeletonPipeline  # noqa: E402
from cvpose_ros.refine.refiner import LayoutRefiners  # noqa: E402
from cvpose_ros.ros.conversions import keypoints_to_msg, skeletons_from_msg, stamp_to_ns  # noqa: E402
from cvpose_ros.ros.diagnostics import diagnostics_values  # noqa: E402
from cvpose_ros.ros.params import ParameterError  # noqa: E402
from cvpose_ros.ros.refiner_node import RefinerNode  # noqa: E402

NS_PER_FRAME = 33_333_333
FRAMES = 16


@pytest.mark.parametrize("count", [3, 4])
def test_more_cameras_beat_the_best_pair_over_dds(count):
    rig = corner_rig(count)
    scene = generate_scene(3, FRAMES / 30.0 + 0.1, 30.0, seed=11)
    views = project_scene(scene, rig, "detector", seed=5)
    truth = rig.cameras[0].cam_from_world.apply(scene.joints)
    h = Harness(rig_parameters(rig, max_stamp_age=0.0, cpu_threads=1), namespace=f"rig{count}", cameras=count)
    try:
        assert h.node.params.cameras == tuple(f"cam{c}" for c in range(count))
        h.send_camera_info(rig)
        base = h.next_stamp()
        node_errors = []
        for t in range(FRAMES):
            inputs = [view_input(v, t) for v in views]
            kp = tuple(np.stack([np.stack([p.x, p.y], -1) for p in i.people]) for i in inputs)
            conf = tuple(np.stack([p.confidence for p in i.people]) for i in inputs)
            msg = h.frame(base + t * NS_PER_FRAME, kp, conf, timeout_s=10.0)
            assert msg.header.frame_id == "cam0_optical_frame"
            node_errors += mpjpe_mm(skeletons_from_msg(msg)[1], truth[t])
        values = h.latest_diagnostics()
        assert values[f"frames_in_cam{count - 1}"] == str(FRAMES) and values["silent_camera"] == ""
        refined = h.node.pipeline.refinement_enabled
    finally:
        h.close()
    assert refined and len(node_errors) >= 0.9 * FRAMES * scene.num_people
    refiner = LayoutRefiners([], "cpu", num_threads=1)
    pairs = {}
    for a, b in itertools.combinations(range(count), 2):
        pipe = SkeletonPipeline(refiner)
        setup = pair_setup(rig, a, b)
        pairs[a, b] = np.mean([e for t in range(FRAMES) for e in mpjpe_mm(
            pipe.process(setup, view_input(views[a], t), view_input(views[b], t)).refined.joints, truth[t])])
    assert np.mean(node_errors) < min(pairs.values()), (np.mean(node_errors), pairs)


def test_a_nan_or_silent_camera_leaves_the_others_publishing():
    rig = corner_rig(3)
    scene = generate_scene(2, 3.0, 30.0, seed=2)
    views = project_scene(scene, rig, "clean", seed=0)
    h = Harness(rig_parameters(rig, refine=False, camera_timeout=0.3), namespace="bad3", cameras=3)
    try:
        h.send_camera_info(rig)
        kp = [v.keypoints[0] for v in views]
        conf = [v.confidence[0] for v in views]
        # camera 2 sends NaN keypoints claiming confidence 1: counted, the frame comes from cameras 0 and 1
        nan = np.full_like(kp[2], np.nan)
        msg = h.frame(h.next_stamp(), (kp[0], kp[1], nan), (conf[0], conf[1], np.ones_like(conf[2])))
        assert len(skeletons_from_msg(msg)[0]) == 2
        assert int(h.latest_diagnostics()["problem_nan_keypoints"]) >= 1
        # camera 2 goes silent: after camera_timeout the node goes on with cameras 0 and 1 and names camera 2
        got, silent = [], []
        name = h.node.diag.name
        for _ in range(300):  # cameras 0 and 1 keep publishing at ~30 Hz
            stamp = h.next_stamp()
            for c in (0, 1):
                h.pub_kp[c].publish(keypoints_to_msg(stamp, f"cam{c}_optical_frame", kp[c], conf[c]))
            h.spin_for(0.03)
            got = got or [m for m in h.received["skeletons"] if stamp_to_ns(m.header.stamp) == stamp]
            silent = [v for v in map(lambda m: diagnostics_values(m, name), h.received["/diagnostics"])
                      if v.get("silent_camera")]
            if got and silent:
                break
        assert got and len(skeletons_from_msg(got[0])[0]) == 2
        assert silent[-1]["silent_camera"] == "cam2" and silent[-1]["frames_in_cam2"] == "1"
        assert h.node.sync.required == {0, 1}
        # it comes back: frames need all three again
        stamp = h.next_stamp()
        msg = h.frame(stamp, tuple(kp), tuple(conf), timeout_s=5.0)
        assert len(skeletons_from_msg(msg)[0]) == 2
        h.spin_until(lambda: h.node.sync.required == {0, 1, 2}, 3.0, "camera 2 required again")
    finally:
        h.close()


@pytest.mark.parametrize("overrides,fragment", [
    ({"cameras": ["cam0"]}, "2 to 16 camera namespaces"),
    ({"cameras": ["cam0", "cam1", "cam1"]}, "twice"),
    ({"cameras": ["cam0", "cam1", "2cam"]}, "not a topic namespace"),
    ({"cam2.translation": [0.0, 0.0, 0.0]}, "cam0 and cam2 are 0.0000 m apart"),
    ({"extrinsics_source": "camera_info"}, "needs exactly 2 cameras"),
    ({"cam2.frame_id": "cam0_optical_frame", "cam0.frame_id": "cam0_optical_frame"}, "cam0.frame_id and "
                                                                                       "cam2.frame_id"),
])
def test_invalid_camera_lists_stop_start_up(overrides, fragment):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        params = {p.name: p for p in rig_parameters(corner_rig(3), refine=False)}
        params.update({k: Parameter(k, value=v) for k, v in overrides.items()})
        with pytest.raises(ParameterError, match=fragment):
            RefinerNode(context=context, parameter_overrides=list(params.values()))
    finally:
        rclpy.shutdown(context=context)


def test_custom_namespaces_name_the_topics():
    rig = corner_rig(3)
    params = rig_parameters(rig, refine=False, cameras=["left", "right", "top"])
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = RefinerNode(context=context, parameter_overrides=params, namespace="ns_topics")
        topics = {s.topic_name for s in node.subscriptions}
        assert {"/ns_topics/top/keypoints", "/ns_topics/left/camera_info"} <= topics
        assert node.has_parameter("cam2.translation") and not node.has_parameter("cam3.translation")
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_cvpose_calib_writes_every_camera_and_the_node_loads_them(tmp_path):
    """`cvpose-calib --pair all` on a three-camera calibration -> the node starts with three cameras and their poses."""
    from test_calibration_formats import truth, write_toml

    from cvpose_ros.calibration.cli import main as calib_main

    out = tmp_path / "calib"
    assert calib_main([str(write_toml(tmp_path / "Calib.toml")), "--pair", "all", "--out", str(out)]) == 0
    config = Path(__file__).resolve().parents[1] / "config" / "refiner.yaml"
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(config), "--params-file",
                                      str(out / "refiner_extrinsics.yaml")])
    try:
        node = RefinerNode(context=context, parameter_overrides=[Parameter("refine", value=False)])
        assert node.params.cameras == ("cam0", "cam1", "cam2")
        cam2_from_cam0 = node.params.reference_from_cams[2].inverse().compose(node.params.reference_from_cams[0])
        expected = truth()[2][2].compose(truth()[0][2].inverse())
        np.testing.assert_allclose(cam2_from_cam0.matrix(), expected.matrix(), atol=1e-8)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)

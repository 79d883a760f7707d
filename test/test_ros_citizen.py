"""Issue 12, a good ROS citizen, over real DDS: live parameters through the SetParameters service, two namespaced
instances side by side, a robot's TF tree left intact, TF for people missing their hips, and the start-up DELETEALL
reaching a late RViz."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
from rclpy.parameter import Parameter, parameter_value_to_python  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from refiner_harness import RELIABLE, Harness, rig_parameters  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene  # noqa: E402
from cvpose_ros.ros.conversions import skeletons_from_msg  # noqa: E402
from cvpose_ros.ros.tf import TF_STATIC_QOS, _transform  # noqa: E402

RIG = make_rig("demo")


def play(h: Harness, frames: int, seed: int = 1, confidence: float = 0.9, offset1_ns: int = 0) -> list:
    """One synthetic person for `frames` frames (camera 1 stamped `offset1_ns` later); the skeletons received per
    frame (None for a frame that produced none within a generous wait)."""
    stamps = h.send_person(RIG, frames, seed, confidence, offset1_ns, wait_each=not offset1_ns)
    if offset1_ns:  # pairs may or may not form: give every frame time, then look
        try:
            h.spin_until(lambda: all(h.skeletons_at(s) is not None for s in stamps), 3.0, "offset frames")
        except TimeoutError:
            pass
    return [h.skeletons_at(s) for s in stamps]


def params(**extra) -> list[Parameter]:
    """The rig's parameters, triangulation only, no stale-stamp check (a busy CI machine may be slow)."""
    return rig_parameters(RIG, refine=False, max_stamp_age=0.0, **extra)


def wait(h: Harness, future, what: str):
    h.spin_until(future.done, 5.0, what)
    return future.result()


@pytest.fixture()
def live():
    h = Harness(params(), namespace="live")
    client = AsyncParameterClient(h.rig, h.node.get_fully_qualified_name())
    h.spin_until(lambda: client.services_are_ready(), 10.0, "parameter services")
    yield h, client
    h.close()


def set_params(h: Harness, client: AsyncParameterClient, **values) -> list:
    results = wait(h, client.set_parameters([Parameter(k, value=v) for k, v in values.items()]), "set_parameters")
    return results.results


def get_param(h: Harness, client: AsyncParameterClient, name: str):
    return parameter_value_to_python(wait(h, client.get_parameters([name]), "get_parameters").values[0])


def test_invalid_sets_are_refused_with_the_reason_and_nothing_changes(live):
    """Issue 12 #1: `ros2 param set` of an invalid value used to succeed (and be ignored)."""
    h, client = live
    for name, value, why in (("min_confidence", "abc", "must be float"), ("sync_slop", -5.0, "out of range"),
                             ("min_confidence", 1.5, "out of range"), ("min_valid_joints", 40, "out of range"),
                             ("tf_root_format", "body", "{id}")):
        result = set_params(h, client, **{name: value})[0]
        assert not result.successful, (name, value)
        assert why in result.reason, result.reason
    assert get_param(h, client, "min_confidence") == 0.1
    assert get_param(h, client, "sync_slop") == 0.01
    assert h.node.params.min_confidence == 0.1 and h.node.pipeline.min_confidence == 0.1


def test_the_guard_confidence_of_each_layout_is_a_live_parameter(live):
    """Issue 15: the evidence test's confidence is set per keypoint layout, validated, and reaches the pipeline."""
    h, client = live
    guard = h.node.pipeline.guard
    assert (guard.confidence_for("coco17"), guard.confidence_for("h36m17")) == (0.5, 0.0)
    result = set_params(h, client, **{"guard_confidence.coco17": 1.0})[0]
    assert not result.successful and "out of range" in result.reason
    assert all(r.successful for r in set_params(h, client, **{"guard_confidence.h36m17": 0.3}))
    guard = h.node.pipeline.guard
    assert guard.confidence_for("h36m17") == 0.3 and guard.confidence_for("coco17") == 0.5
    assert get_param(h, client, "guard_confidence.h36m17") == 0.3


def test_restart_parameters_are_read_only_and_ranges_are_described(live):
    h, client = live
    result = set_params(h, client, reference_frame="map")[0]
    assert not result.successful and "read-only" in result.reason
    described = wait(h, client.describe_parameters(["min_confidence", "min_valid_joints", "reference_frame",
                                                    "publish_tf"]), "describe").descriptors
    conf, joints, ref, pub = described
    assert (conf.floating_point_range[0].from_value, conf.floating_point_range[0].to_value) == (0.0, 1.0)
    assert (joints.integer_range[0].from_value, joints.integer_range[0].to_value) == (2, 17)
    assert ref.read_only and "restart" in ref.description
    assert not pub.read_only


def test_valid_sets_change_behaviour_live(live):
    """Issue 12 #1: thresholds, publish flags and sync settings take effect without a restart."""
    h, client = live
    assert len(play(h, 2, confidence=0.9)[-1].skeletons) == 1
    assert all(r.successful for r in set_params(h, client, min_confidence=0.95))
    assert len(play(h, 2, confidence=0.9)[-1].skeletons) == 0          # 0.9 < 0.95: every joint is missing now
    assert all(r.successful for r in set_params(h, client, min_confidence=0.5, publish_tf=False))
    tf_before = len(h.received["/tf"])
    assert len(play(h, 3, confidence=0.9)[-1].skeletons) == 1
    h.spin_for(0.2)
    assert len(h.received["/tf"]) == tf_before                            # publish_tf false: no person TF
    # Camera 1 stamped 15 ms after camera 0 (30 Hz): nothing pairs with sync_slop 10 ms, everything with 20 ms.
    assert all(m is None for m in play(h, 3, offset1_ns=15_000_000))
    assert all(r.successful for r in set_params(h, client, sync_slop=0.02, publish_tf=True))
    paired = play(h, 4, offset1_ns=15_000_000)
    assert sum(m is not None for m in paired) >= 3
    h.spin_for(0.2)
    assert len(h.received["/tf"]) > tf_before
    assert get_param(h, client, "sync_slop") == 0.02


def test_two_namespaced_instances_never_share_a_frame_or_a_status():
    """Issue 12 #2: two instances in namespaces published the same body_0 on /tf and one diagnostics name."""
    left = Harness(params(), namespace="left")
    right = Harness(params(), namespace="right")
    try:
        # left's recorder hears right's /tf only once it has discovered right's node (two contexts: discovery is
        # asynchronous, an earlier test's node may still linger in the graph, and the data path is matched after the
        # graph shows the publisher): wait for right's publisher by namespace, then play right until left hears it
        left.spin_until(lambda: any(info.node_namespace == "/right"
                                    for info in left.rig.get_publishers_info_by_topic("/tf")),
                        10.0, "right's /tf publisher in left's graph")
        play(left, 3, seed=1)

        def heard_right() -> bool:
            return any(t.child_frame_id.startswith("right/") for tfm in left.received["/tf"] for t in tfm.transforms)

        for _ in range(5):
            play(right, 3, seed=2)
            left.spin_for(0.5)
            if heard_right():
                break
        assert heard_right(), "right's /tf never reached left's recorder"
        frames = {}
        for tfm in left.received["/tf"]:  # left's recorder sees both nodes on the global /tf
            for t in tfm.transforms:
                frames.setdefault(t.child_frame_id, set()).add(t.header.frame_id)
        ours = {f for f in frames if f.startswith("left/")}
        theirs = {f for f in frames if f.startswith("right/")}
        assert "left/body_0" in ours and "right/body_0" in theirs
        assert ours | theirs == set(frames), "every person frame carries its node's namespace"
        assert left.node.diag.name == "left/cvpose_refiner: pipeline"
        assert right.node.diag.name == "right/cvpose_refiner: pipeline"
        assert left.latest_diagnostics() and right.latest_diagnostics()
    finally:
        left.close()
        right.close()


def robot_static_tf() -> TFMessage:
    """A robot's URDF-style tree: base_link -> camX_link -> camX_optical_frame, the optical frames where the rig
    has the cameras (camera 0 at base_link's origin)."""
    cam0_from_cam1 = RIG.cam1_from_cam0.inverse()
    stamp = rclpy.time.Time().to_msg()
    return TFMessage(transforms=[
        _transform(stamp, "base_link", "cam0_link", (0.0, 0.0, 0.1)),
        _transform(stamp, "cam0_link", "cam0_optical_frame", (0.0, 0.0, -0.1)),
        _transform(stamp, "base_link", "cam1_link", cam0_from_cam1.t, cam0_from_cam1.quaternion()),
        _transform(stamp, "cam1_link", "cam1_optical_frame", (0.0, 0.0, 0.0)),
    ])


def test_a_robot_tf_tree_stays_one_connected_tree():
    """Issue 12 #3: with extrinsics_source=parameters the node published base_link -> camX_optical_frame on
    /tf_static, re-parenting the robot's optical frames (two trees); it must leave them alone and say why."""
    context = rclpy.Context()
    rclpy.init(context=context)
    robot = rclpy.create_node("robot_state_publisher", context=context)
    robot.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS).publish(robot_static_tf())
    h = Harness(params(reference_frame="base_link"), namespace="robot")
    try:
        h.spin_until(lambda: "cam0_optical_frame" in h.node.foreign_frames.parents, 5.0, "robot TF seen")
        play(h, 5)
        h.spin_for(1.5)  # past the camera-TF delay and a diagnostics period: the node had every chance to publish
        parents: dict[str, set[str]] = {}
        for tfm in h.received["/tf_static"] + h.received["/tf"]:
            for t in tfm.transforms:
                parents.setdefault(t.child_frame_id, set()).add(t.header.frame_id)
        assert all(len(p) == 1 for p in parents.values()), {c: p for c, p in parents.items() if len(p) > 1}
        tree = {c: next(iter(p)) for c, p in parents.items()}

        def root(frame: str) -> str:
            while frame in tree:
                frame = tree[frame]
            return frame

        assert {root(f) for f in tree} == {"base_link"}, "one connected tree"
        assert tree["cam0_optical_frame"] == "cam0_link" and tree["robot/body_0"] == "base_link"
        assert {"cam0_optical_frame", "cam1_optical_frame"} <= h.node._camera_tf_conflicts
    finally:
        h.close()
        robot.destroy_node()
        rclpy.shutdown(context=context)


def test_camera_frames_are_published_when_tf_does_not_have_them():
    h = Harness(params(), namespace="standalone")
    try:
        play(h, 2)
        h.spin_until(lambda: any(t.child_frame_id == "cam1_optical_frame" for m in h.received["/tf_static"]
                                 for t in m.transforms), 3.0, "camera static TF")
    finally:
        h.close()
    off = Harness(params(publish_camera_tf=False), namespace="no_camera_tf")
    try:
        play(off, 2)
        off.spin_for(1.2)
        assert off.node.pub_tf_static is None
        assert not [t for m in off.received["/tf_static"] for t in m.transforms
                    if t.child_frame_id == "cam1_optical_frame"]
    finally:
        off.close()


def test_people_missing_pelvis_and_a_hip_still_get_tf():
    """Issue 12 #4: the mid-hip fallback was NaN when one hip was missing, so the person got no TF at all."""
    h = Harness(params(), namespace="hipless")
    try:
        scene = generate_scene(1, 0.5, 30.0, seed=4)
        views = project_scene(scene, RIG, noise=None)
        h.send_camera_info(RIG)
        stamp = h.now_ns()
        kp = [v.keypoints[0].copy() for v in views]
        for k in kp:
            k[0, [0, 1]] = np.nan  # pelvis and right hip unseen by both cameras
        conf = tuple(np.where(np.isfinite(k).all(-1), 0.9, 0.0) for k in kp)
        msg = h.frame(stamp, tuple(kp), conf)
        _, joints, _, _ = skeletons_from_msg(msg)
        h.spin_until(lambda: any(t.child_frame_id == "hipless/body_0" for m in h.received["/tf"]
                                 for t in m.transforms), 3.0, "body_0 on /tf")
        body = next(t for m in h.received["/tf"] for t in m.transforms if t.child_frame_id == "hipless/body_0")
        b = body.transform.translation
        np.testing.assert_allclose([b.x, b.y, b.z], joints[0, 4], atol=1e-4)  # the remaining (left) hip
    finally:
        h.close()


def test_a_late_rviz_gets_the_start_up_deleteall():
    """Issue 12 #9: the DELETEALL went out in the constructor, before any subscriber could exist."""
    h = Harness(params(), namespace="late_rviz")
    try:
        time.sleep(0.2)
        got: list[MarkerArray] = []
        h.rig.create_subscription(MarkerArray, "skeleton_markers", got.append, RELIABLE)
        h.spin_until(lambda: any(m.action == Marker.DELETEALL for a in got for m in a.markers), 5.0, "DELETEALL")
    finally:
        h.close()


def test_root_falls_back_to_a_hip_then_to_any_joint():
    """Unit side of issue 12 #4, both layouts: pelvis (or one coco hip) missing -> remaining hip; only an arm
    left -> centroid of what is known; nothing known -> no frame."""
    from cvpose_ros.ros.tf import root_positions

    rng = np.random.default_rng(0)
    h36m = rng.normal(size=(4, 17, 3))
    h36m[1, [0, 1]] = np.nan                       # pelvis and right hip
    h36m[2, :] = np.nan
    h36m[2, [13, 16]] = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]  # only the wrists
    h36m[3, :] = np.nan
    roots = root_positions(h36m, "h36m17")
    np.testing.assert_allclose(roots[0], h36m[0, 0])
    np.testing.assert_allclose(roots[1], h36m[1, 4])
    np.testing.assert_allclose(roots[2], [2.0, 2.0, 2.0])
    assert np.isnan(roots[3]).all()
    coco = rng.normal(size=(1, 17, 3))
    coco[0, 12] = np.nan                           # right hip
    np.testing.assert_allclose(root_positions(coco, "coco17")[0], coco[0, 11])

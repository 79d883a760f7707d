"""Issue 2: every cvpose_ros_msgs type survives a real DDS round trip with all fields intact.

One node publishes, another subscribes, both in a private rclpy Context (domain from ROS_DOMAIN_ID, discovery
limited by ROS_AUTOMATIC_DISCOVERY_RANGE as the test runner sets them). Arrays of 17 joints, 0/1/5 people, wrong
array lengths and NaN values must all be representable; NaN compares equal to NaN.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
msgs = pytest.importorskip("cvpose_ros_msgs.msg")
from geometry_msgs.msg import Point  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def ros():
    """A private context with a publisher node, a subscriber node and an executor; torn down after the module."""
    context = rclpy.Context()
    rclpy.init(context=context)
    talker = rclpy.create_node("dds_talker", context=context)
    listener = rclpy.create_node("dds_listener", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(talker)
    executor.add_node(listener)
    yield context, talker, listener, executor
    executor.shutdown()
    talker.destroy_node()
    listener.destroy_node()
    rclpy.shutdown(context=context)


def round_trip(ros, msg_type, msg, timeout_s: float = 10.0):
    """Publish `msg` from the talker and return what the listener receives."""
    _, talker, listener, executor = ros
    topic = f"rt_{msg_type.__name__.lower()}_{time.monotonic_ns()}"
    received = []
    sub = listener.create_subscription(msg_type, topic, received.append, QOS)
    pub = talker.create_publisher(msg_type, topic, QOS)
    deadline = time.monotonic() + timeout_s
    try:
        while pub.get_subscription_count() == 0 or sub.get_publisher_count() == 0:
            assert time.monotonic() < deadline, "publisher and subscriber did not discover each other"
            executor.spin_once(timeout_sec=0.02)
        pub.publish(msg)
        while not received:
            assert time.monotonic() < deadline, f"{msg_type.__name__} not received over DDS"
            executor.spin_once(timeout_sec=0.02)
    finally:
        talker.destroy_publisher(pub)
        listener.destroy_subscription(sub)
    assert len(received) == 1
    return received[0]


def same_floats(a, b) -> None:
    """Equal as float32 arrays, NaN == NaN, and of equal length."""
    np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def person2d(track_id: int, n_x: int = 17, n_y: int = 17, n_c: int = 17, nan_at=()) -> msgs.PersonKeypoints2D:
    x = RNG.uniform(0, 1280, n_x).astype(np.float32)
    y = RNG.uniform(0, 720, n_y).astype(np.float32)
    c = RNG.uniform(0, 1, n_c).astype(np.float32)
    for j in nan_at:
        x[j] = y[j] = c[j] = np.nan
    return msgs.PersonKeypoints2D(track_id=track_id, x=x.tolist(), y=y.tolist(), confidence=c.tolist())


def skeleton3d(track_id: int, n_joints: int = 17, n_conf: int = 17, nan_at=()) -> msgs.Skeleton3D:
    xyz = RNG.normal(0, 1, (n_joints, 3))
    xyz[list(nan_at)] = np.nan
    return msgs.Skeleton3D(track_id=track_id, joints=[Point(x=x, y=y, z=z) for x, y, z in xyz.tolist()],
                           confidence=RNG.uniform(0, 1, n_conf).astype(np.float32).tolist(),
                           reprojection_error=float(RNG.uniform(0, 5)))


def assert_person2d(a, b) -> None:
    assert a.track_id == b.track_id
    for field in ("x", "y", "confidence"):
        same_floats(getattr(a, field), getattr(b, field))


def assert_skeleton(a, b) -> None:
    assert a.track_id == b.track_id
    np.testing.assert_array_equal([(p.x, p.y, p.z) for p in a.joints], [(p.x, p.y, p.z) for p in b.joints])
    assert len(a.joints) == len(b.joints)
    same_floats(a.confidence, b.confidence)
    assert (math.isnan(a.reprojection_error) and math.isnan(b.reprojection_error)) or \
        np.float32(a.reprojection_error) == np.float32(b.reprojection_error)


def keypoints_msg(people) -> msgs.Keypoints2D:
    msg = msgs.Keypoints2D(layout="coco17", people=people)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg.header.frame_id = "cam1_optical_frame"
    return msg


def skeleton_array_msg(skeletons) -> msgs.Skeleton3DArray:
    msg = msgs.Skeleton3DArray(layout="h36m17", joint_names=[f"joint_{j}" for j in range(17)], skeletons=skeletons)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 42, 999_999_999
    msg.header.frame_id = "cam0_optical_frame"
    return msg


PERSON_CASES = {
    "17 joints": dict(track_id=3),
    "untracked": dict(track_id=-1),
    "nan joints": dict(track_id=0, nan_at=(0, 5, 16)),
    "lengths disagree": dict(track_id=1, n_x=17, n_y=16, n_c=3),
    "empty arrays": dict(track_id=2, n_x=0, n_y=0, n_c=0),
}


@pytest.mark.parametrize("case", list(PERSON_CASES))
def test_person_keypoints_round_trip(ros, case):
    sent = person2d(**PERSON_CASES[case])
    assert_person2d(round_trip(ros, msgs.PersonKeypoints2D, sent), sent)


@pytest.mark.parametrize("num_people", [0, 1, 5])
def test_keypoints2d_round_trip(ros, num_people):
    people = [person2d(i, nan_at=(i,) if i % 2 else ()) for i in range(num_people)]
    if num_people == 5:
        people[3] = person2d(3, n_x=18, n_y=17, n_c=17)  # wrong length inside a full message
    sent = keypoints_msg(people)
    got = round_trip(ros, msgs.Keypoints2D, sent)
    assert got.header == sent.header and got.layout == sent.layout
    assert len(got.people) == num_people
    for a, b in zip(got.people, sent.people, strict=True):
        assert_person2d(a, b)


@pytest.mark.parametrize("case", ["17 joints", "nan joints", "wrong lengths", "nan error"])
def test_skeleton3d_round_trip(ros, case):
    sent = {"17 joints": lambda: skeleton3d(4), "nan joints": lambda: skeleton3d(5, nan_at=(0, 9)),
            "wrong lengths": lambda: skeleton3d(6, n_joints=3, n_conf=20),
            "nan error": lambda: skeleton3d(7)}[case]()
    if case == "nan error":
        sent.reprojection_error = float("nan")
    assert_skeleton(round_trip(ros, msgs.Skeleton3D, sent), sent)


@pytest.mark.parametrize("num_people", [0, 1, 5])
def test_skeleton3d_array_round_trip(ros, num_people):
    skeletons = [skeleton3d(i, nan_at=(i,)) for i in range(num_people)]
    sent = skeleton_array_msg(skeletons)
    got = round_trip(ros, msgs.Skeleton3DArray, sent)
    assert got.header == sent.header and got.layout == sent.layout
    assert list(got.joint_names) == list(sent.joint_names)
    assert len(got.skeletons) == num_people
    for a, b in zip(got.skeletons, sent.skeletons, strict=True):
        assert_skeleton(a, b)

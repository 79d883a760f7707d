"""Issue 12: the managed (lifecycle) refiner over real DDS, driven through its lifecycle_msgs services as a robot's
bringup (or `ros2 lifecycle set`) would: nothing runs until activated, deactivate stops the outputs, and
cleanup + configure + activate brings it back."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from refiner_harness import Harness, rig_parameters  # noqa: E402

from cvpose_ros.devtools.synthetic import make_rig  # noqa: E402
from cvpose_ros.ros.conversions import skeletons_from_msg  # noqa: E402
from cvpose_ros.ros.managed_refiner_node import ManagedRefinerNode  # noqa: E402

RIG = make_rig("demo")


class Lifecycle:
    """Client of a managed node's change_state / get_state services."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        name = h.node.get_fully_qualified_name()
        self.change = h.rig.create_client(ChangeState, f"{name}/change_state")
        self.get = h.rig.create_client(GetState, f"{name}/get_state")
        h.spin_until(lambda: self.change.service_is_ready() and self.get.service_is_ready(), 10.0, "lifecycle")

    def set(self, transition: int) -> bool:
        future = self.change.call_async(ChangeState.Request(transition=Transition(id=transition)))
        self.h.spin_until(future.done, 20.0, f"transition {transition}")
        return future.result().success

    def state(self) -> int:
        future = self.get.call_async(GetState.Request())
        self.h.spin_until(future.done, 5.0, "get_state")
        return future.result().current_state.id


def send_frames(h: Harness, frames: int, seed: int = 1) -> list[int]:
    """Publish a person's keypoints for `frames` frames; returns their stamps (outputs may or may not come)."""
    return h.send_person(RIG, frames, seed)


def outputs(h: Harness, stamps: list[int], expected: int = 0) -> int:
    """How many of `stamps` produced skeletons, waiting (generously) until `expected` of them did."""
    count = lambda: sum(h.skeletons_at(s) is not None for s in stamps)  # noqa: E731
    try:
        h.spin_until(lambda: count() >= max(expected, 1), 10.0 if expected else 0.5, "outputs")
    except TimeoutError:
        pass
    return count()


def ids(h: Harness) -> set[int]:
    return {int(i) for m in h.received["skeletons"] for i in skeletons_from_msg(m)[0]}


def test_lifecycle_configure_activate_deactivate_cleanup():
    h = Harness(rig_parameters(RIG, refine=False, max_stamp_age=0.0), namespace="managed",
                node_class=ManagedRefinerNode)
    try:
        life = Lifecycle(h)
        assert life.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert not h.pub_skeletons_seen()                                # unconfigured: no outputs yet
        assert life.set(Transition.TRANSITION_CONFIGURE) and life.state() == State.PRIMARY_STATE_INACTIVE
        assert outputs(h, send_frames(h, 3)) == 0                       # configured, not active: nothing runs
        assert life.set(Transition.TRANSITION_ACTIVATE) and life.state() == State.PRIMARY_STATE_ACTIVE
        h.wait_for_discovery()
        assert outputs(h, send_frames(h, 4), expected=3) >= 3
        first_ids = ids(h)
        assert life.set(Transition.TRANSITION_DEACTIVATE) and life.state() == State.PRIMARY_STATE_INACTIVE
        assert outputs(h, send_frames(h, 3)) == 0
        assert life.set(Transition.TRANSITION_CLEANUP) and life.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert h.node.pipeline is None                                   # weights and publishers released
        assert life.set(Transition.TRANSITION_CONFIGURE) and life.set(Transition.TRANSITION_ACTIVATE)
        h.wait_for_discovery()
        assert outputs(h, send_frames(h, 4), expected=3) >= 3
        assert min(ids(h) - first_ids) > max(first_ids)                  # ids are never reused, even across cleanup
    finally:
        h.close()


def test_a_failing_configure_leaves_the_node_unconfigured(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    h = Harness(rig_parameters(RIG, checkpoint=str(bad), device="cpu"), namespace="managed_bad",
                node_class=ManagedRefinerNode)
    try:
        life = Lifecycle(h)
        assert not life.set(Transition.TRANSITION_CONFIGURE)
        assert life.state() == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        h.close()

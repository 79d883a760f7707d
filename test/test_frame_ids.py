"""Frame-id rules (no rclpy): TF names only, never one of the node's own person frames."""

from __future__ import annotations

import pytest

from cvpose_ros.ros.frame_ids import FrameIdRules

RULES = FrameIdRules()


@pytest.mark.parametrize("frame_id", ["cam0_optical_frame", "map", "robot/head_camera_optical_frame", "_private",
                                      "CamLeft2", "body", "bodyA_0", "l_wrist"])
def test_usual_frame_names_are_accepted(frame_id):
    assert RULES.problem(frame_id) is None


@pytest.mark.parametrize("frame_id,fragment", [
    ("", "empty"), (" ", "not a valid"), ("\t\n", "not a valid"), ("map/../cam0", "not a valid"),
    ("kamera_ü", "not a valid"), ("c" * 4096, "4096 characters"), ("/cam0", "starts with '/'"),
    ("a//b", "not a valid"), ("cam-0", "not a valid"), ("0cam", "not a valid"), ("cam0 ", "not a valid"),
    ("body_0", "own person frames"), ("body_17", "own person frames"), ("l_wrist_3", "own person frames"),
    ("nose_12", "own person frames"), ("pelvis_0", "own person frames"),
])
def test_bad_frame_names_are_rejected_with_the_reason(frame_id, fragment):
    assert fragment in RULES.problem(frame_id)


def test_own_frames_follow_the_configured_naming():
    rules = FrameIdRules("people/", "person_{id}", "p{id}_{joint}")
    assert "own person frames" in rules.problem("people/person_4")
    assert "own person frames" in rules.problem("people/p4_r_knee")
    assert rules.problem("body_0") is None and rules.problem("people/person_x") is None

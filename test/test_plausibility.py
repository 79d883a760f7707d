"""Plausibility of 3D people (no rclpy): synthetic people of every size pass, far-away and impossible ones fail."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.body.plausibility import PlausibilityCheck, bone_ranges
from cvpose_ros.body.skeleton import LAYOUTS
from cvpose_ros.devtools.synthetic import generate_scene

CAMERAS = np.array([[0.0, 0.0, 0.0], [0.6, 0.0, 0.0]])
CHECK = PlausibilityCheck(max_range_m=30.0)


def people(layout: str, seed: int = 0) -> np.ndarray:
    """(T*P, 17, 3) synthetic people (sizes vary 5 % per person) of `layout`, 4 m in front of the cameras."""
    scene = generate_scene(4, 2.0, 15.0, seed=seed).in_layout(layout)
    joints = scene.joints.reshape(-1, 17, 3)
    return joints - joints.mean(axis=(0, 1)) + np.array([0.0, 0.0, 4.0])


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_bone_of_every_layout_has_a_range(layout):
    pairs, ranges = bone_ranges(LAYOUTS[layout])
    assert len(pairs) == len(LAYOUTS[layout].edges) and (ranges[:, 0] < ranges[:, 1]).all()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("scale", [0.6, 1.0, 1.25])  # a child to a tall adult
def test_synthetic_people_are_plausible(layout, scale):
    joints = people(layout) * scale
    assert not CHECK.implausible(joints, CAMERAS, layout).any()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_noisy_triangulation_and_missing_joints_stay_plausible(layout):
    rng = np.random.default_rng(1)
    joints = people(layout) + rng.normal(0.0, 0.02, (1, 17, 3))  # 2 cm per joint, far beyond a good rig's error
    joints[::3, 5] = np.nan
    assert not CHECK.implausible(joints, CAMERAS, layout).any()


def test_far_away_people_are_dropped():
    joints = people("h36m17")[:3]
    joints[1] += np.array([0.0, 0.0, 600.0])       # a consistent person 600 m away
    joints[2, 3] = np.array([0.0, 0.0, 45.0])      # one joint far away (also a 40 m bone)
    bad = CHECK.implausible(joints, CAMERAS, "h36m17")
    np.testing.assert_array_equal(bad, [False, True, True])
    only_range = PlausibilityCheck(max_range_m=30.0, bones=False)
    np.testing.assert_array_equal(only_range.implausible(joints, CAMERAS, "h36m17"), [False, True, True])


def test_range_is_measured_from_the_nearer_camera():
    point = np.full((1, 17, 3), np.nan)
    point[0, 0] = [30.5, 0.0, 0.0]   # 30.5 m from camera 0, 29.9 m from camera 1
    assert not PlausibilityCheck(30.0, bones=False).implausible(point, CAMERAS, "h36m17")[0]
    assert PlausibilityCheck(29.5, bones=False).implausible(point, CAMERAS, "h36m17")[0]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_giants_dwarfs_and_broken_bones_are_dropped(layout):
    joints = people(layout)[:4].copy()
    root = joints[:, :1]
    joints[0] = root[0] + (joints[0] - root[0]) * 3.0    # a 5 m tall person
    joints[1] = root[1] + (joints[1] - root[1]) * 0.1    # a 17 cm tall person
    joints[2, 16] = joints[2, 16] + np.array([1.5, 0.0, 0.0])  # an ankle or wrist 1.5 m off its limb
    bad = CHECK.implausible(joints, CAMERAS, layout)
    np.testing.assert_array_equal(bad, [True, True, True, False])


def test_nan_people_and_empty_input():
    assert CHECK.implausible(np.full((2, 17, 3), np.nan), CAMERAS, "h36m17").tolist() == [False, False]
    assert CHECK.implausible(np.zeros((0, 17, 3)), CAMERAS, "coco17").shape == (0,)


# ------------------------------------------------------------------------------------------- joints, not people
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_limb_joint_off_its_bone_is_blanked_not_the_person(layout):
    """A wrist 1.5 m off its forearm names the wrist (its only bone fails); after blanking it the person passes.
    Healthy people and the other joints are left alone."""
    lay = LAYOUTS[layout]
    joints = people(layout)[:3].copy()
    wrist, elbow = lay.joint_names.index("r_wrist"), lay.joint_names.index("r_elbow")
    joints[1, wrist] += np.array([1.5, 0.0, 0.0])
    joints[2, elbow] += np.array([0.0, 1.2, 0.0])  # a wrong elbow fails both its bones: the forearm end goes too
    blank = CHECK.implausible_joints(joints, layout)
    assert not blank[0].any()
    assert np.flatnonzero(blank[1]).tolist() == [wrist]
    assert set(np.flatnonzero(blank[2]).tolist()) == {elbow, wrist}
    assert CHECK.implausible(joints, CAMERAS, layout)[1:].all()  # as measured before blanking
    cleaned = np.where(blank[..., None], np.nan, joints)
    assert not CHECK.implausible(cleaned, CAMERAS, layout).any()


def test_face_culprits_and_torso_bones():
    """coco17: a wrong nose fails both nose-eye links and is the one blanked (not the eyes); a shoulder far out
    never blanks a torso joint (only the ear and arm hanging off it), so the person as a whole is still dropped;
    with bones off nothing is blanked."""
    joints = people("coco17")[:2].copy()
    joints[0, 0] += np.array([0.0, 0.0, -0.6])      # nose 60 cm towards the camera
    joints[1, 6] += np.array([1.2, 0.0, 0.0])       # right shoulder 1.2 m out: torso links fail
    blank = CHECK.implausible_joints(joints, "coco17")
    assert np.flatnonzero(blank[0]).tolist() == [0]
    assert not blank[1, [5, 6, 11, 12]].any()
    assert CHECK.implausible(np.where(blank[..., None], np.nan, joints), CAMERAS, "coco17").tolist() == [False, True]
    assert not PlausibilityCheck(bones=False).implausible_joints(joints, "coco17").any()
    assert CHECK.implausible_joints(np.zeros((0, 17, 3)), "coco17").shape == (0, 17)

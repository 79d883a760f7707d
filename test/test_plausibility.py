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

"""Cross-view matching of people and stable ids (no rclpy), on synthetic people seen by a synthetic rig."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.body.skeleton import H36M17
from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
from cvpose_ros.pipeline.association import IdTracker, match_by_track_id, mean_joint_distance
from cvpose_ros.pipeline.cross_view import match_views

RIG = make_rig("demo")
CAM0, CAM1 = RIG.cameras[0].model, RIG.cameras[1].model


@pytest.fixture(scope="module")
def five_people():
    scene = generate_scene(5, 1.0, 30.0, seed=6)
    return scene, project_scene(scene, RIG, noise=None)


def noisy(view, t: int, rng: np.random.Generator, sigma: float = 2.0):
    kp = view.keypoints[t] + rng.normal(0, sigma, view.keypoints[t].shape)
    return kp, np.where(np.isfinite(kp).all(-1), 0.8, 0.0)


def test_track_ids_match_equal_non_negative_unique_ids():
    i0, i1 = match_by_track_id(np.array([4, -1, 7, 9, 9]), np.array([-1, 7, 4, 9, 2]))
    assert sorted(zip(i0.tolist(), i1.tolist(), strict=True)) == [(0, 2), (2, 1)]  # 9 repeats in view 0


@pytest.mark.parametrize("t", [0, 15, 29])
def test_geometric_matching_recovers_a_shuffled_order(five_people, t):
    _, (v0, v1) = five_people
    rng = np.random.default_rng(t)
    (kp0, c0), (kp1, c1) = noisy(v0, t, rng), noisy(v1, t, rng)
    order = rng.permutation(5)
    none = np.full(5, -1)
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none, kp1[order], c1[order], none, H36M17)
    i0, i1 = match.i0, match.i1
    seen = [p for p in range(5) if (c0[p] > 0).sum() >= 4 and (c1[p] > 0).sum() >= 4]
    assert len(i0) >= len(seen) - 1
    np.testing.assert_array_equal(order[i1], i0)  # each matched pair is the same person


def test_gate_rejects_people_seen_by_one_camera_and_impostors(five_people):
    _, (v0, v1) = five_people
    rng = np.random.default_rng(1)
    (kp0, c0), (kp1, c1) = noisy(v0, 10, rng), noisy(v1, 10, rng)
    impostor = rng.uniform([0, 0], [1280, 720], (1, 17, 2))
    kp1 = np.concatenate([kp1[1:], impostor])  # person 0 only in camera 0; a random 'person' only in camera 1
    c1 = np.concatenate([c1[1:], np.full((1, 17), 0.8)])
    none0, none1 = np.full(5, -1), np.full(5, -1)
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none0, kp1, c1, none1, H36M17)
    i0, i1 = match.i0, match.i1
    assert 0 not in i0 and 4 not in i1
    np.testing.assert_array_equal(i1 + 1, i0)


def test_agreeing_track_ids_and_geometry_match_together(five_people):
    _, (v0, v1) = five_people
    rng = np.random.default_rng(2)
    (kp0, c0), (kp1, c1) = noisy(v0, 20, rng), noisy(v1, 20, rng)
    ids0 = np.array([10, 11, -1, -1, -1])
    ids1 = np.array([11, 10, -1, -1, -1])  # camera 1 lists the tracked pair swapped, ids say so
    kp1[[0, 1]], c1[[0, 1]] = kp1[[1, 0]], c1[[1, 0]]
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, ids0, kp1, c1, ids1, H36M17)
    i0, i1 = match.i0, match.i1
    pairs = dict(zip(i0.tolist(), i1.tolist(), strict=True))
    assert pairs[0] == 1 and pairs[1] == 0
    assert all(pairs[p] == p for p in (2, 3, 4) if p in pairs) and len(pairs) >= 4


def test_empty_views():
    empty = np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0, np.int64)
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, *empty, *empty, H36M17)
    i0, i1 = match.i0, match.i1
    assert i0.size == 0 and i1.size == 0


def test_mean_joint_distance_ignores_missing_joints():
    a = np.zeros((1, 17, 3))
    b = np.ones((2, 17, 3))
    b[1] = 0.0
    b[1, :16] = np.nan
    a[0, 16] = [1.0, 1.0, 3.0]
    d = mean_joint_distance(a, b)
    np.testing.assert_allclose(d[0, 0], (16 * np.sqrt(3) + 2.0) / 17)
    np.testing.assert_allclose(d[0, 1], np.sqrt(11.0))
    assert mean_joint_distance(np.full((1, 17, 3), np.nan), b)[0, 0] == np.inf


MS = 1_000_000  # ns


def test_ids_stay_stable_for_moving_people_in_any_order():
    scene = generate_scene(4, 2.0, 30.0, seed=3)
    joints = scene.joints.copy()
    joints[::7, 2, 10:] = np.nan  # joints missing now and then
    tracker = IdTracker(max_distance_m=0.5, timeout_s=0.2)
    rng = np.random.default_rng(0)
    first = tracker.update(joints[0], 0)
    assert sorted(first.tolist()) == [0, 1, 2, 3]
    for t in range(1, scene.num_frames):
        order = rng.permutation(4)
        ids = tracker.update(joints[t][order], t * 33 * MS)
        np.testing.assert_array_equal(ids, first[order])


def test_ids_only_grow_and_are_never_reused():
    """Issue 12 #8: ids were the smallest free integer, so a released id was given to the next newcomer."""
    tracker = IdTracker(max_distance_m=0.3, timeout_s=0.5)
    a, b, c = (np.full((1, 17, 3), x) for x in (0.0, 5.0, 10.0))
    assert tracker.update(np.concatenate([a, b]), 0).tolist() == [0, 1]
    for k in range(1, 21):
        assert tracker.update(b, k * 100 * MS).tolist() == [1]              # a unseen for 2 s: released
    assert tracker.update(np.concatenate([b, a]), 2100 * MS).tolist() == [1, 2]  # a is back: a new id, not 0
    assert tracker.update(c, 2200 * MS).tolist() == [3]
    tracker.reset()                                                          # time jump: tracks forgotten ...
    assert tracker.update(np.concatenate([a, b, c]), 0).tolist() == [4, 5, 6]  # ... ids still never reused


def test_ids_are_released_after_a_time_not_a_frame_count():
    """Issue 12 #8: release after `timeout_s` of stamp time, whatever the frame rate."""
    a, b = np.full((1, 17, 3), 0.0), np.full((1, 17, 3), 5.0)
    fast = IdTracker(max_distance_m=0.3, timeout_s=1.0)   # 100 Hz: 50 frames without a within 0.5 s
    fast.update(np.concatenate([a, b]), 0)
    for k in range(1, 51):
        fast.update(b, k * 10 * MS)
    assert fast.update(np.concatenate([b, a]), 510 * MS).tolist() == [1, 0]  # 0.51 s < 1 s: a keeps id 0
    slow = IdTracker(max_distance_m=0.3, timeout_s=1.0)   # 2 Hz: 3 frames without a span 1.5 s
    slow.update(np.concatenate([a, b]), 0)
    for k in range(1, 4):
        slow.update(b, k * 500 * MS)
    assert slow.update(np.concatenate([b, a]), 2000 * MS).tolist() == [1, 2]  # 2 s > 1 s: released, new id


def test_a_jump_beyond_the_gate_is_a_new_person():
    tracker = IdTracker(max_distance_m=0.5, timeout_s=1.0)
    tracker.update(np.zeros((1, 17, 3)), 0)
    assert tracker.update(np.full((1, 17, 3), 2.0), 33 * MS).tolist() == [1]

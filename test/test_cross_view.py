"""Cross-view matching against detector-like errors (no rclpy): one-view left/right swaps, bad joints, a gate that
scales with the image, track ids as hints, crowds."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.body.swap_repair import image_swaps, mirror_groups, swap_groups
from cvpose_ros.devtools.noise import swap_limbs
from cvpose_ros.devtools.synthetic import Rig, RigCamera, generate_scene, make_rig, project_scene
from cvpose_ros.geometry.camera import CameraModel
from cvpose_ros.pipeline import cross_view
from cvpose_ros.pipeline.cross_view import MatchConfig, limit_people, match_views, two_view_residual
from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import PersonInput, Problem, ViewInput
from training.swap_eval import swap_mpjpe

RIG = make_rig("demo")
CAM0, CAM1 = RIG.cameras[0].model, RIG.cameras[1].model
LAYOUTS = ("coco17", "h36m17")


@pytest.fixture(scope="module", params=LAYOUTS)
def scene_views(request):
    """(layout, truth in cam0 (T, P, J, 3), exact keypoints of both views (T, P, J, 2)) of 3 people in full view."""
    scene = generate_scene(3, 1.0, 30.0, seed=9).in_layout(request.param)
    views = project_scene(scene, RIG, noise=None)
    return request.param, RIG.cameras[0].world_to_camera(scene.joints), views[0].keypoints, views[1].keypoints


def noisy(kp: np.ndarray, rng: np.random.Generator, sigma: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    out = kp + rng.normal(0, sigma, kp.shape)
    return out, np.where(np.isfinite(out).all(-1), 0.9, 0.0)


def none(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=np.int64)


def test_two_view_residual_is_zero_on_exact_rays_and_nan_behind():
    def rays(point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        in1 = RIG.cam1_from_cam0.apply(point)
        return point / point[:, 2:], in1 / in1[:, 2:]

    point = np.array([[0.3, -0.2, 4.0]])
    est, res = two_view_residual(*rays(point), RIG.cam1_from_cam0, np.ones(2), np.ones(2))
    np.testing.assert_allclose(est, point, atol=1e-9)
    assert res[0] < 1e-9
    behind, res_behind = two_view_residual(*rays(point * [1, 1, -1]), RIG.cam1_from_cam0, np.ones(2), np.ones(2))
    assert np.isnan(res_behind[0]) and np.isnan(behind).all()


@pytest.mark.parametrize("view", [0, 1])
@pytest.mark.parametrize("kind", ["body", "arms", "legs"])
def test_a_swap_in_one_view_is_repaired_with_the_other_views_labels(scene_views, kind, view):
    layout_name, truth, kp0_all, kp1_all = scene_views
    layout = get_layout(layout_name)
    t = 12
    rng = np.random.default_rng(3)
    (kp0, c0), (kp1, c1) = noisy(kp0_all[t], rng), noisy(kp1_all[t], rng)
    clean = (kp0.copy(), kp1.copy())
    group = {"arms": 0, "legs": 1}.get(kind)
    swapped = [kp0, kp1][view]
    if kind == "body":
        swapped[1] = swapped[1][layout.flip_permutation()]
    else:
        mask = np.zeros(len(layout.swap_groups), bool)
        mask[group] = True
        swapped[1] = swap_limbs(swapped[1], mask, layout)
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(3), kp1, c1, none(3), layout)
    np.testing.assert_array_equal(match.i0, [0, 1, 2])
    np.testing.assert_array_equal(match.i1, [0, 1, 2])
    assert match.swap_repairs == 1 and match.swapped[1, view] and not match.swapped[1, 1 - view]
    for out, ref in ((match.kp0, clean[0]), (match.kp1, clean[1])):
        kept = np.isfinite(out[1]).all(-1)
        assert kept.sum() >= 15
        np.testing.assert_allclose(out[1][kept], ref[1][kept])  # labels restored, pixels untouched
    # a person nobody swapped is left alone
    np.testing.assert_allclose(np.nan_to_num(match.kp1[0]), np.nan_to_num(np.where(
        np.isfinite(match.kp1[0]), clean[1][0], np.nan)))


def test_the_previous_pose_decides_whose_labels_a_whole_body_flip_keeps(scene_views):
    """Two views flipped against each other are consistent either way; without a face joint to tell front from
    back, view 0 wins, and the tracked pose of the last frame overrules that when view 0 is the flipped one."""
    layout_name, truth, kp0_all, kp1_all = scene_views
    layout = get_layout(layout_name)
    t = 20
    rng = np.random.default_rng(4)
    (kp0, c0), (kp1, c1) = noisy(kp0_all[t], rng), noisy(kp1_all[t], rng)
    facing = layout.joint_index({"coco17": "nose", "h36m17": "neck"}[layout_name])
    for kp, c in ((kp0, c0), (kp1, c1)):
        kp[:, facing], c[:, facing] = np.nan, 0.0
    right = layout.right[-1]
    kp0[1] = kp0[1][layout.flip_permutation()]  # view 0 flipped the whole body of person 1
    blind = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(3), kp1, c1, none(3), layout)
    assert blind.swapped[1].tolist() == [False, True]  # no evidence: view 0's (wrong) labels kept
    tracked = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(3), kp1, c1, none(3), layout,
                          previous=truth[t - 1])
    assert tracked.swapped[1].tolist() == [True, False]
    np.testing.assert_allclose(tracked.kp1[1, right], kp1[1, right])
    np.testing.assert_allclose(tracked.kp0[1, right], kp0[1, layout.flip_permutation()[right]])


def test_a_joint_the_views_disagree_on_is_dropped_not_the_person(scene_views):
    layout_name, _, kp0_all, kp1_all = scene_views
    t = 5
    rng = np.random.default_rng(5)
    (kp0, c0), (kp1, c1) = noisy(kp0_all[t], rng, 1.0), noisy(kp1_all[t], rng, 1.0)
    joint = 9
    kp1[2, joint] += [0.0, 70.0]  # 70 px off in one view (mostly across the near-horizontal epipolar lines)
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(3), kp1, c1, none(3), get_layout(layout_name))
    assert len(match.i0) == 3
    assert np.isnan(match.kp0[2, joint]).all() and match.conf1[2, joint] == 0.0
    assert match.dropped_joints >= 1 and np.isfinite(match.kp0[2]).all(-1).sum() >= 15
    off = MatchConfig(drop_bad_joints=False)
    kept = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(3), kp1, c1, none(3), get_layout(layout_name),
                       off)
    assert kept.dropped_joints == 0 and np.isfinite(kept.kp0[2, joint]).all()


def _scaled_rig(factor: float) -> Rig:
    """The demo rig with every image `factor` times larger (same optics otherwise)."""
    cams = []
    for cam in RIG.cameras:
        m = cam.model
        K = m.K.copy()
        K[:2] *= factor
        model = CameraModel(K=K, dist=m.dist, distortion_model=m.distortion_model, width=int(m.width * factor),
                            height=int(m.height * factor))
        cams.append(RigCamera(cam.name, model, cam.cam_from_world, cam.frame_id))
    return Rig(RIG.kind, tuple(cams))


def test_the_gate_scales_with_the_image():
    """The same relative detector error costs the same on a small and on an 8x larger image (a fixed pixel gate
    would be 8x looser on the small one) and is matched on both."""
    costs = []
    for factor in (0.5, 4.0):
        rig = _scaled_rig(factor)
        scene = generate_scene(3, 0.5, 30.0, seed=9)
        v0, v1 = project_scene(scene, rig, noise=None)
        rng = np.random.default_rng(6)
        sigma = 0.01 * 400 * factor  # 1 % of a person's height in the image
        kp0, c0 = noisy(v0.keypoints[3], rng, sigma)
        kp1, c1 = noisy(v1.keypoints[3], rng, sigma)
        order = np.array([2, 0, 1])
        match = match_views(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0, kp0, c0, none(3),
                            kp1[order], c1[order], none(3), get_layout("h36m17"))
        assert len(match.i0) == 3
        np.testing.assert_array_equal(order[match.i1], match.i0)
        costs.append(match.cost)
    np.testing.assert_allclose(costs[0], costs[1], rtol=0.05)


def test_a_lone_person_is_matched_unless_geometry_rules_it_out():
    scene = generate_scene(1, 0.5, 30.0, seed=2)
    v0, v1 = project_scene(scene, RIG, noise=None)
    rng = np.random.default_rng(7)
    kp0, c0 = noisy(v0.keypoints[0], rng, 1.0)
    kp1, c1 = noisy(v1.keypoints[0], rng, 1.0)
    layout = get_layout("h36m17")
    kp1_off = kp1 + [0.0, 60.0]  # e.g. a poor calibration: every joint 60 px off the epipolar lines
    lone = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(1), kp1_off, c1, none(1), layout)
    assert len(lone.i0) == 1 and lone.cost[0] > MatchConfig().gate
    impostor = rng.uniform([0, 0], [1280, 720], (1, 17, 2))
    ruled_out = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, none(1), impostor, c1, none(1), layout)
    assert len(ruled_out.i0) == 0


def test_disagreeing_track_ids_lose_to_geometry_and_are_counted(scene_views):
    layout_name, _, kp0_all, kp1_all = scene_views
    rng = np.random.default_rng(8)
    (kp0, c0), (kp1, c1) = noisy(kp0_all[7], rng), noisy(kp1_all[7], rng)
    ids0, ids1 = np.array([0, 1, 2]), np.array([2, 1, 0])  # two independent trackers numbered them differently
    match = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, ids0, kp1, c1, ids1, get_layout(layout_name))
    np.testing.assert_array_equal(match.i1, match.i0)
    assert match.id_disagreements == 2
    agree = match_views(CAM0, CAM1, RIG.cam1_from_cam0, kp0, c0, ids0, kp1, c1, ids0, get_layout(layout_name))
    assert agree.id_disagreements == 0 and len(agree.i0) == 3


def test_limit_people_keeps_the_most_confident():
    conf = np.array([[0.5] * 17, [0.9] * 17, [0.1] * 17, [0.7] * 17])
    np.testing.assert_array_equal(limit_people(conf, 2), [1, 3])
    np.testing.assert_array_equal(limit_people(conf, 10), [0, 1, 2, 3])


def _crowd(count: int, seed: int = 0):
    scene = generate_scene(count, 0.1, 30.0, seed=seed, room=(40.0, 40.0))
    rig = make_rig("demo", room=(40.0, 40.0))
    v0, v1 = project_scene(scene, rig, noise=None)
    views = []
    for v in (v0, v1):
        keep = np.flatnonzero(v.visible[0])
        views.append((v.keypoints[0, keep], np.where(np.isfinite(v.keypoints[0, keep]).all(-1), 0.9, 0.0)))
    return rig, views


def test_crowd_candidates_stay_linear_in_people():
    rig, ((kp0, c0), (kp1, c1)) = _crowd(300)
    assert len(kp0) > 100 and len(kp1) > 100
    seen: list[int] = []
    original = cross_view._assign

    def spy(c0_, *args):
        seen.append(len(c0_))
        return original(c0_, *args)

    cross_view._assign = spy
    try:
        match = match_views(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0, kp0, c0,
                            none(len(kp0)), kp1, c1, none(len(kp1)), get_layout("h36m17"))
    finally:
        cross_view._assign = original
    k = MatchConfig().max_candidates
    assert seen[0] <= k * (len(kp0) + len(kp1))
    assert len(match.i0) >= 0.8 * min(len(kp0), len(kp1))


def test_pipeline_cuts_views_to_max_people_and_counts_them():
    rig, ((kp0, c0), (kp1, c1)) = _crowd(120, seed=1)
    setup = CameraSetup(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0)
    c0 = c0.copy()
    c0[:5] *= 0.5  # the least confident people of view 0 are the ones cut
    views = [ViewInput(0, f"cam{i}", "h36m17", [PersonInput(-1, k[:, 0], k[:, 1], c) for k, c in zip(kp, cf,
                                                                                                      strict=True)])
             for i, (kp, cf) in enumerate(((kp0, c0), (kp1, c1)))]
    result = SkeletonPipeline(max_people=20).process(setup, *views)
    assert result.problems[Problem.PEOPLE_OVER_LIMIT] == len(kp0) + len(kp1) - 40
    assert len(result.coarse.track_ids) <= 20
    with pytest.raises(ValueError, match="max_people"):
        SkeletonPipeline(max_people=0)


def _mpjpe(layout: str, body: float, limb: float, repair: bool, rig: Rig = RIG) -> float:
    return swap_mpjpe(rig, layout, body, limb, seed=0, seconds=3.0, repair=repair)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_one_view_swaps_cost_little_once_repaired(layout):
    """Issue 10: 5 % whole-body and 5 % per-limb swaps in one view (plus 3 % outlier joints in both) stay within
    10 % of the swap-free run; without the repair they do not."""
    reference = _mpjpe(layout, 0.0, 0.0, True)
    repaired = _mpjpe(layout, 0.05, 0.05, True)
    unrepaired = _mpjpe(layout, 0.05, 0.05, False)
    assert repaired <= 1.10 * reference, (repaired, reference)
    assert unrepaired > 1.10 * reference, (unrepaired, reference)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_swaps_along_the_epipolar_lines_are_settled_by_the_track_in_each_image(layout):
    """The narrow rig (cameras side by side): many limb swaps leave both pairings fitting the two views. Each view's
    keypoints against the tracked pose's projection into it tell which view jumped; within 10 % of the swap-free
    run (h36m17 was +12 % with the 3D track alone)."""
    rig = make_rig("narrow")
    reference = _mpjpe(layout, 0.0, 0.0, True, rig)
    repaired = _mpjpe(layout, 0.05, 0.05, True, rig)
    assert repaired <= 1.10 * reference, (repaired, reference)


def test_image_evidence_names_the_view_that_swapped():
    layout = get_layout("h36m17")
    groups = swap_groups(layout)
    rng = np.random.default_rng(0)
    projected = rng.uniform(100, 500, size=(2, 17, 2))
    pixels = projected + rng.normal(scale=1.0, size=projected.shape)
    arms = next(g for g in range(groups.count) if layout.joint_names[groups.roots[g, 0]] == "l_shoulder")
    pixels[1] = mirror_groups(pixels[1], groups, np.arange(groups.count) == arms)  # person 1's arms swapped here
    swapped, clear = image_swaps(pixels, projected, np.full(2, 400.0), groups)
    assert not swapped[0].any() and swapped[1, arms] and swapped[1].sum() == 1
    assert clear[0].all() and clear[1, arms]
    # a group whose left and right project onto each other cannot be told in this view
    same_place = projected.copy()
    same_place[:, groups.members[arms][groups.members[arms] >= 0]] = 300.0
    assert not image_swaps(same_place, same_place, np.full(2, 400.0), groups)[1][:, arms].any()

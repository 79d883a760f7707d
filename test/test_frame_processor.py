"""Keypoint validation and the plain per-frame pipeline (no rclpy): truth recovery, ids, frames, refinement."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.body.plausibility import PlausibilityCheck
from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
from cvpose_ros.geometry.camera import RigidTransform
from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import FrameError, PersonInput, Problem, ViewInput, validate_view

RIG = make_rig("demo")
SETUP = CameraSetup(RIG.cameras[0].model, RIG.cameras[1].model, RIG.cam1_from_cam0)
SCENE = generate_scene(3, 1.0, 30.0, seed=9)  # everyone fully visible in both views all the time
VIEWS = project_scene(SCENE, RIG, noise=None)
TRUTH_CAM0 = RIG.cameras[0].world_to_camera(SCENE.joints)


def view(cam: int, t: int, order=None, layout: str = "h36m17", stamp: int = 0) -> ViewInput:
    v = VIEWS[cam]
    order = range(v.keypoints.shape[1]) if order is None else order
    people = [PersonInput(-1, v.keypoints[t, p, :, 0], v.keypoints[t, p, :, 1],
                          np.where(np.isfinite(v.keypoints[t, p, :, 0]), 0.9, 0.0)) for p in order]
    return ViewInput(stamp, f"cam{cam}", layout, people)


def person(n=17, value=100.0, conf=0.9) -> PersonInput:
    return PersonInput(-1, np.full(n, value), np.full(n, value), np.full(n, conf))


# ---------------------------------------------------------------------------------------------------------------
# validate_view
def test_wrong_lengths_drop_only_that_person():
    bad_x = PersonInput(-1, np.zeros(16), np.zeros(17), np.ones(17))
    bad_conf = PersonInput(-1, np.zeros(17), np.zeros(17), np.ones(3))
    out = validate_view(ViewInput(0, "c", "", [person(), bad_x, bad_conf, person(value=5.0)]), "h36m17", 0.1)
    assert out.num_people == 2 and out.problems[Problem.BAD_ARRAY_SIZES] == 2
    np.testing.assert_array_equal(out.pixels[1], np.full((17, 2), 5.0))


def test_nan_and_inf_mark_joints_missing_and_are_counted_unless_documented():
    p = person()
    p.x[2], p.y[5], p.confidence[7] = np.nan, np.inf, np.nan
    documented = person()
    documented.x[3] = documented.y[3] = np.nan
    documented.confidence[3] = 0.0  # the message's own "missing" marker: not a problem
    out = validate_view(ViewInput(0, "c", "h36m17", [p]), "h36m17", 0.1)
    assert out.problems[Problem.NAN_KEYPOINTS] == 1
    assert np.isnan(out.pixels[0, [2, 5, 7]]).all() and (out.confidence[0, [2, 5, 7]] == 0).all()
    assert validate_view(ViewInput(0, "c", "h36m17", [documented]), "h36m17", 0.1).problems[
        Problem.NAN_KEYPOINTS] == 0


def test_low_confidence_and_too_few_joints():
    p = person(conf=0.05)
    p.confidence[:6] = 0.5
    out = validate_view(ViewInput(0, "c", "h36m17", [p]), "h36m17", 0.1, min_valid_joints=6)
    assert out.num_people == 1 and (out.confidence[0] > 0).sum() == 6
    p.confidence[0] = 0.0
    out = validate_view(ViewInput(0, "c", "h36m17", [p]), "h36m17", 0.1, min_valid_joints=6)
    assert out.num_people == 0 and out.problems[Problem.TOO_FEW_JOINTS] == 1


def test_layout_resolution():
    with pytest.raises(FrameError, match="body25") as err:
        validate_view(ViewInput(0, "c", "body25", [person()]), "h36m17", 0.1)
    assert err.value.problem is Problem.UNKNOWN_LAYOUT
    coco = validate_view(ViewInput(0, "c", "coco17", [person()]), "h36m17", 0.1)  # message wins over default
    h36m = validate_view(ViewInput(0, "c", "", [person()]), "coco17", 0.1)  # empty: default
    assert coco.num_people == h36m.num_people == 1


# ---------------------------------------------------------------------------------------------------------------
# SkeletonPipeline
def test_pipeline_recovers_truth_with_stable_ids_in_the_reference_frame():
    world_from_cam0 = RIG.cameras[0].cam_from_world.inverse()
    setup = CameraSetup(SETUP.cam0, SETUP.cam1, SETUP.cam1_from_cam0, reference_from_cam0=world_from_cam0)
    pipeline = SkeletonPipeline()
    rng = np.random.default_rng(0)
    first_ids = None
    for t in range(0, 30, 3):
        order = rng.permutation(3)
        result = pipeline.process(setup, view(0, t), view(1, t, order))
        assert not result.refined_applied and result.processing_ms > 0
        np.testing.assert_array_equal(result.refined.joints, result.coarse.joints)
        np.testing.assert_allclose(result.coarse.joints, SCENE.joints[t], atol=1e-6)  # outputs in the world frame
        assert (result.coarse.reprojection_error < 1e-3).all()
        first_ids = result.coarse.track_ids if first_ids is None else first_ids
        np.testing.assert_array_equal(result.coarse.track_ids, first_ids)


def test_person_seen_by_one_camera_is_reported_not_estimated():
    result = SkeletonPipeline().process(SETUP, view(0, 0), view(1, 0, order=[0, 2]))
    assert len(result.coarse.track_ids) == 2 and result.problems[Problem.UNMATCHED_PEOPLE] == 1
    empty = SkeletonPipeline().process(SETUP, ViewInput(0, "c", "", []), ViewInput(0, "c", "", []))
    assert empty.refined.joints.shape == (0, 17, 3) and empty.problems[Problem.NO_PEOPLE] == 1


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two tiny real CV-UGCN checkpoints: one whose output layer is zero (residual 0) and one untrained."""
    pytest.importorskip("torch")
    from tiny_checkpoint import make_tiny_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    return {name: make_tiny_checkpoint(folder / f"{name}.pt", zero_residual=name == "zero_residual")
            for name in ("zero_residual", "untrained")}


def test_pipeline_refines_all_people_in_one_batch(checkpoints):
    from cvpose_ros.refine.refiner import Refiner

    zero = SkeletonPipeline(Refiner(checkpoints["zero_residual"], "cpu"))
    result = zero.process(SETUP, view(0, 4), view(1, 4, [1, 2, 0]))
    assert result.refined_applied and len(result.refined.track_ids) == 3
    # zero residual: refined = coarse up to fusing the two views' DLT estimates
    np.testing.assert_allclose(result.refined.joints, result.coarse.joints, atol=1e-6)
    untrained = SkeletonPipeline(Refiner(checkpoints["untrained"], "cpu")).process(SETUP, view(0, 4), view(1, 4))
    moved = np.linalg.norm(untrained.refined.joints - untrained.coarse.joints, axis=-1)
    assert np.isfinite(moved).all() and moved.mean() > 1e-4  # the network really ran on every person
    np.testing.assert_array_equal(untrained.refined.track_ids, untrained.coarse.track_ids)


def test_reference_frame_transform_matches_camera_pose():
    shifted = CameraSetup(SETUP.cam0, SETUP.cam1, SETUP.cam1_from_cam0,
                          RigidTransform.from_quaternion([0, 0, np.sin(0.3), np.cos(0.3)], [1.0, 2.0, 3.0]))
    a = SkeletonPipeline().process(SETUP, view(0, 2), view(1, 2))
    b = SkeletonPipeline().process(shifted, view(0, 2), view(1, 2))
    np.testing.assert_allclose(b.coarse.joints, shifted.reference_from_cam0.apply(a.coarse.joints), atol=1e-9)
    np.testing.assert_allclose(a.coarse.joints, TRUTH_CAM0[2], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Layouts and the do-no-harm guard
COCO_SCENE = SCENE.in_layout("coco17")
COCO_VIEWS = project_scene(COCO_SCENE, RIG, noise=None)


def coco_view(cam: int, t: int) -> ViewInput:
    v = COCO_VIEWS[cam]
    people = [PersonInput(-1, v.keypoints[t, p, :, 0], v.keypoints[t, p, :, 1], np.full(17, 0.9))
              for p in range(v.keypoints.shape[1])]
    return ViewInput(0, f"cam{cam}", "coco17", people)


def test_coco17_in_coco17_out():
    result = SkeletonPipeline().process(SETUP, coco_view(0, 0), coco_view(1, 0))
    assert result.layout == "coco17" and len(result.refined.joints) == 3
    truth = RIG.cameras[0].world_to_camera(COCO_SCENE.joints[0])
    err = np.linalg.norm(result.refined.joints[:, None] - truth[None], axis=-1).mean(axis=-1).min(axis=1)
    assert (err < 1e-6).all()


def test_views_in_different_layouts_meet_in_h36m17():
    result = SkeletonPipeline().process(SETUP, coco_view(0, 0), view(1, 0))
    assert result.layout == "h36m17" and result.problems[Problem.LAYOUT_MISMATCH] == 1
    assert len(result.refined.joints) == 3
    truth = TRUTH_CAM0[0]  # limbs are exact in both layouts: the l_wrist matches h36m17's l_wrist
    wrist_err = np.linalg.norm(result.refined.joints[:, None, 13] - truth[None, :, 13], axis=-1).min(axis=1)
    assert (wrist_err < 1e-6).all()


def test_refiner_of_another_layout_is_not_used(tmp_path):
    from tiny_checkpoint import make_tiny_checkpoint

    from cvpose_ros.refine.refiner import Refiner

    refiner = Refiner(make_tiny_checkpoint(tmp_path / "h.pt", False, residual_std=0.5), device="cpu")
    result = SkeletonPipeline(refiner).process(SETUP, coco_view(0, 0), coco_view(1, 0))
    assert not result.refined_applied
    np.testing.assert_array_equal(result.refined.joints, result.coarse.joints)


def test_guard_keeps_agreeing_views_close_to_the_evidence(tmp_path):
    """A refiner that moves joints far (random output layer) cannot pull a pose off two agreeing views; switching
    the guard off shows how far it would have gone."""
    from tiny_checkpoint import make_tiny_checkpoint

    from cvpose_ros.geometry.triangulation import reprojection_error
    from cvpose_ros.refine.guard import EvidenceGuard
    from cvpose_ros.refine.refiner import Refiner

    refiner = Refiner(make_tiny_checkpoint(tmp_path / "wild.pt", False, residual_std=0.5), device="cpu")
    guard = EvidenceGuard(min_px=3.0, agree_fraction=1.0, factor=2.0, free_above_m=0.0)
    guarded = SkeletonPipeline(refiner, guard=guard).process(SETUP, view(0, 0), view(1, 0))
    free = SkeletonPipeline(refiner, guard=EvidenceGuard(enabled=False)).process(SETUP, view(0, 0), view(1, 0))
    assert guarded.refined_applied and guarded.guarded_joints > 0 and free.guarded_joints == 0

    def worst_reprojection(joints: np.ndarray) -> float:
        kp0 = VIEWS[0].keypoints[0]  # same person order: the pipeline keeps the detection order with ids 0..2
        err = reprojection_error(SETUP.cam0, joints[:, None], kp0[None])  # (P, P, J)
        return float(np.nanmin(np.nanmean(err, axis=-1), axis=1).max())

    assert worst_reprojection(free.refined.joints) > 20.0
    assert worst_reprojection(guarded.refined.joints) <= 2 * guard.min_px + 1e-6


# ---------------------------------------------------------------------------------------------------------------
# Plausibility (issue 11): far-away or impossible people are dropped and counted, never output
def far_views(distance_m: float, scale: float = 1.0) -> tuple[ViewInput, ViewInput]:
    """Both views of SCENE's people moved `distance_m` further along camera 0's axis (and scaled): consistent
    keypoints that triangulate exactly there."""
    cam0 = TRUTH_CAM0[0]
    centre = cam0.reshape(-1, 3).mean(axis=0)
    return views_of((cam0 - centre) * scale + centre + np.array([0.0, 0.0, distance_m]))


def views_of(people_cam0: np.ndarray) -> tuple[ViewInput, ViewInput]:
    """Both views' exact keypoints (confidence 0.9) of h36m17 people (P, 17, 3) given in camera 0's frame."""
    views = []
    for c in (0, 1):
        pts = people_cam0 if c == 0 else RIG.cam1_from_cam0.apply(people_cam0)
        px = SETUP.cam0.project(pts) if c == 0 else SETUP.cam1.project(pts)
        views.append(ViewInput(0, f"cam{c}", "h36m17", [PersonInput(-1, p[:, 0], p[:, 1], np.full(17, 0.9))
                                                         for p in px]))
    return views[0], views[1]


def test_a_consistent_crowd_600_m_away_is_dropped_and_counted():
    pipeline = SkeletonPipeline()
    near = pipeline.process(SETUP, *far_views(0.0))
    assert len(near.refined.track_ids) == 3 and not near.problems[Problem.IMPLAUSIBLE_PERSON]
    far = pipeline.process(SETUP, *far_views(600.0))
    assert len(far.refined.track_ids) == 0 and len(far.coarse.track_ids) == 0
    assert far.problems[Problem.IMPLAUSIBLE_PERSON] == 3
    assert len(pipeline.process(SETUP, *far_views(600.0, scale=100.0)).refined.track_ids) == 0


def test_giants_are_dropped_even_in_range():
    pipeline = SkeletonPipeline()
    result = pipeline.process(SETUP, *far_views(4.0, scale=4.0))  # 7 m tall people 10 m away
    assert len(result.refined.track_ids) == 0 and result.problems[Problem.IMPLAUSIBLE_PERSON] == 3
    lenient = SkeletonPipeline(plausibility=PlausibilityCheck(max_range_m=30.0, bones=False))
    assert len(lenient.process(SETUP, *far_views(4.0, scale=4.0)).refined.track_ids) == 3


def test_one_wrong_wrist_is_blanked_and_counted_the_person_kept():
    """A wrist whose keypoints put it 1 m off its forearm in 3D: the person is still published, that wrist (and
    nothing else) is missing with confidence 0 in both outputs, and `implausible_joints` counts it."""
    wrong = TRUTH_CAM0[0].copy()
    wrong[0, 16] += np.array([0.0, 1.0, 0.3])  # h36m17 r_wrist
    result = SkeletonPipeline().process(SETUP, *views_of(wrong))
    assert len(result.refined.track_ids) == 3 and not result.problems[Problem.IMPLAUSIBLE_PERSON]
    assert result.problems[Problem.IMPLAUSIBLE_JOINTS] == 1
    for skeletons in (result.coarse, result.refined):
        missing = ~np.isfinite(skeletons.joints).all(axis=-1)
        assert missing.sum() == 1 and skeletons.confidence[missing].tolist() == [0.0]

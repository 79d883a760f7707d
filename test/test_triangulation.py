"""Batched weighted DLT and the two-view coarse pose: exactness on random rigs, frames, missing joints, validation."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.geometry.camera import CameraModel, RigidTransform, projection_matrix
from cvpose_ros.geometry.triangulation import (
    PairTriangulation,
    reproject,
    reprojection_error,
    triangulate_dlt,
    triangulate_pair,
)

pytestmark = pytest.mark.filterwarnings("error")

NUM_JOINTS = 17
K_HD = np.array([[1100.0, 0.0, 958.0], [0.0, 1096.0, 541.0], [0.0, 0.0, 1.0]])


def random_people(rng: np.random.Generator, people: int) -> np.ndarray:
    """(P, 17, 3) joint clouds of body size around random positions near the world origin (z up)."""
    centres = rng.uniform([-1.5, -1.5, 0.9], [1.5, 1.5, 1.1], (people, 1, 3))
    return centres + rng.normal(0.0, [0.25, 0.25, 0.45], (people, NUM_JOINTS, 3))


def random_rig(rng: np.random.Generator, views: int) -> list[RigidTransform]:
    """cam_from_world of `views` cameras 3.5-7 m from the origin, 0.5-3 m high, looking at the scene centre."""
    azimuth = rng.uniform(0, 2 * np.pi, views)
    distance = rng.uniform(3.5, 7.0, views)
    height = rng.uniform(0.5, 3.0, views)
    eyes = np.stack([distance * np.cos(azimuth), distance * np.sin(azimuth), height], axis=1)
    targets = rng.uniform([-0.3, -0.3, 0.8], [0.3, 0.3, 1.2], (views, 3))
    return [RigidTransform.look_at(eye, target) for eye, target in zip(eyes, targets, strict=True)]


@pytest.mark.parametrize("views", [2, 4])
def test_dlt_recovers_noiseless_joints_on_many_random_rigs(views: int) -> None:
    rng = np.random.default_rng(views)
    rigs, people = 40, 5
    truth = np.stack([random_people(rng, people) for _ in range(rigs)])  # (R, P, J, 3)
    proj = np.stack([np.stack([K_HD @ projection_matrix(c) for c in random_rig(rng, views)]) for _ in range(rigs)])
    homogeneous = np.concatenate([truth, np.ones(truth.shape[:-1] + (1,))], axis=-1)
    image = np.einsum("rvab,rpjb->rpvja", proj, homogeneous)  # (R, P, V, J, 3)
    pixels = image[..., :2] / image[..., 2:]
    weights = rng.uniform(0.2, 1.0, pixels.shape[:-1])
    # proj (R, 1, V, 3, 4) is shared by all people of a rig: leading dims broadcast.
    estimate = triangulate_dlt(proj[:, None], pixels, weights)
    assert estimate.shape == truth.shape
    assert np.abs(estimate - truth).max() < 1e-6


def test_dlt_weights_decide_between_inconsistent_views() -> None:
    rng = np.random.default_rng(5)
    truth = random_people(rng, 1)[0]
    proj = np.stack([projection_matrix(c) for c in random_rig(rng, 3)])
    image = np.einsum("vab,jb->vja", proj, np.concatenate([truth, np.ones((NUM_JOINTS, 1))], axis=1))
    normalised = image[..., :2] / image[..., 2:]
    normalised[2] += 0.05  # one view is badly off
    trusted = triangulate_dlt(proj, normalised, np.array([[1.0] * NUM_JOINTS, [1.0] * NUM_JOINTS, [1e-9] * NUM_JOINTS]))
    equal = triangulate_dlt(proj, normalised, np.ones((3, NUM_JOINTS)))
    assert np.abs(trusted - truth).max() < 1e-6
    assert np.linalg.norm(equal - truth, axis=-1).min() > 1e-3


def test_dlt_needs_two_weighted_views() -> None:
    rng = np.random.default_rng(9)
    proj = np.stack([projection_matrix(c) for c in random_rig(rng, 3)])
    truth = random_people(rng, 1)[0]
    image = np.einsum("vab,jb->vja", proj, np.concatenate([truth, np.ones((NUM_JOINTS, 1))], axis=1))
    points = image[..., :2] / image[..., 2:]
    weights = np.ones((3, NUM_JOINTS))
    weights[1:, 0] = 0.0  # joint 0: one view only
    weights[0, 1] = 0.0  # joint 1: two views left
    points[0, 2] = np.nan  # joint 2: NaN in one view, two left
    points[:2, 3] = np.nan  # joint 3: NaN in two views
    weights[0, 4], weights[1, 4] = np.nan, -1.0  # joint 4: one usable weight
    estimate = triangulate_dlt(proj, points, weights)
    assert np.isnan(estimate[[0, 3, 4]]).all()
    assert np.abs(estimate[[1, 2, 5]] - truth[[1, 2, 5]]).max() < 1e-6


@pytest.mark.parametrize(
    ("proj_shape", "points_shape", "weights_shape", "message"),
    [
        ((2, 3, 3), (2, 17, 2), (2, 17), "proj"),
        ((2, 3, 4), (2, 17, 3), (2, 17), "points"),
        ((2, 3, 4), (2, 17, 2), (2, 16), "weights"),
        ((3, 3, 4), (2, 17, 2), (2, 17), "views"),
    ],
)
def test_dlt_rejects_bad_shapes(proj_shape: tuple, points_shape: tuple, weights_shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        triangulate_dlt(np.zeros(proj_shape), np.zeros(points_shape), np.ones(weights_shape))


def two_view_scene(seed: int, people: int = 6) -> tuple:
    """Two distorted cameras, their rig transform, world people and the noiseless raw pixels."""
    rng = np.random.default_rng(seed)
    cam0 = CameraModel(K_HD, [-0.31, 0.11, 8e-4, -6e-4, -0.02], "plumb_bob", 1920, 1080)
    cam1 = CameraModel(K_HD * [[0.9], [0.9], [1]], [0.02, -0.01, 0.003, -0.001], "equidistant", 1920, 1080)
    cam0_from_world, cam1_from_world = random_rig(rng, 2)
    world = random_people(rng, people)
    kp0 = cam0.project(cam0_from_world.apply(world))
    kp1 = cam1.project(cam1_from_world.apply(world))
    cam1_from_cam0 = cam1_from_world.compose(cam0_from_world.inverse())
    return cam0, cam1, cam0_from_world, cam1_from_world, cam1_from_cam0, world, kp0, kp1


def test_pair_recovers_both_frames_and_they_agree() -> None:
    for seed in range(10):
        cam0, cam1, c0_w, c1_w, c1_c0, world, kp0, kp1 = two_view_scene(seed)
        conf = np.full(kp0.shape[:-1], 0.8)
        result = triangulate_pair(cam0, cam1, c1_c0, kp0, conf, kp1, conf)
        assert isinstance(result, PairTriangulation)
        assert result.valid.all()
        assert np.abs(result.cam0 - c0_w.apply(world)).max() < 1e-6
        assert np.abs(result.cam1 - c1_w.apply(world)).max() < 1e-6
        assert np.abs(result.cam1 - c1_c0.apply(result.cam0)).max() < 1e-6
        assert result.reprojection_error.max() < 1e-4


def test_dlt_is_exactly_frame_independent_under_noise() -> None:
    """Noisy rays give the same points, rigidly moved, whichever frame the DLT is solved in (least squares over
    frame-independent row scales; the old unit-norm SVD solution disagreed by up to 2 % of its error). This is what
    lets `triangulate_pair` solve once and move the points into camera 1's frame."""
    cam0, cam1, c0_w, _, c1_c0, world, kp0, kp1 = two_view_scene(8, people=40)
    rng = np.random.default_rng(2)
    noisy = np.stack([cam0.undistort_points(kp0 + rng.normal(0.0, 3.0, kp0.shape)),
                      cam1.undistort_points(kp1 + rng.normal(0.0, 3.0, kp1.shape))], axis=1)
    conf = rng.uniform(0.3, 1.0, (kp0.shape[0], 2, NUM_JOINTS))
    identity = projection_matrix(RigidTransform.identity())
    in_cam0 = triangulate_dlt(np.stack([identity, projection_matrix(c1_c0)]), noisy, conf)
    in_cam1 = triangulate_dlt(np.stack([projection_matrix(c1_c0.inverse()), identity]), noisy, conf)
    error = np.linalg.norm(in_cam0 - c0_w.apply(world), axis=-1)
    assert error.mean() > 5e-3  # the noise matters ...
    assert np.abs(in_cam1 - c1_c0.apply(in_cam0)).max() < 1e-9  # ... but not the frame the DLT was solved in
    result = triangulate_pair(cam0, cam1, c1_c0, kp0 + 0.0, np.ones(kp0.shape[:-1]), kp1, np.ones(kp0.shape[:-1]))
    assert np.abs(result.cam1 - c1_c0.apply(result.cam0)).max() < 1e-9


def test_dlt_parallel_rays_are_nan() -> None:
    """Two views whose rays are parallel (a point at infinity) cannot be triangulated: NaN, no warning."""
    baseline = RigidTransform(np.eye(3), np.array([-0.5, 0.0, 0.0]))  # camera 1: 0.5 m along x, same orientation
    proj = np.stack([projection_matrix(RigidTransform.identity()), projection_matrix(baseline)])
    direction = np.array([[0.1, -0.2], [0.0, 0.3]])  # the same normalised direction in both views = parallel rays
    points = np.stack([direction, direction])  # (2 views, 2 joints, 2)
    estimate = triangulate_dlt(proj, points, np.ones((2, 2)))
    assert np.isnan(estimate).all()
    slightly_apart = points.copy()
    slightly_apart[1, :, 0] -= 0.05  # 0.05 rad of parallax: a point 10 m away
    finite = triangulate_dlt(proj, slightly_apart, np.ones((2, 2)))
    np.testing.assert_allclose(finite[:, 2], 10.0, rtol=1e-9)


def test_pair_reprojection_error_measures_pixel_noise() -> None:
    cam0, cam1, _, _, c1_c0, _, kp0, kp1 = two_view_scene(3)
    noisy1 = kp1 + np.random.default_rng(0).normal(0.0, 4.0, kp1.shape)
    conf = np.ones(kp0.shape[:-1])
    error = triangulate_pair(cam0, cam1, c1_c0, kp0, conf, noisy1, conf).reprojection_error
    assert 0.5 < np.median(error) < 4.0


def test_pair_missing_joints_are_nan_without_warnings() -> None:
    cam0, cam1, _, _, c1_c0, _, kp0, kp1 = two_view_scene(4, people=3)
    conf0, conf1 = np.ones(kp0.shape[:-1]), np.ones(kp1.shape[:-1])
    kp0[0, 5] = np.nan  # NaN pixel
    conf1[1, 7] = 0.0  # zero confidence
    conf0[2, 9] = 0.05  # below min_confidence
    conf1[2, 10] = np.nan  # NaN confidence
    kp1[:, 16] = np.nan  # a joint that only camera 0 sees
    result = triangulate_pair(cam0, cam1, c1_c0, kp0, conf0, kp1, conf1, min_confidence=0.1)
    missing = np.zeros(result.valid.shape, dtype=bool)
    missing[0, 5] = missing[1, 7] = missing[2, 9] = missing[2, 10] = True
    missing[:, 16] = True
    np.testing.assert_array_equal(result.valid, ~missing)
    for field in (result.cam0, result.cam1):
        assert np.isnan(field[missing]).all() and np.isfinite(field[~missing]).all()
    assert np.isnan(result.reprojection_error[missing]).all()
    assert np.isfinite(result.reprojection_error[~missing]).all()


def test_pair_all_missing_and_empty_inputs() -> None:
    cam0, cam1, _, _, c1_c0, _, kp0, kp1 = two_view_scene(5, people=2)
    zero = np.zeros(kp0.shape[:-1])
    result = triangulate_pair(cam0, cam1, c1_c0, kp0, zero, kp1, zero)
    assert not result.valid.any() and np.isnan(result.cam0).all() and np.isnan(result.reprojection_error).all()
    empty = triangulate_pair(cam0, cam1, c1_c0, np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 17, 2)),
                             np.zeros((0, 17)))
    assert empty.cam0.shape == (0, 17, 3) and empty.valid.shape == (0, 17)


def test_pair_joint_behind_a_camera_is_invalid() -> None:
    camera = CameraModel(K_HD, [], "none", 1920, 1080)
    # camera 1 sits 2 m right of camera 0 and looks across at the scene 3 m in front of camera 0
    cam1_from_cam0 = RigidTransform.look_at([2.0, 0.0, 1.0], [0.0, 0.0, 3.0], up=[0.0, -1.0, 0.0])
    points_cam0 = np.array([[[0.2, 0.1, 4.0], [-0.3, 0.4, 3.0], [3.0, 0.2, 1.5]]])  # the last: behind camera 1
    assert cam1_from_cam0.apply(points_cam0)[0, 2, 2] < 0 < points_cam0[0, 2, 2]
    kp0 = points_cam0[..., :2] / points_cam0[..., 2:] @ K_HD[:2, :2].T + K_HD[:2, 2]
    points_cam1 = cam1_from_cam0.apply(points_cam0)
    kp1 = points_cam1[..., :2] / points_cam1[..., 2:] @ K_HD[:2, :2].T + K_HD[:2, 2]  # mirrored through z < 0
    conf = np.ones((1, 3))
    result = triangulate_pair(camera, camera, cam1_from_cam0, kp0, conf, kp1, conf)
    np.testing.assert_array_equal(result.valid, [[True, True, False]])
    assert np.isnan(result.cam0[0, 2]).all() and np.isnan(result.cam1[0, 2]).all()
    np.testing.assert_allclose(result.cam0[0, :2], points_cam0[0, :2], atol=1e-9)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 17, 2), (2, 17), (2, 16, 2), (2, 16)), "same shape"),
        (((2, 17, 2), (2, 17), (2, 17, 2), (2, 16)), "conf"),
        (((2, 17, 2), (17,), (2, 17, 2), (2, 17)), "conf"),
        (((2, 17, 3), (2, 17), (2, 17, 3), (2, 17)), "kp0"),
    ],
)
def test_pair_rejects_bad_shapes(shapes: tuple, message: str) -> None:
    camera = CameraModel(K_HD, [], "none", 1920, 1080)
    kp0, conf0, kp1, conf1 = (np.ones(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        triangulate_pair(camera, camera, RigidTransform.identity(), kp0, conf0, kp1, conf1)


def test_reproject_helpers() -> None:
    cam0, _, c0_w, _, _, world, kp0, _ = two_view_scene(6, people=2)
    np.testing.assert_allclose(reproject(cam0, world, c0_w), kp0, atol=1e-9)
    shifted = kp0 + [3.0, 4.0]
    np.testing.assert_allclose(reprojection_error(cam0, c0_w.apply(world), shifted), 5.0, atol=1e-9)

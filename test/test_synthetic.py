"""Procedural people and camera rigs: determinism, body plausibility, rig geometry, projection and noise."""

import numpy as np
import pytest

from cvpose_ros.body.skeleton import H36M17
from cvpose_ros.devtools import synthetic as syn
from cvpose_ros.geometry.camera import CameraModel


@pytest.fixture(scope="module")
def scene() -> syn.Scene:
    return syn.generate_scene(num_people=4, duration_s=20.0, fps=30.0, seed=7)


def _bone_lengths(joints: np.ndarray) -> np.ndarray:
    bones = H36M17.bones
    return np.linalg.norm(joints[..., bones[:, 1], :] - joints[..., bones[:, 0], :], axis=-1)


def test_deterministic_per_seed() -> None:
    a = syn.generate_scene(2, 3.0, seed=3)
    b = syn.generate_scene(2, 3.0, seed=3)
    c = syn.generate_scene(2, 3.0, seed=4)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert np.abs(a.joints - c.joints).max() > 0.1


def test_shapes_and_ids(scene: syn.Scene) -> None:
    assert scene.joints.shape == (600, 4, 17, 3)
    assert np.isfinite(scene.joints).all()
    assert len(set(scene.track_ids.tolist())) == 4
    np.testing.assert_allclose(np.diff(scene.stamps()), 1 / 30.0)


def test_bodies_are_rigid_symmetric_and_human_sized(scene: syn.Scene) -> None:
    lengths = _bone_lengths(scene.joints)  # (T, P, 16)
    assert lengths.std(axis=0).max() < 1e-9, "bone lengths must not change over time"
    per_person = lengths[0]
    mean_by_child = syn.MEAN_BONE_LENGTHS[H36M17.bones[:, 1]]
    ratio = per_person / mean_by_child
    assert (ratio > 0.8).all() and (ratio < 1.2).all()
    rng = np.random.default_rng(7)  # generate_scene draws the bone lengths first from its seed
    np.testing.assert_allclose(per_person, syn.sample_bone_lengths(4, rng)[:, H36M17.bones[:, 1]], rtol=1e-9)
    assert np.ptp(ratio) > 0.02, "people must differ in size"
    left, right = list(H36M17.left), list(H36M17.right)
    np.testing.assert_allclose(per_person[:, np.array(left) - 1], per_person[:, np.array(right) - 1])


def test_feet_on_floor_and_people_in_room(scene: syn.Scene) -> None:
    lowest_foot = scene.joints[..., [3, 6], 2].min(axis=-1)
    np.testing.assert_allclose(lowest_foot, syn.ANKLE_HEIGHT_M, atol=1e-9)
    xy = scene.joints[..., 0, :2]
    assert (xy > 0).all() and (xy[..., 0] < syn.ROOM_SIZE_M[0]).all() and (xy[..., 1] < syn.ROOM_SIZE_M[1]).all()
    standing_head = scene.joints[..., 10, 2][scene.actions != syn.ACTIONS.index("crouch")]
    assert np.median(standing_head) > 1.45
    crouch = scene.actions == syn.ACTIONS.index("crouch")
    assert crouch.any() and np.median(scene.joints[..., 0, 2][crouch]) < 0.7


def test_walking_moves_with_alternating_legs(scene: syn.Scene) -> None:
    walking = scene.actions == syn.ACTIONS.index("walk")
    speed = np.linalg.norm(np.diff(scene.joints[:, :, 0, :2], axis=0), axis=-1) * scene.fps
    assert 0.7 < np.median(speed[walking[1:]]) < 1.6
    still = scene.actions == syn.ACTIONS.index("stand")
    assert np.median(speed[still[1:]]) < 0.1
    # In a walk the ankles move in antiphase along the walking direction.
    rel = scene.joints[..., 3, :2] - scene.joints[..., 6, :2]
    swing = np.linalg.norm(rel, axis=-1)[walking]
    assert swing.max() > 0.4


def test_only_known_actions_and_valid_arguments() -> None:
    walk_only = syn.generate_scene(2, 5.0, seed=1, actions=("walk",))
    assert (walk_only.actions == 0).all()
    with pytest.raises(ValueError, match="unknown actions"):
        syn.generate_scene(1, 1.0, actions=("dance",))
    with pytest.raises(ValueError):
        syn.generate_scene(0, 1.0)
    with pytest.raises(ValueError, match="unknown rig kind"):
        syn.make_rig("fisheye")


@pytest.mark.parametrize(("kind", "baseline", "angle"), [("wide", 10.0, 135.0), ("narrow", 4.0, 45.0)])
def test_named_rig_geometry(kind: str, baseline: float, angle: float) -> None:
    rig = syn.make_rig(kind)
    centres = [cam.cam_from_world.inverse().t for cam in rig.cameras]
    axes = [cam.cam_from_world.R[2] for cam in rig.cameras]
    assert np.linalg.norm(centres[0] - centres[1]) == pytest.approx(baseline, abs=1e-6)
    assert np.degrees(np.arccos(axes[0] @ axes[1])) == pytest.approx(angle, abs=0.1)


def test_demo_rig_sees_the_room(scene: syn.Scene) -> None:
    rig = syn.make_rig("demo")
    for cam in rig.cameras:
        assert (cam.model.width, cam.model.height) == (1280, 720)
        assert cam.model.distortion_model == "plumb_bob"
    views = syn.project_scene(scene, rig, noise=None)
    for view in views:
        assert view.visible.mean() > 0.9


def test_random_rigs_vary_and_are_seeded() -> None:
    a, b, c = syn.make_rig("random", seed=1), syn.make_rig("random", seed=1), syn.make_rig("random", seed=2)
    np.testing.assert_array_equal(a.cameras[1].cam_from_world.t, b.cameras[1].cam_from_world.t)
    assert not np.allclose(a.cameras[1].cam_from_world.t, c.cameras[1].cam_from_world.t)


def test_relative_pose_and_camera_info_round_trip(scene: syn.Scene) -> None:
    rig = syn.make_rig("random", seed=5)
    world = scene.joints[:5]
    in_cam0 = rig.cameras[0].world_to_camera(world)
    np.testing.assert_allclose(rig.cam1_from_cam0.apply(in_cam0), rig.cameras[1].world_to_camera(world), atol=1e-9)
    info = syn.camera_info_fields(rig.cameras[0])
    model = CameraModel.from_camera_info(info["k"], info["d"], info["distortion_model"], info["width"],
                                         info["height"])
    np.testing.assert_allclose(model.project(in_cam0), rig.cameras[0].model.project(in_cam0))
    assert info["frame_id"] == "cam0_optical_frame" and len(info["p"]) == 12


def test_projection_exact_and_noisy(scene: syn.Scene) -> None:
    rig = syn.make_rig("demo")
    cam = rig.cameras[1]
    exact = syn.project_view(scene, cam, noise=None)
    expected = cam.model.project(cam.world_to_camera(scene.joints))
    ok = exact.confidence > 0
    np.testing.assert_allclose(exact.keypoints[ok], expected[ok])
    assert np.isnan(exact.keypoints[~ok]).all()
    noisy = syn.project_view(scene, cam, noise="cpn_like", seed=3)
    both = ok & (noisy.confidence > 0)
    error = np.linalg.norm(noisy.keypoints - expected, axis=-1)[both]
    assert 2.0 < np.median(error) < 10.0
    assert np.median(noisy.confidence[both]) < 0.97
    again = syn.project_view(scene, cam, noise="cpn_like", seed=3)
    np.testing.assert_array_equal(noisy.keypoints, again.keypoints)

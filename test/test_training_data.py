"""Training data: TwoViewSamples, the Human3.6M loader with the embedded calibration, motion rebuilding."""

import json

import numpy as np
import pytest
import torch

from cvpose_ros.body.skeleton import H36M17
from cvpose_ros.devtools.synthetic import generate_scene
from training.data.h36m import KEEP_FROM_32, default_cameras_path, load_cameras, load_h36m, parse_pairs
from training.data.motion import (
    bone_directions,
    load_motion,
    make_rigs,
    motion_samples,
    rebuild_poses,
    sample_bone_lengths,
    split_sequences,
)
from training.data.samples import (
    SampleError,
    TwoViewSamples,
    concat_samples,
    concat_triangulated,
    subset_triangulated,
    triangulate_samples,
)
from training.train import swap_views

PARENTS = np.array(H36M17.parents)


def _lengths(poses: np.ndarray) -> np.ndarray:
    return np.linalg.norm(poses[:, 1:] - poses[:, PARENTS[1:]], axis=-1)


def write_h36m_files(tmp_path, subjects=("S1", "S9"), frames=12, extra_2d=3, seed=0):
    """Tiny Human3.6M-format npz files: procedural people in world metres (32-joint arrays), 2D projected through
    the embedded calibration and padded with extra frames (as real 2D files often are)."""
    cams = load_cameras()
    pos3d, pos2d = {}, {}
    for si, subject in enumerate(subjects):
        pos3d[subject], pos2d[subject] = {}, {}
        for ai, action in enumerate(("Walking 1", "Sitting")):
            scene = generate_scene(num_people=1, duration_s=frames / 10, fps=10, seed=seed + 10 * si + ai)
            world17 = scene.joints[:, 0] - np.array([3.0, 2.5, 0.0])  # room centre -> Human3.6M origin
            world32 = np.zeros((frames, 32, 3), np.float32)
            world32[:, KEEP_FROM_32] = world17
            pos3d[subject][action] = world32
            views = []
            for cam in cams[subject]:
                px = cam.model.project(cam.cam_from_world.apply(world17))
                views.append(np.concatenate([px, np.repeat(px[-1:], extra_2d, 0)]).astype(np.float32))
            pos2d[subject][action] = views
    path3d, path2d = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz"
    np.savez(path3d, positions_3d=pos3d)
    np.savez(path2d, positions_2d=pos2d, metadata={"layout_name": "h36m", "num_joints": 17})
    return path3d, path2d


def _random_samples(n=6, seed=0, with_gt=True) -> TwoViewSamples:
    rng = np.random.default_rng(seed)
    K = np.tile(np.array([[1000.0, 0, 500], [0, 1000, 500], [0, 0, 1]]), (n, 2, 1, 1))
    c, s = np.cos(0.4), np.sin(0.4)
    R = np.tile(np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]), (n, 1, 1))
    return TwoViewSamples(rng.uniform(0, 1000, (n, 2, 17, 2)), rng.uniform(0, 1, (n, 2, 17)), K, np.zeros((n, 2, 8)),
                          R, rng.normal(size=(n, 3)), rng.normal(size=(n, 17, 3)) if with_gt else None)


def test_samples_validate_subset_concat_swap():
    s = _random_samples()
    assert len(s) == 6 and s.kp2d.dtype == np.float32
    with pytest.raises(SampleError, match="kp2d"):
        TwoViewSamples(s.kp2d[:, :1], s.conf, s.K, s.dist, s.R10, s.t10)
    bad_K = s.K.copy()
    bad_K[0, 0, 0, 0] = np.nan
    with pytest.raises(SampleError, match="non-finite"):
        TwoViewSamples(s.kp2d, s.conf, bad_K, s.dist, s.R10, s.t10)
    both = concat_samples([s, s.subset(slice(0, 2))])
    assert len(both) == 8 and both.gt3d is not None
    assert concat_samples([s, _random_samples(with_gt=False)]).gt3d is None
    back = s.swapped().swapped()
    np.testing.assert_allclose(back.gt3d, s.gt3d, atol=1e-5)
    np.testing.assert_allclose(back.t10, s.t10, atol=1e-5)
    sw = s.swapped()  # gt in the new camera 0 (old camera 1) equals R10 gt + t10
    np.testing.assert_allclose(sw.gt3d, s.gt3d @ s.R10.transpose(0, 2, 1) + s.t10[:, None], atol=1e-5)


def test_save_load_roundtrip(tmp_path):
    s = _random_samples(with_gt=False)
    s.save(tmp_path / "s.npz")
    loaded = TwoViewSamples.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.kp2d, s.kp2d)
    assert loaded.gt3d is None
    np.savez(tmp_path / "bad.npz", kp2d=s.kp2d)
    with pytest.raises(SampleError, match="not a TwoViewSamples file"):
        TwoViewSamples.load(tmp_path / "bad.npz")


def test_embedded_calibration_is_complete_and_own_format():
    cams = load_cameras()
    assert sorted(cams) == ["S1", "S11", "S5", "S6", "S7", "S8", "S9"]
    assert all(len(v) == 4 for v in cams.values())
    data = json.loads(default_cameras_path().read_text())
    assert data["format"].startswith("cvpose_ros") and "R_world_to_cam" not in json.dumps(data)
    cam = cams["S9"][0]
    centre = cam.cam_from_world.inverse().t
    assert 1.0 < centre[2] < 2.5 and 3.0 < np.linalg.norm(centre[:2]) < 7.0  # mounted ~1.5 m high around the room
    assert parse_pairs("0-1, 2-3") == ((0, 1), (2, 3))
    with pytest.raises(ValueError, match="bad camera pair"):
        parse_pairs("0-0")


def test_h36m_loader_exact_2d_triangulates_to_ground_truth(tmp_path):
    path3d, path2d = write_h36m_files(tmp_path)
    data = load_h36m(path3d, path2d, subjects=("S9",), stride=2)
    n_per = 6  # 12 frames, stride 2; the 3 extra 2D frames are trimmed
    assert len(data.samples) == 2 * 4 * n_per
    assert set(data.action) == {"Walking", "Sitting"} and set(data.pair) == {"0-1", "0-2", "1-3", "2-3"}
    tri = triangulate_samples(data.samples)
    err = np.linalg.norm(tri.coarse0.numpy() - data.samples.gt3d, axis=-1)
    assert tri.valid.all() and err.max() < 2e-3  # exact 2D: sub-millimetre up to the float32 storage
    projected = load_h36m(path3d, None, subjects=("S9",), stride=2)  # no 2D file: exact projections
    np.testing.assert_allclose(projected.samples.kp2d, data.samples.kp2d, atol=1e-2)
    with pytest.raises(SampleError, match="no subject"):
        load_h36m(path3d, path2d, subjects=("S11",))


def test_triangulated_dataset_batches_and_swaps(tmp_path):
    path3d, path2d = write_h36m_files(tmp_path, subjects=("S1",))
    tri = triangulate_samples(load_h36m(path3d, path2d, subjects=("S1",)).samples, cache=tmp_path / "cache.npz")
    cached = triangulate_samples(tri.samples, cache=tmp_path / "cache.npz")
    torch.testing.assert_close(cached.coarse1, tri.coarse1)
    item = tri[3]
    assert item["coarse0"].shape == (17, 3) and item["kp2d"].shape == (2, 17, 2)
    both = concat_triangulated([tri, subset_triangulated(tri, np.arange(5))])
    assert len(both) == len(tri) + 5
    batch = tri.batch(torch.arange(8))
    swapped = swap_views(batch, torch.ones(8, dtype=torch.bool))
    torch.testing.assert_close(swapped["coarse0"], batch["coarse1"])
    # the swapped gt in the new camera 0 matches the coarse pose there (exact 2D)
    torch.testing.assert_close(swapped["gt3d"], swapped["coarse0"], atol=3e-3, rtol=0)
    unchanged = swap_views(batch, torch.zeros(8, dtype=torch.bool))
    torch.testing.assert_close(unchanged["R10"], batch["R10"])


def test_rebuild_keeps_limb_directions_and_sets_lengths():
    rng = np.random.default_rng(0)
    poses = generate_scene(num_people=1, duration_s=2, fps=10, seed=3).joints[:, 0]
    lengths = sample_bone_lengths(len(poses), rng)
    rebuilt = rebuild_poses(poses, lengths, mocap_convention=True)
    np.testing.assert_allclose(_lengths(rebuilt), lengths[:, 1:], rtol=1e-9)
    limbs = [2, 3, 5, 6, 12, 13, 15, 16]
    cos = (bone_directions(poses, False)[:, limbs] * bone_directions(rebuilt, False)[:, limbs]).sum(-1)
    assert cos.min() > 0.999999
    left, right = list(H36M17.left), list(H36M17.right)
    assert np.abs(lengths[:, left] / lengths[:, right] - 1).max() < 0.06  # small asymmetry only
    same = rebuild_poses(poses, np.c_[np.zeros(len(poses)), _lengths(poses)], mocap_convention=False)
    np.testing.assert_allclose(same, poses, atol=1e-9)


def test_motion_file_to_samples(tmp_path):
    scene = generate_scene(num_people=2, duration_s=4, fps=10, seed=1)
    seqs = {f"seq{p}": (scene.joints[:, p] * 1000 - [0, 0, 900]).astype(np.float32) for p in range(2)}
    np.savez(tmp_path / "motion.npz", joint_names=np.array(H36M17.joint_names), **seqs)
    loaded = load_motion([tmp_path / "motion.npz"], stride=2)
    assert len(loaded) == 2 and all(v.shape == (20, 17, 3) for v in loaded.values())
    lowest = min(v[:, [3, 6], 2].min() for v in loaded.values())
    assert lowest == pytest.approx(0.08)  # floor-aligned in metres
    train, held = split_sequences([f"s{i}" for i in range(16)], 8)
    assert len(held) == 2 and not set(held) & set(train)
    rng = np.random.default_rng(0)
    samples = motion_samples(loaded, 60, {"wide": 1, "narrow": 1, "random": 1, "h36m": 1}, {"clean": 1}, rng,
                             random_rigs=3)
    assert 55 <= len(samples) <= 60 and samples.gt3d is not None
    tri = triangulate_samples(samples)
    assert tri.valid.all()
    np.testing.assert_allclose(tri.coarse0.numpy(), samples.gt3d, atol=2e-3)
    assert len(make_rigs("h36m", 0, rng)) == 28
    with pytest.raises(ValueError, match="unknown rig kind"):
        make_rigs("fisheye", 1, rng)

"""training.data.video_samples: two-view samples from calibrated multi-camera 2D, and the agreement filter."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.calibration import CalibratedCamera
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from training.data.samples import TriangulatedSamples, TwoViewSamples, triangulate_samples
from training.data.video_samples import all_pairs, consistent_samples, video_samples
from training.train_data import concat_keeping_truth


def _rig(count: int = 4) -> list[CalibratedCamera]:
    model = CameraModel(K=np.array([[800.0, 0, 640], [0, 800.0, 360], [0, 0, 1]]), dist=np.zeros(5),
                        distortion_model="plumb_bob", width=1280, height=720)
    cams = []
    for v in range(count):
        angle = 2 * np.pi * v / count
        eye = (4 * np.cos(angle), 4 * np.sin(angle), 1.5)
        cams.append(CalibratedCamera(f"cam{v}", model, RigidTransform.look_at(eye, (0.0, 0.0, 1.0))))
    return cams


def _people(frames: int, rng: np.random.Generator) -> np.ndarray:
    return np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.3, (frames, 17, 3))


def test_video_samples_pairs_frames_and_geometry():
    rng = np.random.default_rng(0)
    cams, world = _rig(), _people(5, rng)
    pixels = np.stack([c.project(world) for c in cams])
    conf = np.ones(pixels.shape[:3])
    conf[1, 2] = 0.0                                  # camera 1 sees nobody in frame 2
    out = video_samples(cams, pixels, conf, frames=[0, 2, 4])
    assert len(all_pairs(4)) == 6
    assert len(out.samples) == 3 * 3 + 3 * 2          # pairs with camera 1 lose frame 2
    assert out.samples.gt3d is None
    assert set(map(tuple, out.pair)) == set(all_pairs(4))
    assert not ((out.pair == 1).any(1) & (out.frame == 2)).any()
    # exact 2D: the triangulation in camera a's frame equals the world points moved into it
    tri = triangulate_samples(out.samples)
    i = int(np.flatnonzero((out.pair[:, 0] == 0) & (out.pair[:, 1] == 3))[0])
    expected = cams[0].cam_from_world.apply(world[out.frame[i]])
    np.testing.assert_allclose(tri.coarse0[i].numpy(), expected, atol=1e-3)
    only = video_samples(cams, pixels, conf, pairs=[(2, 3)])
    assert len(only.samples) == 5 and (only.pair == [2, 3]).all()


def test_video_samples_rejects_bad_shapes():
    cams = _rig()
    with pytest.raises(ValueError):
        video_samples(cams, np.zeros((3, 2, 17, 2)), np.ones((3, 2, 17)))


def test_consistent_samples_drops_swapped_view():
    rng = np.random.default_rng(1)
    cams, world = _rig(), _people(6, rng)
    pixels = np.stack([c.project(world) for c in cams])
    pixels = pixels + rng.normal(0, 1.0, pixels.shape)
    flip = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
    pixels[1, 3] = pixels[1, 3, flip]                 # camera 1 swaps left and right in frame 3
    out = video_samples(cams, pixels, np.ones(pixels.shape[:3]), pairs=[(0, 1), (0, 2)])
    kept, mask = consistent_samples(out.samples, max_median_px=5.0)
    assert not mask[(out.pair[:, 1] == 1) & (out.frame == 3)].any()
    assert mask[out.pair[:, 1] == 2].all()
    assert len(kept) == int(mask.sum())


def test_concat_keeping_truth_gives_real_samples_nan_truth():
    rng = np.random.default_rng(2)
    cams, world = _rig(2), _people(3, rng)
    pixels = np.stack([c.project(world) for c in cams])
    real = video_samples(cams, pixels, np.ones(pixels.shape[:3])).samples
    gt = cams[0].cam_from_world.apply(world)
    synth = TwoViewSamples(real.kp2d, real.conf, real.K, real.dist, real.R10, real.t10, gt3d=gt)
    both: TriangulatedSamples = concat_keeping_truth([triangulate_samples(synth), triangulate_samples(real)])
    assert both.samples.gt3d is not None and len(both) == 6
    assert np.isfinite(both.samples.gt3d[:3]).all() and np.isnan(both.samples.gt3d[3:]).all()


def test_extra_views_carry_the_other_cameras_and_survive_view_swaps():
    """Exact 2D of 4 cameras: each pair sample holds the 2 other cameras, placed so that the true pose reprojects
    onto them exactly, also after the views are exchanged (TwoViewSamples.swapped and the trainer's swap_views)."""
    import torch

    from cvpose_ros.model.losses import extra_view_reprojection_loss
    from training.data.samples import EXTRA_FIELDS, concat_samples
    from training.train import swap_views

    rng = np.random.default_rng(3)
    cams, world = _rig(), _people(4, rng)
    pixels = np.stack([c.project(world) for c in cams])
    out = video_samples(cams, pixels, np.ones(pixels.shape[:3]), extra_views=True)
    s = out.samples
    assert s.extra_views == 2 and len(s) == 6 * 4
    i = int(np.flatnonzero((out.pair[:, 0] == 1) & (out.pair[:, 1] == 3))[0])
    np.testing.assert_allclose(s.extra_kp2d[i], pixels[[0, 2], out.frame[i]], atol=1e-3)
    gt0 = np.stack([cams[a].cam_from_world.apply(world[f]) for (a, _), f in zip(out.pair, out.frame, strict=True)])
    gt1 = np.stack([cams[b].cam_from_world.apply(world[f]) for (_, b), f in zip(out.pair, out.frame, strict=True)])
    T = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    extra = {k: T(getattr(s, k)) for k in EXTRA_FIELDS}
    exact = extra_view_reprojection_loss(T(gt0), T(gt1), T(s.R10), T(s.t10), extra, units="pixels")
    assert float(exact) < 1e-2
    moved = extra_view_reprojection_loss(T(gt0) + 0.05, T(gt1), T(s.R10), T(s.t10), extra, units="pixels")
    assert float(moved) > 1.0                         # the term really looks at the extra cameras
    flipped = s.swapped()                             # camera 1 becomes camera 0: same extra pixels, re-anchored
    swapped_loss = extra_view_reprojection_loss(
        T(gt1), T(gt0), T(flipped.R10), T(flipped.t10), {k: T(getattr(flipped, k)) for k in EXTRA_FIELDS},
        units="pixels")
    assert float(swapped_loss) < 1e-2
    batch = triangulate_samples(s).batch(torch.arange(len(s)))
    mask = torch.arange(len(s)) % 2 == 0
    b = swap_views(batch, mask)
    np.testing.assert_allclose(b["extra_R"][mask].numpy(), flipped.extra_R[mask.numpy()], atol=1e-5)
    np.testing.assert_allclose(b["extra_t"][mask].numpy(), flipped.extra_t[mask.numpy()], atol=1e-5)
    np.testing.assert_allclose(b["extra_t"][~mask].numpy(), s.extra_t[~mask.numpy()])
    # sets with and without extra cameras concatenate (padding: confidence 0), and the padding is ignored
    plain = video_samples(cams[:2], pixels[:2], np.ones(pixels.shape[:3])[:2]).samples
    both = concat_samples([plain, s])
    assert both.extra_views == 2 and (both.extra_conf[:len(plain)] == 0).all() and len(both) == len(plain) + len(s)
    assert np.isfinite(both.extra_R).all() and len(both.subset(slice(0, 3))) == 3
    # mocap with 3D truth and no extra cameras + real 2D with them: both survive (the trainer's mix)
    synth = TwoViewSamples(plain.kp2d, plain.conf, plain.K, plain.dist, plain.R10, plain.t10,
                           gt3d=np.zeros((len(plain), 17, 3)))
    mixed = concat_keeping_truth([triangulate_samples(synth), triangulate_samples(s)])
    assert mixed.samples.extra_views == 2 and np.isfinite(mixed.samples.gt3d[:len(plain)]).all()
    assert (mixed.samples.extra_conf[:len(plain)] == 0).all() and "extra_kp2d" in mixed.batch(torch.arange(3))
    # the weak loss has the term exactly when extra 2D is given and weighted
    from cvpose_ros.model.losses import WeakLossWeights, weak_supervision_loss

    args = (T(gt0), T(gt1), T(s.kp2d), T(s.conf), T(s.K), T(s.dist), T(s.R10), T(s.t10))
    assert "extra_reprojection" in weak_supervision_loss(*args, extra=extra)[1]
    assert "extra_reprojection" not in weak_supervision_loss(*args)[1]
    assert "extra_reprojection" not in weak_supervision_loss(*args, WeakLossWeights(extra_reprojection=0.0),
                                                             extra=extra)[1]


def test_repaired_samples_hold_the_node_keypoints_and_consensus_extras():
    """Camera 1 swaps left and right (whole body) in frame 3. With `repair`, camera 1 as an extra view of pair
    (0, 2) has the swap undone (the consensus of all cameras), and the pair (0, 1) sample either holds repaired
    labels (the node's matching) or, where the two views alone cannot tell, drops its extra targets rather than
    teach the swap. Without `repair`, the extra view keeps the swap."""
    rng = np.random.default_rng(4)
    cams = _rig()
    # coco17: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left at +x, facing -y)
    rest = np.array([[0, -.1, 1.65], [.03, -.08, 1.68], [-.03, -.08, 1.68], [.08, 0, 1.65], [-.08, 0, 1.65],
                     [.2, 0, 1.45], [-.2, 0, 1.45], [.25, 0, 1.15], [-.25, 0, 1.15], [.28, -.05, .9],
                     [-.28, -.05, .9], [.12, 0, .95], [-.12, 0, .95], [.13, -.03, .5], [-.13, -.03, .5],
                     [.13, 0, .08], [-.13, 0, .08]])
    world = rest + rng.normal(0, 0.01, (6, 17, 3))
    pixels = np.stack([c.project(world) for c in cams]) + rng.normal(0, 0.5, (4, 6, 17, 2))
    flip = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
    truth = pixels.copy()
    pixels[1, 3] = pixels[1, 3, flip]
    conf = np.ones(pixels.shape[:3])
    for repair in (False, True):
        out = video_samples(cams, pixels, conf, pairs=[(0, 1), (0, 2)], extra_views=True, repair=repair)
        s = out.samples
        pair01 = int(np.flatnonzero((out.pair[:, 1] == 1) & (out.frame == 3))[0])
        pair02 = int(np.flatnonzero((out.pair[:, 1] == 2) & (out.frame == 3))[0])
        fixed_extra = np.nanmax(np.abs(s.extra_kp2d[pair02, 0] - truth[1, 3])) < 1e-3  # extras of (0, 2): 1, 3
        assert fixed_extra == repair and s.extra_conf[pair02].min() == 1.0
        fixed_pair = np.nanmax(np.abs(s.kp2d[pair01] - truth[[0, 1], 3])) < 1e-3
        if repair:
            assert fixed_pair or (s.extra_conf[pair01] == 0).all()
            others = np.flatnonzero(out.frame != 3)
            assert (s.extra_conf[others] == 1.0).all()  # agreeing frames keep every extra target
        else:
            assert not fixed_pair and (s.extra_conf[pair01] == 1.0).all()

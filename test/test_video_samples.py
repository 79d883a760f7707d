"""training.data.video_samples: two-view samples from calibrated multi-camera 2D, and the agreement filter."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.calibration import CalibratedCamera
from cvpose_ros.camera import CameraModel, RigidTransform
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

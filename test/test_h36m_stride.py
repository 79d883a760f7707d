"""load_h36m with a frame stride that does not divide the sequence length (real Human3.6M files: 3D and 2D
sequences of e.g. 2699 frames, `cvpose-eval --stride 10`)."""

import numpy as np
import pytest

from training.data.h36m import KEEP_FROM_32, load_cameras, load_h36m
from training.data.samples import SampleError

FRAMES_3D = 2699


def _write(tmp_path, frames_2d: int):
    """3D sequence of FRAMES_3D frames (32-joint, metres; a standing person drifting 1 mm per frame along x so
    frames are told apart) and four 2D views of `frames_2d` frames: exact projections, extended by repeating the
    last frame or cut short."""
    rng = np.random.default_rng(0)
    pose = np.array([0.0, 0.0, 1.0]) + rng.normal(0.0, 0.2, (17, 3))
    world17 = pose + np.arange(FRAMES_3D)[:, None, None] * np.array([1e-3, 0.0, 0.0])
    world32 = np.zeros((FRAMES_3D, 32, 3))
    world32[:, KEEP_FROM_32] = world17
    views = []
    for cam in load_cameras()["S9"]:
        px = cam.model.project(cam.cam_from_world.apply(world17))
        px = np.concatenate([px, np.repeat(px[-1:], max(frames_2d - FRAMES_3D, 0), 0)])[:frames_2d]
        views.append(px)
    path3d, path2d = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_x.npz"
    np.savez(path3d, positions_3d={"S9": {"Directions": world32}})
    np.savez(path2d, positions_2d={"S9": {"Directions": views}})
    return path3d, path2d


@pytest.mark.parametrize("frames_2d", [FRAMES_3D, FRAMES_3D + 1])
@pytest.mark.parametrize("stride", [1, 10, 7])
def test_stride_not_dividing_the_length_keeps_2d_and_3d_paired(tmp_path, frames_2d, stride):
    path3d, path2d = _write(tmp_path, frames_2d)
    data = load_h36m(path3d, path2d, subjects=("S9",), pairs=((0, 1),), stride=stride)
    n = -(-FRAMES_3D // stride)  # frames 0, stride, ..., the last one < FRAMES_3D
    assert len(data.samples) == n
    np.testing.assert_array_equal(data.frame, np.arange(n) * stride)
    exact = load_h36m(path3d, None, subjects=("S9",), pairs=((0, 1),), stride=stride)  # projections of the 3D
    np.testing.assert_allclose(data.samples.kp2d, exact.samples.kp2d, atol=1e-6)
    np.testing.assert_allclose(data.samples.gt3d, exact.samples.gt3d)


def test_2d_shorter_than_3d_is_an_error(tmp_path):
    path3d, path2d = _write(tmp_path, FRAMES_3D - 1)
    with pytest.raises(SampleError, match=r"S9/Directions view 0: expected \(T >= 2699"):
        load_h36m(path3d, path2d, subjects=("S9",), stride=10)

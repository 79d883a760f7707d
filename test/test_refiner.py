"""Refiner: device selection, disabled pass-through without weights, one-batch refinement of a frame."""

import numpy as np
import pytest
import torch

import cvpose_ros.refine.refiner as refiner_module
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.triangulation import triangulate_pair
from cvpose_ros.model.backend import resolve_device
from cvpose_ros.model.checkpoint import CheckpointError, save_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import create_model, refine_tensors
from cvpose_ros.refine.refiner import Refiner

SMALL = dict(view_channels=8, joint_channels=16, part_channels=32, decoder_channels=16)


def _frame(people: int = 3):
    """Triangulated people from two cameras 90 degrees apart, one person with missing joints."""
    rng = np.random.default_rng(0)
    K = np.array([[1000.0, 0, 500], [0, 1000.0, 500], [0, 0, 1]])
    cam = CameraModel(K, np.array([-0.05, 0.01, 0, 0, 0]), "plumb_bob", 1000, 1000)
    world_to_0 = RigidTransform.look_at([4.0, 0, 1.5], [0, 0, 1.0])
    world_to_1 = RigidTransform.look_at([0, 4.0, 1.5], [0, 0, 1.0])
    world = rng.normal(scale=0.25, size=(people, 17, 3)) + [0.0, 0.0, 1.0]
    kp0 = cam.project(world_to_0.apply(world)) + rng.normal(scale=3.0, size=(people, 17, 2))
    kp1 = cam.project(world_to_1.apply(world)) + rng.normal(scale=3.0, size=(people, 17, 2))
    conf = np.ones((people, 17))
    kp0[1, [2, 9]] = np.nan
    cam1_from_cam0 = world_to_1.compose(world_to_0.inverse())
    return triangulate_pair(cam, cam, cam1_from_cam0, kp0, conf, kp1, conf), cam1_from_cam0


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model(FeatureSpec(), **SMALL)
    with torch.no_grad():  # make the refinement visible
        model.joint_linear.weight.normal_(std=0.05)
    return save_checkpoint(tmp_path / "small.pt", model.eval(), FeatureSpec())


def test_without_weights_refiner_is_disabled_and_passes_through(monkeypatch, tmp_path):
    monkeypatch.setitem(refiner_module.DEFAULT_CHECKPOINTS, "h36m17", tmp_path / "absent.pt")
    refiner = Refiner(device="cpu")
    assert not refiner.enabled and "no packaged h36m17 weights" in refiner.reason
    tri, transform = _frame()
    out0, out1 = refiner.refine(tri, transform)
    np.testing.assert_array_equal(out0, tri.cam0)
    np.testing.assert_array_equal(out1, tri.cam1)
    assert out0 is not tri.cam0
    assert not Refiner("", device="cpu").enabled  # an empty ROS parameter means the packaged default


def test_refines_all_people_in_one_batch(checkpoint):
    refiner = Refiner(checkpoint, device="cpu")
    assert refiner.enabled and refiner.device.type == "cpu"
    tri, transform = _frame()
    out0, out1 = refiner.refine(tri, transform)
    assert out0.dtype == np.float64 and out0.shape == tri.cam0.shape
    assert np.array_equal(np.isnan(out0).any(-1), ~tri.valid) and np.array_equal(np.isnan(out1).any(-1), ~tri.valid)
    moved = np.linalg.norm(out0 - tri.cam0, axis=-1)[tri.valid]
    assert 1e-4 < moved.mean() < 0.5
    np.testing.assert_allclose(transform.apply(out0), out1, atol=1e-9)  # views fused by default
    single = [refiner.refine_arrays(tri.cam0[i:i + 1], tri.cam1[i:i + 1], tri.reprojection_error[i:i + 1],
                                    tri.valid[i:i + 1], transform.R, transform.t)[0] for i in range(3)]
    np.testing.assert_allclose(np.concatenate(single), out0, atol=1e-6)  # eval mode: no batch coupling


def test_matches_the_differentiable_pipeline(checkpoint):
    refiner = Refiner(checkpoint, device="cpu", fuse_views=False)
    tri, transform = _frame()
    out0, _ = refiner.refine(tri, transform)
    t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731
    people = tri.cam0.shape[0]
    with torch.no_grad():
        ref0, _ = refine_tensors(refiner.model, t(tri.cam0), t(tri.cam1), t(tri.reprojection_error), t(tri.valid),
                                 t(np.broadcast_to(transform.R, (people, 3, 3))),
                                 t(np.broadcast_to(transform.t, (people, 3))), spec=refiner.spec)
    np.testing.assert_allclose(out0, ref0.numpy(), atol=1e-12)


def test_empty_frame(checkpoint):
    refiner = Refiner(checkpoint, device="cpu")
    empty = np.zeros((0, 17, 3))
    out0, out1 = refiner.refine_arrays(empty, empty, np.zeros((0, 17)), np.zeros((0, 17), bool), np.eye(3),
                                       np.zeros(3))
    assert out0.shape == (0, 17, 3) and out1.shape == (0, 17, 3)


def test_explicit_bad_checkpoint_raises(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="bad.pt"):
        Refiner(bad, device="cpu")


def test_device_validation():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="expected 'auto'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ValueError, match="CUDA is not available"):
                resolve_device(name)
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_num_threads_is_validated_and_applied(checkpoint):
    before = torch.get_num_threads()
    try:
        with pytest.raises(ValueError, match="num_threads"):
            Refiner(checkpoint, device="cpu", num_threads=0)
        Refiner(checkpoint, device="cpu", num_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

"""Weak-supervision losses (zero at a consistent ground truth, positive when perturbed) and NaN-aware metrics."""

import numpy as np
import pytest
import torch

from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.model.losses import (
    WeakLossWeights,
    bone_direction_loss,
    mpjpe,
    mpjpe_loss,
    p_mpjpe,
    reprojection_loss,
    symmetry_loss,
    transform_consistency_loss,
    weak_supervision_loss,
)

# A symmetric body (metres; x to the person's left, y down, z away): right joints mirror the left ones.
_RIGHT = {1: (-0.13, 0.0, 0.0), 2: (-0.15, 0.45, 0.05), 3: (-0.16, 0.88, 0.0),
          14: (-0.17, -0.48, 0.0), 15: (-0.30, -0.25, 0.05), 16: (-0.33, 0.0, -0.1)}
_CENTRE = {0: (0.0, 0.0, 0.0), 7: (0.0, -0.23, 0.0), 8: (0.0, -0.48, 0.0), 9: (0.0, -0.59, 0.02),
           10: (0.0, -0.70, 0.0)}
_MIRROR = {4: 1, 5: 2, 6: 3, 11: 14, 12: 15, 13: 16}


def _template() -> np.ndarray:
    pose = np.zeros((17, 3))
    for joint, xyz in {**_RIGHT, **_CENTRE}.items():
        pose[joint] = xyz
    for left, right in _MIRROR.items():
        pose[left] = pose[right] * np.array([-1.0, 1.0, 1.0])
    return pose


def _rotation(rng: np.random.Generator, max_angle: float = 0.4) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@pytest.fixture()
def truth():
    """Ground truth for 4 people seen by two distorted cameras: poses in both frames and exact 2D."""
    rng = np.random.default_rng(0)
    cams = [CameraModel(np.array([[1000.0, 0, 500], [0, 1010.0, 490], [0, 0, 1]]),
                        np.array([-0.2, 0.06, 0.001, -0.001, -0.01]), "plumb_bob", 1000, 1000),
            CameraModel(np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]]),
                        np.array([-0.1, 0.01, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0]), "rational_polynomial", 640, 480)]
    poses0 = np.stack([_template() @ _rotation(rng).T + [rng.uniform(-0.5, 0.5), 0.0, 4.5] for _ in range(4)])
    cam1_from_cam0 = RigidTransform(_rotation(rng, 0.8), rng.normal(scale=0.5, size=3))
    poses1 = cam1_from_cam0.apply(poses0)
    kp = np.stack([cams[0].project(poses0), cams[1].project(poses1)], axis=1)
    n = len(poses0)
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)  # noqa: E731
    return dict(x0=t(poses0), x1=t(poses1), kp=t(kp), conf=torch.ones(n, 2, 17, dtype=torch.float64),
                K=t(np.broadcast_to(np.stack([c.K for c in cams]), (n, 2, 3, 3))),
                dist=t(np.broadcast_to(np.stack([c.rational_coefficients() for c in cams]), (n, 2, 8))),
                R=t(np.broadcast_to(cam1_from_cam0.R, (n, 3, 3))), t=t(np.broadcast_to(cam1_from_cam0.t, (n, 3))))


def _all_terms(d, x0, x1):
    return {
        "reprojection": reprojection_loss(x0, x1, d["kp"], d["conf"], d["K"], d["dist"]),
        "symmetry": symmetry_loss(torch.stack([x0, x1], dim=1)),
        "transform": transform_consistency_loss(x0, x1, d["R"], d["t"]),
        "bone_direction": bone_direction_loss(x0, x1, d["R"]),
    }


def test_every_loss_is_zero_at_ground_truth(truth):
    for name, value in _all_terms(truth, truth["x0"], truth["x1"]).items():
        assert float(value) < 1e-7, name
    total, terms = weak_supervision_loss(truth["x0"], truth["x1"], truth["kp"], truth["conf"], truth["K"],
                                         truth["dist"], truth["R"], truth["t"])
    assert float(total) < 1e-7 and set(terms) == {"reprojection", "symmetry", "transform", "bone_direction"}


def test_every_loss_grows_when_perturbed(truth):
    gen = torch.Generator().manual_seed(0)
    noisy0 = truth["x0"] + 0.03 * torch.randn(truth["x0"].shape, generator=gen, dtype=torch.float64)
    terms = _all_terms(truth, noisy0, truth["x1"])
    for name, value in terms.items():
        assert float(value) > 1e-4, name
    # reprojection in metres at the joint's depth: 3 cm of noise on view 0 only, averaged with an exact view 1
    assert 0.005 < float(terms["reprojection"]) < 0.03


def test_reprojection_ignores_missing_targets_and_weights_by_confidence(truth):
    x0 = truth["x0"].clone()
    x0[0, 5] += 0.5  # a big error on a joint whose 2D target is missing in view 0
    kp, conf = truth["kp"].clone(), truth["conf"].clone()
    kp[0, 0, 5] = float("nan")
    assert float(reprojection_loss(x0, truth["x1"], kp, conf, truth["K"], truth["dist"])) < 1e-7
    kp[0, 0, 5] = truth["kp"][0, 0, 5]
    conf[0, 0, 5] = 0.0
    assert float(reprojection_loss(x0, truth["x1"], kp, conf, truth["K"], truth["dist"])) < 1e-7
    conf[0, 0, 5] = 1.0
    assert float(reprojection_loss(x0, truth["x1"], kp, conf, truth["K"], truth["dist"])) > 1e-3


def test_reprojection_pixel_units_and_robust_growth(truth):
    x0 = truth["x0"].clone()
    kp = truth["kp"].clone()
    kp[:, :, :, 0] += 10.0  # every target 10 px to the right
    px = reprojection_loss(x0, truth["x1"], kp, truth["conf"], truth["K"], truth["dist"], units="pixels")
    assert abs(float(px) - (np.hypot(10.0, 1.0) - 1.0)) < 1e-6
    kp_far = truth["kp"].clone()
    kp_far[:, :, :, 0] += 1000.0
    far = reprojection_loss(x0, truth["x1"], kp_far, truth["conf"], truth["K"], truth["dist"], units="pixels")
    assert 95.0 < float(far) / float(px) < 115.0  # linear, not squared, growth


def test_symmetry_detects_one_longer_limb(truth):
    x0 = truth["x0"].clone()
    x0[:, 13] += 0.5 * (x0[:, 13] - x0[:, 12])  # left forearm 50% longer
    sym = symmetry_loss(x0)
    assert abs(float(sym) - 0.5 * 0.25 / 6) < 0.01  # 1 of 6 pairs differs by half a forearm (about 12 cm)


def test_transform_and_bone_losses_respect_rigid_motion(truth):
    shifted1 = truth["x1"] + torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)
    assert float(transform_consistency_loss(truth["x0"], shifted1, truth["R"], truth["t"])) > 0.05
    assert float(bone_direction_loss(truth["x0"], shifted1, truth["R"])) < 1e-8  # a translation keeps directions
    assert float(bone_direction_loss(truth["x0"], truth["x0"], truth["R"])) > 1e-3  # wrong frame for view 1


def test_nan_joints_are_ignored_with_finite_gradients(truth):
    x0 = truth["x0"].clone()
    x0[1, [3, 8]] = float("nan")
    x0.requires_grad_(True)
    total, terms = weak_supervision_loss(x0, truth["x1"], truth["kp"], truth["conf"], truth["K"], truth["dist"],
                                         truth["R"], truth["t"])
    total.backward()
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in terms.values())
    assert torch.isfinite(x0.grad).all() and float(total.detach()) < 1e-7


def test_weights_and_supervised_term(truth):
    noisy0 = truth["x0"] + 0.02
    weights = WeakLossWeights(reprojection=0.0, symmetry=0.0, transform=2.0, bone_direction=0.0, supervised=1.0)
    total, terms = weak_supervision_loss(noisy0, truth["x1"], truth["kp"], truth["conf"], truth["K"], truth["dist"],
                                         truth["R"], truth["t"], weights, gt3d=truth["x0"])
    assert torch.allclose(total, 2.0 * terms["transform"] + terms["supervised"])
    assert float(terms["supervised"]) < 1e-5  # a constant offset is root-relative zero
    assert float(mpjpe_loss(truth["x0"] * 1.1, truth["x0"])) > 0.01


def test_mpjpe_is_root_relative_and_nan_aware():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(5, 17, 3))
    pred = gt + np.array([1.0, 2.0, 3.0])  # pure translation
    assert mpjpe(pred, gt) < 1e-12
    assert abs(mpjpe(pred, gt, root_relative=False) - np.sqrt(14.0)) < 1e-12
    pred[0, 4] += [0.3, 0.4, 0.0]
    pred[1, 6] = np.nan
    per_joint = mpjpe(pred, gt, reduction="none")
    assert np.isnan(per_joint[1, 6]) and abs(per_joint[0, 4] - 0.5) < 1e-12
    assert abs(mpjpe(pred, gt) - 0.5 / (5 * 17 - 1)) < 1e-12
    torch_value = mpjpe(torch.as_tensor(pred), torch.as_tensor(gt))
    assert abs(torch_value - mpjpe(pred, gt)) < 1e-12


def test_p_mpjpe_removes_similarity_but_not_shape_errors():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(3, 17, 3))
    R = np.stack([_rotation(rng, 3.0) for _ in range(3)])
    pred = 1.7 * gt @ R.transpose(0, 2, 1) + rng.normal(size=(3, 1, 3))
    assert p_mpjpe(pred, gt) < 1e-9
    pred[:, 10] = np.nan
    assert p_mpjpe(pred, gt) < 1e-9
    distorted = gt.copy()
    distorted[:, 3] += 0.5
    assert p_mpjpe(distorted, gt) > 0.05
    assert np.isnan(p_mpjpe(np.full_like(gt, np.nan), gt))

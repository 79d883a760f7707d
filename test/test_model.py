"""CV-UGCN network, input features, the refinement pipeline and the torch camera model."""

import cv2
import numpy as np
import pytest
import torch

from cvpose_ros.geometry.torch_geometry import apply_transform, invert_transform, project_points
from cvpose_ros.model.cvugcn import CVUGCN, CVUGCNConfig, count_parameters, part_graph_kernels
from cvpose_ros.model.features import FeatureSpec, centre_and_clamp, root_positions
from cvpose_ros.model.pipeline import create_model, fuse_views, refine_tensors

SMALL = dict(view_channels=8, joint_channels=16, part_channels=32, decoder_channels=16)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _batch(rng: np.random.Generator, batch: int = 6):
    """Coarse poses in two frames related by a random rigid transform (float64)."""
    coarse0 = rng.normal(scale=0.3, size=(batch, 17, 3)) + np.array([0.0, 0.0, 4.0])
    R = np.stack([_rotation(rng) for _ in range(batch)])
    t = rng.normal(size=(batch, 3))
    coarse1 = coarse0 @ R.transpose(0, 2, 1) + t[:, None]
    err = rng.uniform(0, 10, size=(batch, 17))
    as_t = lambda a: torch.as_tensor(a)  # noqa: E731
    return as_t(coarse0), as_t(coarse1), as_t(err), torch.ones(batch, 17, dtype=torch.bool), as_t(R), as_t(t)


def test_parameter_count_matches_paper_size():
    count = count_parameters(CVUGCN())
    assert abs(count - 5.2e6) / 5.2e6 < 0.10, count


def test_forward_shape_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = CVUGCN(CVUGCNConfig(in_channels=5, dropout=0.1))
    out = model(torch.randn(3, 2, 17, 5))
    assert out.shape == (3, 2, 17, 3)
    out.pow(2).sum().backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert dead == []


def test_wrong_input_shape_is_one_clear_error():
    with pytest.raises(ValueError, match="expects input"):
        CVUGCN(CVUGCNConfig(in_channels=4, **SMALL))(torch.zeros(2, 2, 17, 5))


def test_part_graph_second_order_links_limbs_through_torso():
    kernels = part_graph_kernels()
    second = kernels[2] > 0
    assert second[:4, :4].sum() == 12 and not second[4].any()  # every limb pair, never the torso itself


def test_root_falls_back_to_mean_of_valid_joints():
    coarse = torch.arange(17 * 3, dtype=torch.float64).reshape(1, 17, 3)
    valid = torch.ones(1, 17, dtype=torch.bool)
    assert torch.equal(root_positions(coarse, valid)[0], coarse[0, 0])
    valid[0, [0, 5]] = False
    coarse[0, [0, 5]] = float("nan")
    expected = coarse[0, valid[0]].mean(dim=0)
    assert torch.allclose(root_positions(coarse, valid)[0], expected)


def test_centring_clamps_far_joints():
    coarse = torch.zeros(1, 17, 3, dtype=torch.float64)
    coarse[0, 13] = torch.tensor([50.0, -40.0, 0.5])
    centred, _ = centre_and_clamp(coarse, torch.ones(1, 17, dtype=torch.bool), FeatureSpec(clamp_m=2.0))
    assert torch.equal(centred[0, 13], torch.tensor([2.0, -2.0, 0.5], dtype=torch.float64))


def test_nan_joints_stay_nan_and_never_leak_into_valid_ones():
    torch.manual_seed(0)
    coarse0, coarse1, err, valid, R, t = _batch(np.random.default_rng(1))
    valid[0, [0, 3, 13]] = False
    valid[1, :] = False
    valid[1, 5] = True  # a lone valid joint
    for c in (coarse0, coarse1):
        c[~valid] = float("nan")
    err[~valid] = float("nan")
    model = create_model(FeatureSpec(), **SMALL).train()
    for fuse in (False, True):
        out0, out1 = refine_tensors(model, coarse0, coarse1, err, valid, R, t, fuse=fuse)
        for out in (out0, out1):
            assert torch.isfinite(out[valid]).all()
            assert torch.isnan(out[~valid]).all()
    loss = out0[valid].sum() + out1[valid].sum()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_zero_residual_returns_the_coarse_pose_exactly():
    coarse0, coarse1, err, valid, R, t = _batch(np.random.default_rng(2))
    model = create_model(FeatureSpec(), **SMALL).eval()
    with torch.no_grad():
        model.joint_linear.weight.zero_()
        model.joint_linear.bias.zero_()
    out0, out1 = refine_tensors(model, coarse0, coarse1, err, valid, R, t)
    assert out0.dtype == torch.float64
    assert torch.allclose(out0, coarse0, atol=1e-12) and torch.allclose(out1, coarse1, atol=1e-12)


def test_fusion_makes_the_two_views_exactly_consistent():
    coarse0, coarse1, err, valid, R, t = _batch(np.random.default_rng(3))
    model = create_model(FeatureSpec(), **SMALL).eval()
    with torch.no_grad():
        out0, out1 = refine_tensors(model, coarse0, coarse1, err, valid, R, t, fuse=True)
        raw0, raw1 = refine_tensors(model, coarse0, coarse1, err, valid, R, t, fuse=False)
    assert torch.allclose(apply_transform(R, t, out0), out1, atol=1e-9)
    assert torch.allclose(out0, fuse_views(raw0, raw1, R, t)[0], atol=1e-12)


def test_spec_and_model_width_mismatch_is_rejected():
    coarse0, coarse1, err, valid, R, t = _batch(np.random.default_rng(4))
    model = create_model(FeatureSpec(use_reprojection_error=False), **SMALL)
    with pytest.raises(ValueError, match="input channels"):
        refine_tensors(model, coarse0, coarse1, err, valid, R, t, spec=FeatureSpec())
    out0, _ = refine_tensors(model, coarse0, coarse1, None, valid, R, t, spec=FeatureSpec(use_reprojection_error=False))
    assert out0.shape == coarse0.shape


def test_projection_matches_opencv_rational_model():
    rng = np.random.default_rng(5)
    points = rng.uniform([-1.5, -1.0, 2.0], [1.5, 1.0, 6.0], size=(40, 3))
    K = np.array([[900.0, 0.0, 640.0], [0.0, 910.0, 360.0], [0.0, 0.0, 1.0]])
    dist = np.array([-0.21, 0.05, 0.001, -0.0007, -0.01, 0.02, -0.003, 0.001])
    expected, _ = cv2.projectPoints(points[:, None], np.zeros(3), np.zeros(3), K, dist)
    ours = project_points(torch.as_tensor(points), torch.as_tensor(K), torch.as_tensor(dist))
    assert np.abs(ours.numpy() - expected[:, 0]).max() < 1e-6
    plumb = project_points(torch.as_tensor(points), torch.as_tensor(K), torch.as_tensor(dist[:5]))
    expected5, _ = cv2.projectPoints(points[:, None], np.zeros(3), np.zeros(3), K, dist[:5])
    assert np.abs(plumb.numpy() - expected5[:, 0]).max() < 1e-6


def test_invert_transform_round_trip():
    rng = np.random.default_rng(6)
    R, t = torch.as_tensor(_rotation(rng)), torch.as_tensor(rng.normal(size=3))
    points = torch.as_tensor(rng.normal(size=(17, 3)))
    R_inv, t_inv = invert_transform(R, t)
    assert torch.allclose(apply_transform(R_inv, t_inv, apply_transform(R, t, points)), points, atol=1e-12)

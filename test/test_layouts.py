"""Skeleton layouts as values that travel: graphs, detector placement, per-layout models, checkpoints, refiners."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_checkpoint import make_tiny_checkpoint

from cvpose_ros.body import placement, skeleton
from cvpose_ros.devtools.synthetic import generate_scene
from cvpose_ros.model.checkpoint import CheckpointError, load_checkpoint, read_metadata
from cvpose_ros.model.pipeline import create_model, refine_tensors
from cvpose_ros.refine.refiner import LayoutRefiners, Refiner


@pytest.mark.parametrize("layout", [skeleton.H36M17, skeleton.COCO17])
def test_layout_graph_parts_and_flips_are_consistent(layout):
    n = layout.num_joints
    adjacency = skeleton.adjacency(n, list(layout.edges)) + np.eye(n)
    reach = np.linalg.matrix_power(adjacency, n) > 0
    assert reach.all(), "the body graph must be connected"
    parts = sorted(j for part in layout.parts for j in part)
    assert parts == list(range(n)), "every joint belongs to exactly one part"
    flip = layout.flip_permutation()
    assert sorted(flip) == list(range(n)) and (flip[flip] == np.arange(n)).all()
    for (a, b), (c, d) in layout.symmetric_bones:
        assert {flip[a], flip[b]} == {c, d}, "symmetric bones mirror each other"
    for left, right in layout.swap_groups:
        assert [flip[j] for j in left] == list(right)
    assert len(layout.error_scale) == n


def test_h36m_second_order_edges_are_the_spec_list():
    assert sorted(skeleton.H36M17.second_order_edges) == sorted(skeleton.SECOND_ORDER_EDGES)
    np.testing.assert_array_equal(skeleton.joint_kernels(), skeleton.single_view_kernels())


def test_root_of_is_pelvis_and_mid_hip():
    pts = np.random.default_rng(0).normal(size=(4, 17, 3))
    np.testing.assert_allclose(skeleton.H36M17.root_of(pts), pts[:, 0])
    np.testing.assert_allclose(skeleton.COCO17.root_of(pts), 0.5 * (pts[:, 11] + pts[:, 12]))


def test_coco17_placement_from_h36m():
    h36m = generate_scene(2, 1.0, 10.0, seed=3).joints  # (T, P, 17, 3), z up
    coco = placement.coco17_from_h36m(h36m)
    c, h = {n: i for i, n in enumerate(skeleton.COCO17.joint_names)}, {n: i for i, n in
                                                                       enumerate(skeleton.H36M17.joint_names)}
    for name in ("l_wrist", "r_elbow"):
        np.testing.assert_array_equal(coco[..., c[name], :], h36m[..., h[name], :])
    shoulders = np.linalg.norm(coco[..., c["l_shoulder"], :] - coco[..., c["r_shoulder"], :], axis=-1)
    h36m_shoulders = np.linalg.norm(h36m[..., h["l_shoulder"], :] - h36m[..., h["r_shoulder"], :], axis=-1)
    np.testing.assert_allclose(shoulders, placement.DEFAULT_PLACEMENT.shoulder_width_ratio * h36m_shoulders)
    np.testing.assert_allclose(coco[..., c["l_shoulder"], :] + coco[..., c["r_shoulder"], :],
                               h36m[..., h["l_shoulder"], :] + h36m[..., h["r_shoulder"], :], atol=1e-12)
    thigh = np.linalg.norm(coco[..., c["l_knee"], :] - coco[..., c["l_hip"], :], axis=-1)
    shin = np.linalg.norm(coco[..., c["l_ankle"], :] - coco[..., c["l_knee"], :], axis=-1)
    h36m_shin = np.linalg.norm(h36m[..., h["l_ankle"], :] - h36m[..., h["l_knee"], :], axis=-1)
    np.testing.assert_allclose(shin, placement.DEFAULT_PLACEMENT.leg_scale * h36m_shin)
    assert (thigh < np.linalg.norm(h36m[..., h["l_knee"], :] - h36m[..., h["l_hip"], :], axis=-1)).all()
    ears = 0.5 * (coco[..., c["l_ear"], :] + coco[..., c["r_ear"], :])
    body = placement.body_frame(h36m)
    nose_ahead = np.einsum("...d,...d->...", coco[..., c["nose"], :] - ears, body[..., 2, :])
    assert (nose_ahead > 0.08).all(), "the nose is in front of the ears"
    ear_width = np.linalg.norm(coco[..., c["l_ear"], :] - coco[..., c["r_ear"], :], axis=-1)
    np.testing.assert_allclose(ear_width, 2 * placement.DEFAULT_PLACEMENT.ear_half_width)
    left_of_centre = np.einsum("...d,...d->...", coco[..., c["l_eye"], :] - ears, body[..., 0, :])
    assert (left_of_centre > 0).all(), "the left eye is on the person's left"
    hip_width = np.linalg.norm(coco[..., c["l_hip"], :] - coco[..., c["r_hip"], :], axis=-1)
    h36m_width = np.linalg.norm(h36m[..., h["l_hip"], :] - h36m[..., h["r_hip"], :], axis=-1)
    np.testing.assert_allclose(hip_width, placement.DEFAULT_PLACEMENT.hip_width_ratio * h36m_width, rtol=1e-6)
    turned = placement.coco17_from_h36m(h36m, np.random.default_rng(0))
    assert np.isfinite(turned).all() and not np.allclose(turned[..., 0, :], coco[..., 0, :])
    np.testing.assert_array_equal(turned[..., 7:11, :], coco[..., 7:11, :])  # elbows and wrists
    turned_shoulders = np.linalg.norm(turned[..., c["l_shoulder"], :] - turned[..., c["r_shoulder"], :], axis=-1)
    ratio = turned_shoulders / h36m_shoulders
    p = placement.DEFAULT_PLACEMENT
    assert ratio.std() > 0 and (np.abs(ratio - p.shoulder_width_ratio) <= 2 * p.shoulder_sd + 1e-9).all()


def test_coco17_model_runs_and_refines_with_its_own_root():
    model = create_model(view_channels=8, joint_channels=16, part_channels=16, decoder_channels=8,
                         layout="coco17").eval()
    assert model.layout is skeleton.COCO17
    coarse = torch.randn(3, 17, 3, dtype=torch.float64) + torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    valid = torch.ones(3, 17, dtype=torch.bool)
    eye, zero = torch.eye(3, dtype=torch.float64).expand(3, 3, 3), torch.zeros(3, 3, dtype=torch.float64)
    with torch.no_grad():
        r0, r1 = refine_tensors(model, coarse, coarse, torch.zeros(3, 17), valid, eye, zero)
    assert r0.shape == (3, 17, 3) and torch.isfinite(r0).all()
    with pytest.raises(ValueError, match="unknown keypoint layout"):
        create_model(layout="body25")


def test_checkpoint_records_layout_and_refuses_a_mismatch(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "coco.pt", zero_residual=False, layout="coco17")
    assert read_metadata(path)["layout"] == "coco17"
    assert load_checkpoint(path).model.layout is skeleton.COCO17
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["model"]["layout"] = "h36m17"  # hyper-parameters say one layout, metadata another
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="metadata says layout 'coco17'"):
        load_checkpoint(tmp_path / "bad.pt")
    payload["metadata"]["layout"] = payload["metadata"]["model"]["layout"] = "body25"
    torch.save(payload, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="layout 'body25' is not supported"):
        load_checkpoint(tmp_path / "unknown.pt")


def test_refiner_takes_the_files_layout_and_refuses_another(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "coco.pt", zero_residual=False, layout="coco17")
    assert Refiner(path, device="cpu").layout == "coco17"
    with pytest.raises(CheckpointError, match="expected 'h36m17'"):
        Refiner(path, device="cpu", layout="h36m17")


def test_layout_refiners_pick_by_layout(tmp_path, monkeypatch):
    import cvpose_ros.refine.refiner as refiner_module

    monkeypatch.setitem(refiner_module.DEFAULT_CHECKPOINTS, "coco17", tmp_path / "absent.pt")
    defaults = LayoutRefiners(device="cpu")
    assert defaults.for_layout("h36m17").enabled and not defaults.for_layout("coco17").enabled
    assert "coco17: no packaged coco17 weights" in defaults.reason
    coco = make_tiny_checkpoint(tmp_path / "coco.pt", zero_residual=False, layout="coco17")
    chosen = LayoutRefiners([coco], device="cpu")
    assert chosen.for_layout("coco17").checkpoint_path == coco and chosen.for_layout("coco17").enabled
    assert chosen.for_layout("h36m17").checkpoint_path.name == "cvugcn_h36m17.pt"
    assert chosen.for_layout("body25") is None
    with pytest.raises(CheckpointError, match="a second checkpoint for layout 'coco17'"):
        LayoutRefiners([coco, make_tiny_checkpoint(tmp_path / "coco2.pt", True, layout="coco17")], device="cpu")

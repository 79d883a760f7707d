"""Statistics of the 2D detector noise model (cvpose_ros.devtools.noise)."""

import numpy as np
import pytest
from scipy import stats

from cvpose_ros.devtools.noise import (
    DEFAULT_JOINT_SCALE,
    PRESETS,
    SWAP_LIMBS,
    NoiseConfig,
    apply_noise,
    apply_noise_mix,
    apply_preset,
    get_preset,
    with_overrides,
)

QUIET = dict(outlier_rate=0.0, swap_rate=0.0, missing_rate=0.0, low_conf_rate=0.0, offset_px=0.0)


def _keypoints(n: int, seed: int = 0) -> np.ndarray:
    """n random skeleton-sized 2D poses: joints spread ~200 px apart so that swaps are measurable."""
    rng = np.random.default_rng(seed)
    return rng.uniform(200, 800, (n, 17, 2))


@pytest.mark.parametrize("dof", [3.0, 4.0, np.inf])
def test_median_error_matches_base_for_unit_joints(dof):
    kp = _keypoints(20000)
    cfg = NoiseConfig(base_px=6.0, student_dof=dof, sample_scale_sigma=0.0, **QUIET)
    noisy, conf = apply_noise(kp, cfg, np.random.default_rng(1))
    err = np.linalg.norm(noisy - kp, axis=-1)
    unit = np.flatnonzero(np.isclose(DEFAULT_JOINT_SCALE, 1.0))
    assert np.median(err[:, unit]) == pytest.approx(6.0, rel=0.05)
    wrists_ankles = [3, 6, 13, 16]
    assert np.median(err[:, wrists_ankles]) > 1.3 * np.median(err[:, unit])
    assert np.all(conf > 0) and np.all(conf <= 1)


def test_heavy_tail_more_than_gaussian():
    kp = _keypoints(20000)
    errs = {}
    for dof in (3.0, np.inf):
        cfg = NoiseConfig(base_px=5.0, student_dof=dof, sample_scale_sigma=0.0, **QUIET)
        noisy, _ = apply_noise(kp, cfg, np.random.default_rng(2))
        errs[dof] = np.linalg.norm(noisy - kp, axis=-1)
    assert np.percentile(errs[3.0], 99) > 1.5 * np.percentile(errs[np.inf], 99)


def test_outlier_swap_and_missing_rates():
    kp = _keypoints(20000)
    cfg = NoiseConfig(base_px=0.5, student_dof=np.inf, sample_scale_sigma=0.0, offset_px=0.0, outlier_rate=0.02,
                      swap_rate=0.0, missing_rate=0.03, low_conf_rate=0.0)
    noisy, conf = apply_noise(kp, cfg, np.random.default_rng(3))
    err = np.linalg.norm(noisy - kp, axis=-1)
    missing = np.isnan(noisy).any(-1)
    assert missing.mean() == pytest.approx(0.03, abs=0.004)
    assert np.all(conf[missing] == 0)
    gross = err[~missing] > 25
    assert gross.mean() == pytest.approx(0.02, abs=0.003)
    assert err[~missing][gross].min() >= 29 and err[~missing][gross].max() <= 81

    swap_cfg = with_overrides(cfg, outlier_rate=0.0, missing_rate=0.0, swap_rate=0.05)
    noisy, _ = apply_noise(kp, swap_cfg, np.random.default_rng(4))
    for left, right in SWAP_LIMBS:
        swapped = np.linalg.norm(noisy[:, list(left)] - kp[:, list(right)], axis=-1).max(axis=1) < 5
        assert swapped.mean() == pytest.approx(0.05, abs=0.008)


def test_confidence_falls_with_error():
    kp = _keypoints(5000)
    noisy, conf = apply_noise(kp, "cpn_like", np.random.default_rng(5))
    err = np.linalg.norm(noisy - kp, axis=-1)
    ok = ~np.isnan(err)
    assert stats.spearmanr(err[ok], conf[ok]).statistic < -0.3
    assert conf[ok][err[ok] > 30].mean() < conf[ok][err[ok] < 5].mean() - 0.2


def test_clean_is_exact_and_seeded_noise_repeats():
    kp = _keypoints(100)
    noisy, conf = apply_preset(kp, "clean", np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, kp)
    np.testing.assert_array_equal(conf, 1.0)
    a = apply_noise(kp, "heavy", np.random.default_rng(7))
    b = apply_noise(kp, "heavy", np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    assert {"clean", "light", "cpn_like", "heavy", "detector", "detector_light"} <= set(PRESETS)


def test_image_bounds_and_mix():
    kp = _keypoints(200)
    kp[:, 0] = [-50.0, 10.0]  # joint 0 outside the image
    noisy, conf = apply_noise(kp, "light", np.random.default_rng(0), image_size=(1000, 1000))
    assert np.isnan(noisy[:, 0]).all() and np.all(conf[:, 0] == 0)
    noisy, conf, which = apply_noise_mix(_keypoints(1000), {"clean": 1.0, "heavy": 1.0}, np.random.default_rng(1))
    assert 0.4 < which.mean() < 0.6
    assert np.all(conf[which == 0] == 1.0)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        apply_noise(np.zeros((3, 16, 2)), "light", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown noise preset"):
        get_preset("nope")
    with pytest.raises(ValueError):
        NoiseConfig(outlier_rate=1.5)
    with pytest.raises(ValueError, match="positive weights"):
        apply_noise_mix(_keypoints(4), {"clean": 0.0}, np.random.default_rng(0))


def test_view_offsets_are_fixed_over_time_and_point_to_the_camera():
    from cvpose_ros.devtools.noise import SURFACE_DEPTH_M, view_offsets_3d

    rng = np.random.default_rng(0)
    points = np.random.default_rng(1).uniform(-1, 1, (50, 3, 17, 3)) + np.array([0.0, 0.0, 4.0])  # (T, P, J, 3)
    surface_only = NoiseConfig(surface_scale=1.0, view_offset_m=0.0)
    moved = view_offsets_3d(points, surface_only, rng, "coco17", fixed_shape=(3,))
    shift = moved - points
    towards = -points / np.linalg.norm(points, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(np.cross(shift, towards), axis=-1), 0.0, atol=1e-12)
    depth = np.einsum("...d,...d->...", shift, towards)
    ratio = depth[..., 5:] / np.asarray(SURFACE_DEPTH_M["coco17"])[5:]
    np.testing.assert_allclose(ratio, ratio[:1, :, :1].repeat(50, 0).repeat(12, 2))  # one factor per person
    offsets_only = NoiseConfig(surface_scale=0.0, view_offset_m=0.03)
    fixed = view_offsets_3d(points, offsets_only, rng, "h36m17", fixed_shape=(3,)) - points
    np.testing.assert_allclose(fixed, fixed[:1].repeat(50, 0))  # the same offsets in every frame
    assert 0.02 < fixed.std() < 0.04
    np.testing.assert_array_equal(view_offsets_3d(points, "cpn_like", rng), points)  # no 3D stage


def test_body_swap_and_coco_face_swap():
    kp = _keypoints(400)
    body = NoiseConfig(base_px=0.0, offset_px=0.0, outlier_rate=0.0, swap_rate=0.0, missing_rate=0.0,
                       low_conf_rate=0.0, body_swap_rate=1.0)
    noisy, _ = apply_noise(kp, body, np.random.default_rng(0), layout="coco17")
    from cvpose_ros.body.skeleton import COCO17

    np.testing.assert_allclose(noisy, kp[:, COCO17.flip_permutation()])
    face = NoiseConfig(base_px=0.0, offset_px=0.0, outlier_rate=0.0, swap_rate=1.0, missing_rate=0.0,
                       low_conf_rate=0.0)
    swapped, _ = apply_noise(kp, face, np.random.default_rng(0), layout="coco17")
    np.testing.assert_allclose(swapped[:, [1, 3]], kp[:, [2, 4]])  # eyes and ears exchanged with arms and legs
    np.testing.assert_allclose(swapped[:, 0], kp[:, 0])  # the nose has no side


def test_pixel_noise_scales_with_the_person():
    kp = _keypoints(4000) * 0.25  # people a quarter of the size
    cfg = NoiseConfig(base_px=6.0, sample_scale_sigma=0.0, scale_reference_px=150.0, **QUIET)
    small, _ = apply_noise(kp, cfg, np.random.default_rng(1))
    large, _ = apply_noise(kp * 4, cfg, np.random.default_rng(1))
    ratio = np.median(np.linalg.norm(large - kp * 4, axis=-1)) / np.median(np.linalg.norm(small - kp, axis=-1))
    assert ratio == pytest.approx(4.0, rel=0.05)

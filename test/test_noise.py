"""Statistics of the 2D detector noise model (cvpose_ros.noise)."""

import numpy as np
import pytest
from scipy import stats

from cvpose_ros.noise import (
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
    unit = np.flatnonzero(np.isclose(cfg.joint_scale, 1.0))
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
    assert set(PRESETS) == {"clean", "light", "cpn_like", "heavy"}


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

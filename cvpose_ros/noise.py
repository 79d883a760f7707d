"""Realistic 2D keypoint detector noise (SPEC section 5) for training, tests and the demo.

The model mimics what a top-down detector such as CPN does to exact projections of an h36m17 skeleton:
heavy-tailed jitter (Student-t) of a few pixels, heavier at wrists and ankles, a per-sample noise scale, a small
constant per-sample per-joint offset (a detector's systematic bias), occasional outliers 30-80 px away, whole-limb
left/right swaps, missing joints and low-confidence joints. Confidences fall with the error, as a detector's do.
Everything is vectorised over any leading batch dimensions and seeded through a numpy Generator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from cvpose_ros.skeleton import NUM_JOINTS

# Per-joint multipliers of the jitter (h36m17 order): extremities and the head are the hardest for detectors;
# pelvis, spine and thorax are derived from several joints and are smoother.
DEFAULT_JOINT_SCALE = (0.9, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 0.8, 0.8, 1.0, 1.1, 1.0, 1.25, 1.6, 1.0, 1.25, 1.6)

# Limb groups swapped left <-> right as a whole: (left joints, right joints).
SWAP_LIMBS = (((11, 12, 13), (14, 15, 16)), ((4, 5, 6), (1, 2, 3)))


@dataclass(frozen=True)
class NoiseConfig:
    """Parameters of the detector noise model (pixels unless stated).

    `base_px` is the median jitter radius of a joint with multiplier 1 in a sample of scale 1, so the measured
    median error of such joints is about `base_px` whatever `student_dof` is.
    """

    base_px: float = 4.5
    joint_scale: tuple[float, ...] = DEFAULT_JOINT_SCALE
    student_dof: float = 4.0             # Student-t degrees of freedom of the jitter (inf = Gaussian)
    sample_scale_sigma: float = 0.3      # log-normal sigma of a per-sample multiplier of the jitter
    offset_px: float = 1.5               # std of a constant per-sample per-joint offset
    outlier_rate: float = 0.02           # probability per joint of a gross error
    outlier_px: tuple[float, float] = (30.0, 80.0)
    swap_rate: float = 0.02              # probability per sample and limb pair of a left/right swap
    missing_rate: float = 0.01           # probability per joint of a missing detection (NaN, confidence 0)
    low_conf_rate: float = 0.03          # probability per joint of a weak detection: 2x error, low confidence
    conf_error_px: float = 15.0          # error at which the confidence has fallen to about 1/e of its maximum
    conf_jitter: float = 0.05            # std of additive noise on the confidence

    def __post_init__(self) -> None:
        if len(self.joint_scale) != NUM_JOINTS:
            raise ValueError(f"joint_scale needs {NUM_JOINTS} values, got {len(self.joint_scale)}")
        rates = (self.outlier_rate, self.swap_rate, self.missing_rate, self.low_conf_rate)
        if self.base_px < 0 or self.offset_px < 0 or not all(0.0 <= r <= 1.0 for r in rates):
            raise ValueError(f"noise parameters out of range: {self}")
        if self.student_dof <= 0 or self.outlier_px[0] > self.outlier_px[1]:
            raise ValueError(f"noise parameters out of range: {self}")


PRESETS: dict[str, NoiseConfig] = {
    "clean": NoiseConfig(base_px=0.0, offset_px=0.0, outlier_rate=0.0, swap_rate=0.0, missing_rate=0.0,
                         low_conf_rate=0.0, conf_jitter=0.0, sample_scale_sigma=0.0),
    "light": NoiseConfig(base_px=1.5, student_dof=8.0, offset_px=0.5, outlier_rate=0.0, swap_rate=0.0,
                         missing_rate=0.0, low_conf_rate=0.0, sample_scale_sigma=0.3),
    "cpn_like": NoiseConfig(),
    "heavy": NoiseConfig(base_px=10.0, student_dof=3.0, sample_scale_sigma=0.4, offset_px=3.0, outlier_rate=0.05,
                         swap_rate=0.04, missing_rate=0.03, low_conf_rate=0.05),
}


def get_preset(name: str) -> NoiseConfig:
    """The named preset; raises ValueError listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown noise preset {name!r}; expected one of {sorted(PRESETS)}") from None


def _median_radius_unit_t(dof: float) -> float:
    """Median radius of a 2D Student-t vector with unit scale: r^2 / 2 follows an F(2, dof) distribution."""
    if np.isinf(dof):
        return float(np.sqrt(2.0 * np.log(2.0)))
    return float(np.sqrt(2.0 * stats.f.ppf(0.5, 2, dof)))


def swap_limbs(kp: np.ndarray, swap_mask: np.ndarray) -> np.ndarray:
    """Swap left and right joints of limb pair `l` where swap_mask[..., l] is True. kp (..., J, D)."""
    out = kp.copy()
    for limb, (left, right) in enumerate(SWAP_LIMBS):
        m = swap_mask[..., limb, None, None]
        out[..., left, :] = np.where(m, kp[..., right, :], kp[..., left, :])
        out[..., right, :] = np.where(m, kp[..., left, :], kp[..., right, :])
    return out


def apply_noise(kp2d: np.ndarray, config: NoiseConfig | str, rng: np.random.Generator,
                image_size: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (noisy keypoints (..., J, 2), confidence (..., J)) for exact pixels `kp2d` (..., J, 2).

    NaN input joints stay missing. With `image_size` (width, height), joints that land outside are missing too.
    """
    cfg = get_preset(config) if isinstance(config, str) else config
    kp2d = np.asarray(kp2d, dtype=np.float64)
    if kp2d.ndim < 2 or kp2d.shape[-2:] != (NUM_JOINTS, 2):
        raise ValueError(f"kp2d must have shape (..., {NUM_JOINTS}, 2), got {kp2d.shape}")
    batch = kp2d.shape[:-2]
    shape_j = batch + (NUM_JOINTS,)

    swaps = rng.random(batch + (len(SWAP_LIMBS),)) < cfg.swap_rate
    noisy = swap_limbs(kp2d, swaps) if swaps.any() else kp2d.copy()

    # Heavy-tailed jitter: Gaussian direction / sqrt(chi2 / dof), scaled so that the median radius is base_px.
    sigma = cfg.base_px / _median_radius_unit_t(cfg.student_dof)
    sample_scale = np.exp(cfg.sample_scale_sigma * rng.standard_normal(batch))[..., None]
    joint_sigma = sigma * np.asarray(cfg.joint_scale) * sample_scale
    low_conf = rng.random(shape_j) < cfg.low_conf_rate
    joint_sigma = joint_sigma * np.where(low_conf, 2.0, 1.0)
    gauss = rng.standard_normal(shape_j + (2,))
    if np.isinf(cfg.student_dof):
        mix = np.ones(shape_j)
    else:
        mix = np.sqrt(rng.chisquare(cfg.student_dof, shape_j) / cfg.student_dof)
    error = gauss * (joint_sigma / mix)[..., None] + cfg.offset_px * rng.standard_normal(shape_j + (2,))

    outliers = rng.random(shape_j) < cfg.outlier_rate
    angle = rng.uniform(0.0, 2.0 * np.pi, shape_j)
    radius = rng.uniform(cfg.outlier_px[0], cfg.outlier_px[1], shape_j)
    gross = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * radius[..., None]
    error = np.where(outliers[..., None], gross, error)
    noisy = noisy + error

    # Confidence falls with the error (as a heatmap peak does), weak detections and outliers score lower.
    err_norm = np.linalg.norm(error, axis=-1)
    conf = 0.97 * np.exp(-err_norm / cfg.conf_error_px) + cfg.conf_jitter * rng.standard_normal(shape_j)
    conf = np.where(low_conf, conf * rng.uniform(0.15, 0.45, shape_j), conf)
    conf = np.where(outliers, conf * rng.uniform(0.3, 0.8, shape_j), conf)
    conf = np.clip(conf, 0.05, 1.0) if cfg.base_px > 0 or cfg.conf_jitter > 0 else np.ones(shape_j)

    missing = (rng.random(shape_j) < cfg.missing_rate) | ~np.isfinite(noisy).all(axis=-1)
    if image_size is not None:
        w, h = image_size
        inside = (noisy[..., 0] >= 0) & (noisy[..., 0] < w) & (noisy[..., 1] >= 0) & (noisy[..., 1] < h)
        missing |= ~inside
    noisy[missing] = np.nan
    conf = np.where(missing, 0.0, conf)
    return noisy.astype(kp2d.dtype), conf


def apply_noise_mix(kp2d: np.ndarray, mix: dict[str, float], rng: np.random.Generator,
                    image_size: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise a batch (N, ..., J, 2) with presets drawn per sample with probabilities `mix` (name -> weight).

    Returns (noisy, confidence, preset index per sample into list(mix)).
    """
    names = list(mix)
    weights = np.asarray([mix[n] for n in names], dtype=np.float64)
    if len(names) == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"noise mix needs positive weights, got {mix}")
    which = rng.choice(len(names), size=kp2d.shape[0], p=weights / weights.sum())
    noisy = np.empty_like(np.asarray(kp2d, dtype=np.float64))
    conf = np.empty(kp2d.shape[:-1])
    for i, name in enumerate(names):
        sel = which == i
        if sel.any():
            noisy[sel], conf[sel] = apply_noise(kp2d[sel], get_preset(name), rng, image_size)
    return noisy, conf, which


def with_overrides(config: NoiseConfig, **changes: float) -> NoiseConfig:
    """A copy of `config` with some fields changed (validated)."""
    return replace(config, **changes)


def apply_preset(kp2d: np.ndarray, preset: str, rng: np.random.Generator,
                 image_size: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`apply_noise` with a preset name ("clean", "light", "cpn_like", "heavy")."""
    return apply_noise(kp2d, get_preset(preset), rng, image_size)

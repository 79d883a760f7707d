"""Realistic 2D keypoint detector noise (SPEC section 5) for training, tests and the demo, in any layout.

Two stages, because real detector error is mostly a fixed offset per view and joint, not independent jitter:

1. `view_offsets_3d` (before projection, needs the joints in the camera frame): each joint is moved towards the
   camera by a joint-dependent "surface" depth (a detector marks the body surface it sees, not the joint centre)
   plus a random 3D offset. Drawn once per view and person, the offsets stay fixed over a sequence and their pixel
   effect depends on the viewpoint, as a real detector's does.
2. `apply_noise` (on pixels): heavy-tailed jitter (Student-t) of a few pixels, heavier at wrists and ankles, a
   per-sample noise scale, a small constant per-sample per-joint offset, occasional outliers 30-80 px away, a joint
   now and then on another person (about a body height away), whole-body and per-limb (arms, legs, face) left/right
   swaps in one view, missing and low-confidence joints. Confidences fall with the error, as a detector's do.
   With `scale_reference_px` > 0 every pixel quantity scales with the person's height in the image.

Everything is vectorised over leading batch dimensions and seeded through a numpy Generator. Per-joint scales and
swap groups come from the skeleton layout (h36m17 or coco17).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from cvpose_ros.body.skeleton import H36M17, Layout, get_layout

# Per-joint multipliers of the jitter (h36m17 order): extremities and the head are the hardest for detectors;
# pelvis, spine and thorax are derived from several joints and are smoother. Other layouts: Layout.error_scale.
DEFAULT_JOINT_SCALE = H36M17.error_scale

# Limb groups swapped left <-> right as a whole in h36m17: (left joints, right joints). Others: Layout.swap_groups.
SWAP_LIMBS = H36M17.swap_groups

# Surface depth (m) per joint of each layout: how far in front of the joint centre a detector marks it.
SURFACE_DEPTH_M = {
    "h36m17": (0.08, 0.07, 0.05, 0.04, 0.07, 0.05, 0.04, 0.08, 0.06, 0.05, 0.05, 0.05, 0.04, 0.03, 0.05, 0.04, 0.03),
    "coco17": (0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.05, 0.04, 0.04, 0.03, 0.03, 0.07, 0.07, 0.05, 0.05, 0.04, 0.04),
}


@dataclass(frozen=True)
class NoiseConfig:
    """Parameters of the detector noise model (pixels unless stated).

    `base_px` is the median jitter radius of a joint with multiplier 1 in a sample of scale 1, so the measured
    median error of such joints is about `base_px` whatever `student_dof` is.
    """

    base_px: float = 4.5
    joint_scale: tuple[float, ...] | None = None  # None = the layout's error_scale
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
    body_swap_rate: float = 0.0          # probability per sample of a whole-body left/right flip in that view
    wrong_person_rate: float = 0.0       # probability per joint of landing on another person (~ a body height away)
    scale_reference_px: float = 0.0      # > 0: pixel quantities scale with person height (px) / this reference
    surface_scale: float = 0.0           # multiplier of SURFACE_DEPTH_M towards the camera (3D stage)
    view_offset_m: float = 0.0           # std (m) of a random per-view per-joint 3D offset (3D stage)

    def __post_init__(self) -> None:
        if self.joint_scale is not None and len(self.joint_scale) != 17:
            raise ValueError(f"joint_scale needs 17 values, got {len(self.joint_scale)}")
        rates = (self.outlier_rate, self.swap_rate, self.missing_rate, self.low_conf_rate, self.body_swap_rate,
                 self.wrong_person_rate)
        if self.base_px < 0 or self.offset_px < 0 or not all(0.0 <= r <= 1.0 for r in rates):
            raise ValueError(f"noise parameters out of range: {self}")
        if self.student_dof <= 0 or self.outlier_px[0] > self.outlier_px[1]:
            raise ValueError(f"noise parameters out of range: {self}")
        if min(self.scale_reference_px, self.surface_scale, self.view_offset_m) < 0:
            raise ValueError(f"noise parameters out of range: {self}")

    @property
    def has_3d_stage(self) -> bool:
        return self.surface_scale > 0 or self.view_offset_m > 0


PRESETS: dict[str, NoiseConfig] = {
    "clean": NoiseConfig(base_px=0.0, offset_px=0.0, outlier_rate=0.0, swap_rate=0.0, missing_rate=0.0,
                         low_conf_rate=0.0, conf_jitter=0.0, sample_scale_sigma=0.0),
    "light": NoiseConfig(base_px=1.5, student_dof=8.0, offset_px=0.5, outlier_rate=0.0, swap_rate=0.0,
                         missing_rate=0.0, low_conf_rate=0.0, sample_scale_sigma=0.3),
    "cpn_like": NoiseConfig(),
    "heavy": NoiseConfig(base_px=10.0, student_dof=3.0, sample_scale_sigma=0.4, offset_px=3.0, outlier_rate=0.05,
                         swap_rate=0.04, missing_rate=0.03, low_conf_rate=0.05),
    # Real detectors (measured on real 4-camera video, docs/noise.md): fixed per-view offsets dominate a few px of
    # frame-to-frame jitter; now and then a whole-body or per-limb left/right flip in one view.
    "detector": NoiseConfig(base_px=2.5, student_dof=4.0, sample_scale_sigma=0.3, offset_px=2.0, outlier_rate=0.01,
                            swap_rate=0.015, body_swap_rate=0.02, wrong_person_rate=0.003, missing_rate=0.01,
                            low_conf_rate=0.03, scale_reference_px=450.0, surface_scale=1.0, view_offset_m=0.025),
    # The same detector on easy frames: the offsets, a little jitter, nothing gross.
    "detector_light": NoiseConfig(base_px=1.5, student_dof=8.0, sample_scale_sigma=0.3, offset_px=1.0,
                                  outlier_rate=0.0, swap_rate=0.0, missing_rate=0.0, low_conf_rate=0.0,
                                  scale_reference_px=450.0, surface_scale=1.0, view_offset_m=0.015),
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


def swap_limbs(kp: np.ndarray, swap_mask: np.ndarray, layout: Layout | str = H36M17) -> np.ndarray:
    """Swap left and right joints of the layout's swap group `g` where swap_mask[..., g] is True. kp (..., J, D)."""
    groups = get_layout(layout).swap_groups if isinstance(layout, str) else layout.swap_groups
    out = kp.copy()
    for group, (left, right) in enumerate(groups):
        m = swap_mask[..., group, None, None]
        out[..., left, :] = np.where(m, kp[..., right, :], kp[..., left, :])
        out[..., right, :] = np.where(m, kp[..., left, :], kp[..., right, :])
    return out


def _layout(layout: Layout | str) -> Layout:
    return get_layout(layout) if isinstance(layout, str) else layout


def view_offsets_3d(points_cam: np.ndarray, config: NoiseConfig | str, rng: np.random.Generator,
                    layout: Layout | str = H36M17, fixed_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """3D stage: points (..., J, 3) in one camera's frame moved as that camera's detector sees them.

    Each joint moves towards the camera by `surface_scale` x its surface depth (scaled per person by a log-normal
    factor) plus a random 3D offset of std `view_offset_m`. `fixed_shape` (a suffix of the batch shape, e.g.
    (people,) for (frames, people, J, 3)) draws the random parts once per element of that shape so they stay fixed
    over the other (time) axes; default: independent per sample.
    """
    cfg = get_preset(config) if isinstance(config, str) else config
    lay = _layout(layout)
    points_cam = np.asarray(points_cam, dtype=np.float64)
    if not cfg.has_3d_stage:
        return points_cam.copy()
    shape = points_cam.shape[:-2] if fixed_shape is None else tuple(fixed_shape)
    depth = np.asarray(SURFACE_DEPTH_M.get(lay.name, (0.04,) * lay.num_joints))
    person_scale = np.exp(0.3 * rng.standard_normal(shape + (1,)))
    random_offset = cfg.view_offset_m * rng.standard_normal(shape + (lay.num_joints, 3))
    norm = np.linalg.norm(points_cam, axis=-1, keepdims=True)
    towards_camera = -points_cam / np.maximum(norm, 1e-9)
    return points_cam + cfg.surface_scale * (depth * person_scale)[..., None] * towards_camera + random_offset


def _person_height_px(kp2d: np.ndarray) -> np.ndarray:
    """(...,) vertical extent of the keypoints in pixels (NaN-aware; 1 where unknown)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        height = np.nanmax(kp2d[..., 1], axis=-1) - np.nanmin(kp2d[..., 1], axis=-1)
    return np.where(np.isfinite(height) & (height > 1.0), height, 1.0)


def apply_noise(kp2d: np.ndarray, config: NoiseConfig | str, rng: np.random.Generator,
                image_size: tuple[float, float] | None = None,
                layout: Layout | str = H36M17) -> tuple[np.ndarray, np.ndarray]:
    """Return (noisy keypoints (..., J, 2), confidence (..., J)) for exact pixels `kp2d` (..., J, 2).

    NaN input joints stay missing. With `image_size` (width, height), joints that land outside are missing too.
    The 3D stage (`view_offsets_3d`) is not applied here: callers that have 3D apply it before projecting.
    """
    cfg = get_preset(config) if isinstance(config, str) else config
    lay = _layout(layout)
    kp2d = np.asarray(kp2d, dtype=np.float64)
    if kp2d.ndim < 2 or kp2d.shape[-2:] != (lay.num_joints, 2):
        raise ValueError(f"kp2d must have shape (..., {lay.num_joints}, 2), got {kp2d.shape}")
    batch = kp2d.shape[:-2]
    shape_j = batch + (lay.num_joints,)
    # (..., 1) pixel scale of this person: 1, or its height in the image over the reference height
    px = (_person_height_px(kp2d) / cfg.scale_reference_px)[..., None] if cfg.scale_reference_px > 0 \
        else np.ones(batch + (1,))

    swaps = rng.random(batch + (len(lay.swap_groups),)) < cfg.swap_rate
    noisy = swap_limbs(kp2d, swaps, lay) if swaps.any() else kp2d.copy()
    flip = rng.random(batch) < cfg.body_swap_rate
    if flip.any():
        noisy = np.where(flip[..., None, None], noisy[..., lay.flip_permutation(), :], noisy)

    # Heavy-tailed jitter: Gaussian direction / sqrt(chi2 / dof), scaled so that the median radius is base_px.
    sigma = cfg.base_px / _median_radius_unit_t(cfg.student_dof)
    sample_scale = np.exp(cfg.sample_scale_sigma * rng.standard_normal(batch))[..., None]
    joint_scale = np.asarray(cfg.joint_scale if cfg.joint_scale is not None else lay.error_scale)
    joint_sigma = sigma * joint_scale * sample_scale * px
    low_conf = rng.random(shape_j) < cfg.low_conf_rate
    joint_sigma = joint_sigma * np.where(low_conf, 2.0, 1.0)
    gauss = rng.standard_normal(shape_j + (2,))
    if np.isinf(cfg.student_dof):
        mix = np.ones(shape_j)
    else:
        mix = np.sqrt(rng.chisquare(cfg.student_dof, shape_j) / cfg.student_dof)
    error = gauss * (joint_sigma / mix)[..., None] + (cfg.offset_px * px)[..., None] * rng.standard_normal(
        shape_j + (2,))

    outliers = rng.random(shape_j) < cfg.outlier_rate
    angle = rng.uniform(0.0, 2.0 * np.pi, shape_j)
    radius = rng.uniform(cfg.outlier_px[0], cfg.outlier_px[1], shape_j) * px
    gross = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * radius[..., None]
    error = np.where(outliers[..., None], gross, error)
    # a joint on the person next to this one: mostly sideways, about a body height away
    wrong = rng.random(shape_j) < cfg.wrong_person_rate
    if wrong.any():
        height = _person_height_px(kp2d)[..., None]
        side = np.where(rng.random(shape_j) < 0.5, -1.0, 1.0) * rng.uniform(0.4, 1.0, shape_j) * height
        other = np.stack([side, rng.normal(0.0, 0.1, shape_j) * height], axis=-1)
        error = np.where(wrong[..., None], other, error)
        outliers = outliers | wrong
    noisy = noisy + error

    # Confidence falls with the error (as a heatmap peak does), weak detections and outliers score lower.
    err_norm = np.linalg.norm(error, axis=-1) / px
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


def draw_presets(mix: dict[str, float], count: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """(preset names, index into them per sample) for `count` samples drawn with probabilities `mix`."""
    names = list(mix)
    weights = np.asarray([mix[n] for n in names], dtype=np.float64)
    if len(names) == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"noise mix needs positive weights, got {mix}")
    return names, rng.choice(len(names), size=count, p=weights / weights.sum())


def apply_noise_mix(kp2d: np.ndarray, mix: dict[str, float], rng: np.random.Generator,
                    image_size: tuple[float, float] | None = None,
                    layout: Layout | str = H36M17) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise a batch (N, ..., J, 2) with presets drawn per sample with probabilities `mix` (name -> weight); the
    2D stage only (training applies each preset's 3D stage before projecting).

    Returns (noisy, confidence, preset index per sample into list(mix)).
    """
    names, which = draw_presets(mix, kp2d.shape[0], rng)
    noisy = np.empty_like(np.asarray(kp2d, dtype=np.float64))
    conf = np.empty(kp2d.shape[:-1])
    for i, name in enumerate(names):
        sel = which == i
        if sel.any():
            noisy[sel], conf[sel] = apply_noise(kp2d[sel], get_preset(name), rng, image_size, layout)
    return noisy, conf, which


def with_overrides(config: NoiseConfig, **changes: float) -> NoiseConfig:
    """A copy of `config` with some fields changed (validated)."""
    return replace(config, **changes)


def apply_preset(kp2d: np.ndarray, preset: str, rng: np.random.Generator,
                 image_size: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`apply_noise` (2D stage, h36m17) with a preset name ("clean", "light", "cpn_like", "heavy", "detector", ...)."""
    return apply_noise(kp2d, get_preset(preset), rng, image_size)

"""Do no harm: keep each refined joint where the views' 2D evidence allows it to be.

A learnt prior may move a joint only as far as the keypoints allow: without evidence it would pull the joint
towards its own body, e.g. a detector's joint definition towards the training data's. A refined joint's correction
is kept when it passes the rule of its keypoint layout, else it is shortened (coarse + s * (refined - coarse) with the
largest s of 1, (steps-1)/steps, ..., 0 that passes; s = 0, the triangulation, always does). Two rules:

- Pixel rule (a layout whose confidence is 0; default h36m17). A person's views agree when the median DLT residual
  over their joints is at most `agree_fraction` of their height in the image (both views' mean); then each refined
  joint's mean reprojection error may be at most `max(min_px, factor * the joint's DLT residual)`. People whose
  views disagree (a swap, an outlier, heavy noise) keep the refinement as it is.
- Evidence test (a layout whose confidence is above 0; default coco17, 0.5). With independent errors of std sigma
  (px per axis) in every view, the triangulation of a joint seen in n views leaves squared residuals
  SS_tri ~ sigma^2 chi2(2n - 3) (two views: chi2(1), the epipolar component only), and the true point's squared
  error exceeds it by ~ sigma^2 chi2(3). The person's sigma^2 is the median over their joints of
  SS_tri / median(chi2(2n - 3)): pooled over the body, since one joint's residual has a single degree of freedom and
  is often near zero while the keypoints are off by many pixels. A joint passes while
  SS(refined) - SS_tri <= sigma^2 chi2.ppf(confidence, 3): inside the triangulation's `confidence` region, an
  ellipsoid long along directions the views barely see (depth on a narrow rig) and short across them. A joint whose
  own residual is an outlier at that level (above the 99 % point of its chi2) is one the views disagree on and
  passes. Exact keypoints give sigma = 0: nothing moves.

Under either rule a correction longer than `free_above_m` is kept: a left/right swap in one view can be
epipolar-consistent (small residual), and the refiner moving a joint by decimetres is it repairing such a gross
error, while the harm seen on agreeing real views is a pull of a few centimetres towards the training body.

The coco17 weights use the evidence test at 0.5 (a corrected joint may sit as far from the keypoints as the median
true joint does): trained in the detector's own joint definition (a placement model that spans detectors), their
corrections follow the noise model, and the pixel rule, which cuts half of even perfect corrections on `detector`
noise, cost them 0.04 of ratio. The h36m17 weights keep the pixel rule: they often meet keypoints of another
definition (a COCO detector mapped by name), and their pull there is a systematic few centimetres that a noise test
can only bound by also cutting their synthetic gains (measured: docs/model.md).

Three or more views (`guard_views` with `confidence`) add a test only they make sharp, for every person, agreeing
or not and whatever the layout: the fit test. A person's noise variance s^2 is estimated from their N-view residuals
(the sum over joints of each joint's confidence-weighted squared residuals, weights relative to the joint's mean,
over the degrees of freedom left, sum of 2 x views - 3); a refined joint may raise its weighted squared residual
over all the views that see it by at most `fit_chi2` x s^2 (a true point raises it by s^2 x a chi-square variable
with 3 degrees of freedom), else its correction is shortened as above. With two views a joint leaves one degree of
freedom, so the variance is poorly known and the two-view path does not use it. It overrides `free_above_m`: a
gross repair that three views contradict is no repair.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2 as chi2_dist

from cvpose_ros.nanstats import nanmedian_last

Projector = Callable[[np.ndarray], np.ndarray]  # points (..., 3) in a camera's frame -> raw pixels (..., 2)

OUTLIER_LEVEL = 0.99  # evidence test: a joint whose triangulation residual is above this quantile is an outlier
_MAX_DOF = 64
_DOF = np.arange(_MAX_DOF + 1)
# median and outlier quantile of chi2(k) for k = 0.._MAX_DOF (k = 2n - 3 for n views; k < 1 is not testable: NaN)
_CHI2_MEDIAN = np.where(_DOF >= 1, chi2_dist.median(np.maximum(_DOF, 1)), np.nan)
_CHI2_OUTLIER = np.where(_DOF >= 1, chi2_dist.ppf(OUTLIER_LEVEL, np.maximum(_DOF, 1)), np.nan)


@dataclass(frozen=True)
class EvidenceGuard:
    """Parameters of the do-no-harm rule (see the module docstring); `enabled=False` passes refinement through.

    evidence_confidence: (layout name, confidence) pairs, the evidence test's confidence for refinement in each
    keypoint layout; 0, or a layout not listed, = that layout uses the pixel rule (min_px, agree_fraction, factor)."""

    min_px: float = 3.0
    agree_fraction: float = 0.02
    factor: float = 2.0
    free_above_m: float = 0.15
    steps: int = 4
    enabled: bool = True
    fit_chi2: float = 2.0  # three or more views: allowed rise of the weighted squared residual / s^2; 0 = off
    evidence_confidence: tuple[tuple[str, float], ...] = (("coco17", 0.5), ("h36m17", 0.0))

    def __post_init__(self) -> None:
        if (self.min_px < 0 or self.agree_fraction < 0 or self.factor < 1.0 or self.steps < 1 or self.free_above_m < 0
                or self.fit_chi2 < 0 or not all(0.0 <= c < 1.0 for _, c in self.evidence_confidence)):
            raise ValueError(f"guard needs min_px, agree_fraction, free_above_m, fit_chi2 >= 0, factor >= 1, "
                             f"steps >= 1 and confidences in [0, 1), got {self}")

    def confidence_for(self, layout: str) -> float:
        """The evidence test's confidence for refinement in `layout`; 0 = the pixel rule."""
        return dict(self.evidence_confidence).get(layout, 0.0)


@functools.lru_cache(maxsize=64)
def _chi2_3(confidence: float) -> float:
    """chi2.ppf(confidence, 3), cached (scipy's call costs more than the rest of the guard for one person)."""
    return float(chi2_dist.ppf(confidence, 3))


def mean_reprojection_error(points_cam0: np.ndarray, project0: Projector, project1: Projector,
                            to_cam1: Callable[[np.ndarray], np.ndarray], kp0: np.ndarray,
                            kp1: np.ndarray) -> np.ndarray:
    """(...,) mean pixel error of points (..., 3) in camera 0's frame against both views' keypoints (..., 2);
    NaN where a view is missing (then the other view alone counts)."""
    e0 = np.linalg.norm(project0(points_cam0) - kp0, axis=-1)
    e1 = np.linalg.norm(project1(to_cam1(points_cam0)) - kp1, axis=-1)
    both = np.stack([e0, e1])
    with np.errstate(invalid="ignore"):
        count = np.isfinite(both).sum(axis=0)
        return np.where(count > 0, np.nansum(np.nan_to_num(both, nan=0.0), axis=0) / np.maximum(count, 1), np.nan)


def person_height_px(kp0: np.ndarray, kp1: np.ndarray) -> np.ndarray:
    """(...,) mean over the two views of the vertical extent of a person's keypoints (..., J, 2); 0 if unknown."""
    y = np.stack([kp0[..., 1], kp1[..., 1]])  # (2, ..., J)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: a view without keypoints
        height = np.nanmean(np.nanmax(y, axis=-1) - np.nanmin(y, axis=-1), axis=0)
    return np.nan_to_num(height, nan=0.0)


def guard_refinement(coarse: np.ndarray, refined: np.ndarray, coarse_error: np.ndarray, project0: Projector,
                     project1: Projector, to_cam1: Callable[[np.ndarray], np.ndarray], kp0: np.ndarray,
                     kp1: np.ndarray, guard: EvidenceGuard = EvidenceGuard(),
                     layout: str = "h36m17") -> tuple[np.ndarray, np.ndarray]:
    """Guarded poses (..., P, J, 3) in camera 0's frame and the (..., P, J) mask of joints whose correction was
    shortened. Arrays carry a person axis before the joints (agreement and noise level are per person).

    coarse/refined (..., J, 3) in camera 0's frame; coarse_error (..., J) the DLT residual (px, mean of the views);
    kp0/kp1 (..., J, 2) each view's keypoints; project*/to_cam1 the cameras; `layout` the keypoints' layout (it
    picks the rule). Joints missing in coarse or refined are returned as refined.
    """
    refined = np.asarray(refined, dtype=np.float64)
    if not guard.enabled or refined.size == 0:
        return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)
    confidence = guard.confidence_for(layout)
    agree = None
    if confidence == 0:
        agree = views_agree(coarse_error, person_height_px(kp0, kp1), guard)
        if not agree.any():
            return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)  # the pixel rule holds no one back
    coarse = np.asarray(coarse, dtype=np.float64)
    scales = np.linspace(1.0, 0.0, guard.steps + 1)
    candidates = coarse + scales.reshape((-1,) + (1,) * refined.ndim) * (refined - coarse)  # (S, ..., J, 3)
    if confidence > 0:
        squared = np.stack([np.sum((project0(candidates) - kp0) ** 2, axis=-1),
                            np.sum((project1(to_cam1(candidates)) - kp1) ** 2, axis=-1)])  # (2, S, ..., J)
        passes = consistent_with_evidence(squared, confidence)
    else:
        # the last candidate is the triangulation, always allowed: its error is never read
        errors = mean_reprojection_error(candidates[:-1], project0, project1, to_cam1, kp0, kp1)  # (S - 1, ..., J)
        errors = np.concatenate([errors, np.zeros_like(errors[:1])])
        passes = _within_pixels(errors, coarse_error, agree, guard)
    return _shorten(coarse, refined, candidates, passes, guard)


def views_agree(coarse_error: np.ndarray, height: np.ndarray, guard: EvidenceGuard) -> np.ndarray:
    """(...,) people whose views agree: median DLT residual (coarse_error (..., J), px) at most `agree_fraction` of
    their height (...,) px. A person without any residual has a NaN median and does not agree."""
    agreement = nanmedian_last(np.where(np.isfinite(coarse_error), coarse_error, np.nan))
    return agreement <= guard.agree_fraction * height  # NaN compares False


def guard_views(coarse: np.ndarray, refined: np.ndarray, coarse_error: np.ndarray,
                project: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray,
                guard: EvidenceGuard = EvidenceGuard(), confidence: np.ndarray | None = None,
                layout: str = "h36m17") -> tuple[np.ndarray, np.ndarray]:
    """The same rules over any number of views (three or more cameras): poses (P, J, 3) in one frame, coarse_error
    (P, J) the triangulation's mean residual over the views that see each joint, `project` points (..., 3) -> (V,
    ..., 2) pixels in every view, pixels (V, P, J, 2) NaN where a view does not see a joint. A refined joint's error
    is its mean reprojection error over the views that see it (the evidence test: its squared errors over the views
    the triangulation used); the person's height is the mean over the views. With `confidence` (V, P, J), 0 where a
    view's keypoint was not triangulated, the fit test (module docstring) applies too, to every person; without it
    (or `fit_chi2` 0) the rule is exactly the two-view guard's."""
    refined = np.asarray(refined, dtype=np.float64)
    if not guard.enabled or refined.size == 0:
        return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)
    coarse = np.asarray(coarse, dtype=np.float64)
    scales = np.linspace(1.0, 0.0, guard.steps + 1)
    candidates = coarse + scales.reshape((-1,) + (1,) * refined.ndim) * (refined - coarse)  # (S, P, J, 3)
    distance = np.linalg.norm(project(candidates) - pixels[:, None], axis=-1)              # (V, S, P, J)
    level = guard.confidence_for(layout)
    if level > 0:
        used = distance if confidence is None else np.where((confidence > 0)[:, None], distance, np.nan)
        passes = consistent_with_evidence(used ** 2, level)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # joints or people a view does not see
            errors = np.nanmean(distance, axis=0)  # (S, P, J)
            y = pixels[..., 1]
            height = np.nan_to_num(np.nanmean(np.nanmax(y, axis=-1) - np.nanmin(y, axis=-1), axis=0), nan=0.0)
        passes = _within_pixels(errors, coarse_error, views_agree(coarse_error, height, guard), guard)
    fits = None
    if confidence is not None and guard.fit_chi2 > 0:
        fits = fit_test(distance, confidence, guard.fit_chi2)
    return _shorten(coarse, refined, candidates, passes, guard, fits)


def fit_test(distance: np.ndarray, confidence: np.ndarray, chi2: float) -> np.ndarray:
    """(S, P, J) which candidates pass the fit test (module docstring): `distance` (V, S, P, J) each candidate's
    pixel distance to each view's keypoint, the triangulation (scale 0) last; `confidence` (V, P, J) the DLT's
    weights (0 where a view's keypoint is not used). A person with no degree of freedom left passes."""
    weight = np.where(np.isfinite(distance[:, -1]) & (confidence > 0), confidence, 0.0)    # (V, P, J)
    views = (weight > 0).sum(axis=0)                                                       # (P, J)
    relative = weight / np.maximum(weight.sum(axis=0) / np.maximum(views, 1), 1e-12)       # mean 1 per joint
    squared = np.where(weight[:, None] > 0, np.nan_to_num(distance, nan=np.inf) ** 2, 0.0)
    ssr = np.einsum("vpj,vspj->spj", relative, squared)                                    # (S, P, J)
    base = ssr[-1]
    dof = np.where((views >= 2) & np.isfinite(base), 2 * views - 3, 0)
    variance = np.where(dof > 0, base, 0.0).sum(axis=-1) / np.maximum(dof.sum(axis=-1), 1)  # (P,)
    with np.errstate(invalid="ignore"):  # inf - inf: a candidate and the triangulation both unseen
        return (ssr - base <= chi2 * variance[:, None] + 1e-9) | (dof.sum(axis=-1) == 0)[:, None]


def consistent_with_evidence(squared: np.ndarray, confidence: float) -> np.ndarray:
    """(S, ..., J) the evidence test (module docstring): `squared` (V, S, ..., J) each view's squared pixel error of
    each candidate, the triangulation (scale 0) last, NaN where a view does not see a joint. A candidate passes
    inside the triangulation's `confidence` region at the person's noise level; so does every candidate of a joint
    that is an outlier at that level or cannot be tested (fewer than two views, no noise estimate)."""
    seen = np.isfinite(squared[:, -1])  # (V, ..., J) views that see a joint
    dof = np.clip(2 * seen.sum(axis=0) - 3, 0, _MAX_DOF)  # (..., J) degrees of freedom of the triangulation
    total = np.where(np.isfinite(squared), squared, 0.0).sum(axis=0)  # (S, ..., J) summed over the seeing views
    tri = np.where(dof >= 1, total[-1], np.nan)  # the triangulation's squared residual; NaN: not testable
    sigma2 = nanmedian_last(tri / _CHI2_MEDIAN[dof])[..., None]  # (..., 1) the person's noise variance, px^2
    with np.errstate(invalid="ignore"):
        inside = (total - tri) <= sigma2 * _chi2_3(confidence) + 1e-9
        outlier = tri > sigma2 * _CHI2_OUTLIER[dof]
    return inside | outlier | ~np.isfinite(tri) | ~np.isfinite(sigma2)


def _within_pixels(errors: np.ndarray, coarse_error: np.ndarray, agree: np.ndarray,
                   guard: EvidenceGuard) -> np.ndarray:
    """(S, ..., J) the pixel rule: a candidate whose mean reprojection error (`errors` (S, ..., J)) is at most
    max(min_px, factor x the joint's DLT residual), or any candidate of a person whose views disagree (`agree`
    (...,) from `views_agree` False)."""
    allowed = np.maximum(guard.min_px, guard.factor * np.nan_to_num(coarse_error, nan=np.inf))
    return (errors <= allowed + 1e-9) | ~agree[..., None]


def _shorten(coarse: np.ndarray, refined: np.ndarray, candidates: np.ndarray, passes: np.ndarray,
             guard: EvidenceGuard, fits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per joint the largest scale of the correction (candidates (S, ..., J, 3), scale 1 first) that passes the
    layout's rule (`passes` (S, ..., J)) or is a gross repair (longer than `free_above_m`), and (`fits`, same shape)
    the fit test."""
    ok = passes.copy()
    if guard.free_above_m > 0:  # gross-error repairs stay
        ok = ok | (np.linalg.norm(refined - coarse, axis=-1) > guard.free_above_m)
    if fits is not None:
        ok = ok & fits
    ok[-1] = True  # the triangulation itself is always allowed
    first_ok = np.argmax(ok, axis=0)  # largest scale that satisfies the rule
    chosen = np.take_along_axis(candidates, first_ok[None, ..., None], axis=0)[0]
    usable = np.isfinite(coarse).all(axis=-1) & np.isfinite(refined).all(axis=-1)
    guarded = np.where(usable[..., None], chosen, refined)
    return guarded, usable & (first_ok > 0)

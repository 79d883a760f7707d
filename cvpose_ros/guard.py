"""Do no harm: keep each refined joint within what the two views' 2D evidence allows.

Where the two views agree (small DLT residual), a learnt prior has no evidence to move a joint far: it would only
pull the joint towards its own body, e.g. a detector's joint definition towards the training data's. Where the views
disagree (a swap, an outlier, heavy noise) the residual is large and the refiner may correct freely.

Rule: a person's views agree when the median DLT residual over their joints is at most `agree_fraction` of their
height in the image (both views' mean). For such a person each refined joint's mean reprojection error in the two
views may be at most `max(min_px, factor * the joint's DLT residual)`; when it is larger the joint's correction is
shortened (coarse + s * (refined - coarse) with the largest s of 1, (steps-1)/steps, ..., 0 that satisfies the
rule; s = 0, the triangulation, always does). People whose views disagree keep the refinement as it is, and so
does any correction longer than `free_above_m`: a left/right swap in one view can still be epipolar-consistent
(small residual), and the refiner moving a joint by decimetres is it repairing such a gross error, while the harm
seen on agreeing real views is a pull of a few centimetres towards the training body (measured: docs/model.md).

Three or more views (`guard_views` with `confidence`) add a test only they make sharp, for every person, agreeing
or not: the fit test. A person's noise variance s^2 is estimated from their N-view residuals (the sum over joints of
each joint's confidence-weighted squared residuals, weights relative to the joint's mean, over the degrees of
freedom left, sum of 2 x views - 3); a refined joint may raise its weighted squared residual over all the views that
see it by at most `fit_chi2` x s^2 (a true point raises it by s^2 x a chi-square variable with 3 degrees of
freedom), else its correction is shortened as above. With two views a joint leaves one degree of freedom, so the
variance is poorly known and the two-view path does not use it. It overrides `free_above_m`: a gross repair that
three views contradict is no repair.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cvpose_ros.nanstats import nanmedian_last

Projector = Callable[[np.ndarray], np.ndarray]  # points (..., 3) in a camera's frame -> raw pixels (..., 2)


@dataclass(frozen=True)
class EvidenceGuard:
    """Parameters of the do-no-harm rule (see the module docstring); `enabled=False` passes refinement through."""

    min_px: float = 3.0
    agree_fraction: float = 0.02
    factor: float = 2.0
    free_above_m: float = 0.15
    steps: int = 4
    enabled: bool = True
    fit_chi2: float = 2.0  # three or more views: allowed rise of the weighted squared residual / s^2; 0 = off

    def __post_init__(self) -> None:
        if (self.min_px < 0 or self.agree_fraction < 0 or self.factor < 1.0 or self.steps < 1 or self.free_above_m < 0
                or self.fit_chi2 < 0):
            raise ValueError(f"guard needs min_px, agree_fraction, free_above_m, fit_chi2 >= 0, factor >= 1 and "
                             f"steps >= 1, got {self}")


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
                     kp1: np.ndarray, guard: EvidenceGuard = EvidenceGuard()) -> tuple[np.ndarray, np.ndarray]:
    """Guarded poses (..., P, J, 3) in camera 0's frame and the (..., P, J) mask of joints whose correction was
    shortened. Arrays carry a person axis before the joints (the agreement is decided per person).

    coarse/refined (..., J, 3) in camera 0's frame; coarse_error (..., J) the DLT residual (px, mean of the views);
    kp0/kp1 (..., J, 2) each view's keypoints; project*/to_cam1 the cameras. Joints missing in coarse or refined
    are returned as refined.
    """
    refined = np.asarray(refined, dtype=np.float64)
    if not guard.enabled or refined.size == 0:
        return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)
    height = person_height_px(kp0, kp1)
    if not views_agree(coarse_error, height, guard).any():  # the rule holds no one back: skip the projections
        return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)
    coarse = np.asarray(coarse, dtype=np.float64)
    scales = np.linspace(1.0, 0.0, guard.steps + 1)
    candidates = coarse + scales.reshape((-1,) + (1,) * refined.ndim) * (refined - coarse)  # (S, ..., J, 3)
    # the last candidate is the triangulation, always allowed: its error is never read
    errors = mean_reprojection_error(candidates[:-1], project0, project1, to_cam1, kp0, kp1)  # (S - 1, ..., J)
    errors = np.concatenate([errors, np.zeros_like(errors[:1])])
    return _shorten(coarse, refined, candidates, errors, coarse_error, height, guard)


def views_agree(coarse_error: np.ndarray, height: np.ndarray, guard: EvidenceGuard) -> np.ndarray:
    """(...,) people whose views agree: median DLT residual (coarse_error (..., J), px) at most `agree_fraction` of
    their height (...,) px. A person without any residual has a NaN median and does not agree."""
    agreement = nanmedian_last(np.where(np.isfinite(coarse_error), coarse_error, np.nan))
    return agreement <= guard.agree_fraction * height  # NaN compares False


def guard_views(coarse: np.ndarray, refined: np.ndarray, coarse_error: np.ndarray,
                project: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray,
                guard: EvidenceGuard = EvidenceGuard(),
                confidence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The same rule over any number of views (three or more cameras): poses (P, J, 3) in one frame, coarse_error
    (P, J) the triangulation's mean residual over the views that see each joint, `project` points (..., 3) -> (V,
    ..., 2) pixels in every view, pixels (V, P, J, 2) NaN where a view does not see a joint. A refined joint's error
    is its mean reprojection error over the views that see it; the person's height is the mean over the views.
    With `confidence` (V, P, J), 0 where a view's keypoint was not triangulated, the fit test (module docstring)
    applies too, to every person; without it (or `fit_chi2` 0) the rule is exactly the two-view guard's."""
    refined = np.asarray(refined, dtype=np.float64)
    if not guard.enabled or refined.size == 0:
        return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)
    coarse = np.asarray(coarse, dtype=np.float64)
    scales = np.linspace(1.0, 0.0, guard.steps + 1)
    candidates = coarse + scales.reshape((-1,) + (1,) * refined.ndim) * (refined - coarse)  # (S, P, J, 3)
    distance = np.linalg.norm(project(candidates) - pixels[:, None], axis=-1)              # (V, S, P, J)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # joints or people a view does not see
        errors = np.nanmean(distance, axis=0)  # (S, P, J)
        y = pixels[..., 1]
        height = np.nan_to_num(np.nanmean(np.nanmax(y, axis=-1) - np.nanmin(y, axis=-1), axis=0), nan=0.0)
    fits = None
    if confidence is not None and guard.fit_chi2 > 0:
        fits = fit_test(distance, confidence, guard.fit_chi2)
    return _shorten(coarse, refined, candidates, errors, coarse_error, height, guard, fits)


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


def _shorten(coarse: np.ndarray, refined: np.ndarray, candidates: np.ndarray, errors: np.ndarray,
             coarse_error: np.ndarray, height: np.ndarray, guard: EvidenceGuard,
             fits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rule itself: per joint the largest scale of the correction whose error (`errors` (S, ..., J) for the
    candidates, scale 1 first) is allowed, for people whose views agree, and (`fits`, same shape) that passes the
    fit test."""
    allowed = np.maximum(guard.min_px, guard.factor * np.nan_to_num(coarse_error, nan=np.inf))
    agree = views_agree(coarse_error, height, guard)
    ok = (errors <= allowed + 1e-9) | ~agree[..., None]
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

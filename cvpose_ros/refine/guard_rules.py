"""The tests of the do-no-harm guard (`cvpose_ros.refine.guard`): plain array functions over a refined joint's candidate
positions (its correction at scales 1 ... 0, the triangulation last) that say which candidates pass.

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
- Fit test (three or more views, every person, agreeing or not, whatever the layout;
  `cvpose_ros.refine.guard.guard_views` with `confidence`). A person's noise variance s^2 is estimated from their N-view
  residuals (the sum over joints of each joint's confidence-weighted squared residuals, weights relative to the
  joint's mean, over the degrees of freedom left, sum of 2 x views - 3); a refined joint may raise its weighted
  squared residual over all the views that see it by at most `fit_chi2` x s^2 (a true point raises it by s^2 x a
  chi-square variable with 3 degrees of freedom). With two views a joint leaves one degree of freedom, so the
  variance is poorly known and the two-view path does not use it. It overrides `free_above_m`: a gross repair that
  three views contradict is no repair.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

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


def views_agree(coarse_error: np.ndarray, height: np.ndarray, agree_fraction: float) -> np.ndarray:
    """(...,) people whose views agree: median DLT residual (coarse_error (..., J), px) at most `agree_fraction` of
    their height (...,) px. A person without any residual has a NaN median and does not agree."""
    agreement = nanmedian_last(np.where(np.isfinite(coarse_error), coarse_error, np.nan))
    return agreement <= agree_fraction * height  # NaN compares False


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


def within_pixels(errors: np.ndarray, coarse_error: np.ndarray, agree: np.ndarray, min_px: float,
                  factor: float) -> np.ndarray:
    """(S, ..., J) the pixel rule: a candidate whose mean reprojection error (`errors` (S, ..., J)) is at most
    max(min_px, factor x the joint's DLT residual), or any candidate of a person whose views disagree (`agree`
    (...,) from `views_agree` False)."""
    allowed = np.maximum(min_px, factor * np.nan_to_num(coarse_error, nan=np.inf))
    return (errors <= allowed + 1e-9) | ~agree[..., None]

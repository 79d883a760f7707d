"""Do no harm: keep each refined joint where the views' 2D evidence allows it to be.

A learnt prior may move a joint only as far as the keypoints allow: without evidence it would pull the joint
towards its own body, e.g. a detector's joint definition towards the training data's. A refined joint's correction
is kept when it passes the rule of its keypoint layout, else it is shortened (coarse + s * (refined - coarse) with the
largest s of 1, (steps-1)/steps, ..., 0 that passes; s = 0, the triangulation, always does). The rules are pure
array tests in `cvpose_ros.refine.guard_rules`: the pixel rule (a layout whose confidence is 0; default h36m17), the
evidence test (a layout whose confidence is above 0; default coco17, 0.5) and, with three or more views, the fit
test for every person, which overrides `free_above_m`. This module picks and applies them.

Under either rule a correction longer than `free_above_m` is kept: a left/right swap in one view can be
epipolar-consistent (small residual), and the refiner moving a joint by decimetres is it repairing such a gross
error, while the harm seen on agreeing real views is a pull of a few centimetres towards the training body.

The coco17 weights use the evidence test at 0.5 (a corrected joint may sit as far from the keypoints as the median
true joint does): trained in the detector's own joint definition (a placement model that spans detectors), their
corrections follow the noise model, and the pixel rule, which cuts half of even perfect corrections on `detector`
noise, cost them 0.04 of ratio. The h36m17 weights keep the pixel rule: they often meet keypoints of another
definition (a COCO detector mapped by name), and their pull there is a systematic few centimetres that a noise test
can only bound by also cutting their synthetic gains (measured: docs/model.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cvpose_ros.refine.guard_rules import (
    Projector,
    consistent_with_evidence,
    fit_test,
    mean_reprojection_error,
    person_height_px,
    views_agree,
    within_pixels,
)

__all__ = ["EvidenceGuard", "guard_refinement", "guard_views", "mean_reprojection_error"]


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
        agree = views_agree(coarse_error, person_height_px(kp0, kp1), guard.agree_fraction)
        if not agree.any():
            return refined.copy(), np.zeros(refined.shape[:-1], dtype=bool)  # the pixel rule holds no one back
    coarse = np.asarray(coarse, dtype=np.float64)
    candidates = _candidates(coarse, refined, guard.steps)  # (S, ..., J, 3)
    if confidence > 0:
        squared = np.stack([np.sum((project0(candidates) - kp0) ** 2, axis=-1),
                            np.sum((project1(to_cam1(candidates)) - kp1) ** 2, axis=-1)])  # (2, S, ..., J)
        passes = consistent_with_evidence(squared, confidence)
    else:
        # the last candidate is the triangulation, always allowed: its error is never read
        errors = mean_reprojection_error(candidates[:-1], project0, project1, to_cam1, kp0, kp1)  # (S - 1, ..., J)
        errors = np.concatenate([errors, np.zeros_like(errors[:1])])
        passes = within_pixels(errors, coarse_error, agree, guard.min_px, guard.factor)
    return _shorten(coarse, refined, candidates, passes, guard)


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
    candidates = _candidates(coarse, refined, guard.steps)  # (S, P, J, 3)
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
        agree = views_agree(coarse_error, height, guard.agree_fraction)
        passes = within_pixels(errors, coarse_error, agree, guard.min_px, guard.factor)
    fits = None
    if confidence is not None and guard.fit_chi2 > 0:
        fits = fit_test(distance, confidence, guard.fit_chi2)
    return _shorten(coarse, refined, candidates, passes, guard, fits)


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


def _candidates(coarse: np.ndarray, refined: np.ndarray, steps: int) -> np.ndarray:
    """(S, ..., J, 3) the correction at scales 1, (steps-1)/steps, ..., 0: the refined pose first, the
    triangulation last."""
    scales = np.linspace(1.0, 0.0, steps + 1)
    return coarse + scales.reshape((-1,) + (1,) * refined.ndim) * (refined - coarse)

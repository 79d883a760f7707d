"""Scoring estimated skeletons against ground truth over a stream: person matching, MPJPE, latency, rate.

Used by the demo and by `cvpose-bag eval`. MPJPE is Protocol #1 (SPEC section 2): mean joint distance after
subtracting each skeleton's root (pelvis; mid-hip for coco17), in millimetres; the absolute error (no root
subtracted: where the person is, what a robot needs) is reported beside it. People are matched per frame by optimal
assignment on the mean joint distance (gated), so unmatched estimates count as extras and unmatched truths as
misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.pipeline.association import mean_joint_distance


def match_people(estimated: np.ndarray, truth: np.ndarray, gate_m: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i_est, i_truth) minimising the mean joint distance of (E, J, 3) and (G, J, 3), within `gate_m`."""
    if len(estimated) == 0 or len(truth) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cost = np.minimum(mean_joint_distance(estimated, truth), 1e6)
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] <= gate_m
    return rows[keep], cols[keep]


def root_relative_errors(estimated: np.ndarray, truth: np.ndarray, layout: str = "h36m17",
                         root_relative: bool = True) -> np.ndarray:
    """(P,) MPJPE in mm of matched (P, J, 3) pairs after subtracting each skeleton's root (the layout's; nothing
    with `root_relative=False`); NaN joints ignored."""
    if root_relative:
        lay = get_layout(layout)
        estimated = estimated - lay.root_of(estimated)[:, None]
        truth = truth - lay.root_of(truth)[:, None]
    err = np.linalg.norm(estimated - truth, axis=-1)
    finite = np.isfinite(err)
    count = finite.sum(axis=-1)
    return np.where(count > 0, 1000.0 * np.where(finite, err, 0.0).sum(axis=-1) / np.maximum(count, 1), np.nan)


@dataclass
class PoseScore:
    """Accumulates per-person errors, misses and extras over frames."""

    gate_m: float = 0.5
    layout: str = "h36m17"
    errors_mm: list[float] = field(default_factory=list)
    absolute_errors_mm: list[float] = field(default_factory=list)
    matched: int = 0
    missed: int = 0
    extra: int = 0
    frames: int = 0

    def add(self, estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Score one frame; returns the matched persons' MPJPE (mm)."""
        est_i, gt_i = match_people(estimated, truth, self.gate_m)
        errors = root_relative_errors(estimated[est_i], truth[gt_i], self.layout) if len(est_i) else np.zeros(0)
        absolute = root_relative_errors(estimated[est_i], truth[gt_i], self.layout, False) if len(est_i) \
            else np.zeros(0)
        errors = errors[np.isfinite(errors)]
        self.errors_mm.extend(errors.tolist())
        self.absolute_errors_mm.extend(absolute[np.isfinite(absolute)].tolist())
        self.matched += len(est_i)
        self.missed += len(truth) - len(est_i)
        self.extra += len(estimated) - len(est_i)
        self.frames += 1
        return errors

    def summary(self) -> dict[str, float | int | None]:
        e = np.asarray(self.errors_mm)
        a = np.asarray(self.absolute_errors_mm)
        return {"mpjpe_mm": float(e.mean()) if e.size else None,
                "median_mm": float(np.median(e)) if e.size else None,
                "absolute_mpjpe_mm": float(a.mean()) if a.size else None,
                "frames": self.frames, "people_matched": self.matched, "people_missed": self.missed,
                "people_extra": self.extra}


def latency_summary(latencies_ns: list[int] | np.ndarray) -> dict[str, float | None]:
    """p50/p99/mean/max end-to-end latency in milliseconds."""
    lat = np.asarray(latencies_ns, np.float64) / 1e6
    if lat.size == 0:
        return {"p50_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "mean_ms": float(lat.mean()), "max_ms": float(lat.max())}


def rate_hz(arrival_ns: list[int] | np.ndarray) -> float | None:
    """Mean output rate over the arrival times (None for fewer than two outputs)."""
    t = np.sort(np.asarray(arrival_ns, np.float64))
    return float((len(t) - 1) / ((t[-1] - t[0]) / 1e9)) if len(t) > 1 and t[-1] > t[0] else None

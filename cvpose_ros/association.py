"""Who is who: matching people across the two views, and output ids that stay stable over time.

Cross-view matching uses the detector's `track_id` when both views carry the same id (>= 0); everyone else is
matched by geometry: every candidate pair is triangulated in one batch and scored by its median reprojection error
(a wrong pair does not reproject consistently in both cameras), then the optimal one-to-one assignment
(Hungarian, `scipy.optimize.linear_sum_assignment`) is gated by `max_error_px`.

Output ids come from `IdTracker`, which matches each frame's 3D skeletons to the previous tracks by mean joint
distance (again Hungarian + gate). A new person takes the next id of a counter that only grows, so an id (REP 155
`body_<id>`) names one person for the whole run and is never reused; a track unseen for more than `timeout_s`
seconds of stamp time is released (whatever the frame rate), and whoever appears after that gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvpose_ros.camera import CameraModel, RigidTransform
from cvpose_ros.triangulation import triangulate_pair

_UNUSABLE = 1e9  # cost standing in for "impossible" inside the assignment solver


def _gated_assignment(cost: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal assignment of a (R, C) cost matrix keeping only pairs with finite cost <= gate.

    Costs above the gate all count the same inside the solver, so a far-off pair never buys a cheaper total by
    pushing two good pairs into worse ones (which raw costs would allow).
    """
    if cost.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    gated = np.where(np.isfinite(cost) & (cost <= gate), cost, _UNUSABLE)
    rows, cols = linear_sum_assignment(gated)
    keep = gated[rows, cols] <= gate
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise median of `values` (N, J) over entries where `mask` is true (every row has at least one)."""
    return np.nanmedian(np.where(mask, values, np.nan), axis=1)


def match_by_track_id(ids0: np.ndarray, ids1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i0, i1) of people that carry the same non-negative track id in both views."""
    equal = (ids0[:, None] == ids1[None, :]) & (ids0[:, None] >= 0)
    # A detector that repeats an id inside one view is ambiguous: use only ids that are unique per view.
    unique = (equal.sum(axis=1, keepdims=True) == 1) & (equal.sum(axis=0, keepdims=True) == 1)
    i0, i1 = np.nonzero(equal & unique)
    return i0.astype(np.int64), i1.astype(np.int64)


def reprojection_cost(cam0: CameraModel, cam1: CameraModel, cam1_from_cam0: RigidTransform,
                      kp0: np.ndarray, conf0: np.ndarray, kp1: np.ndarray, conf1: np.ndarray,
                      min_confidence: float, min_common_joints: int = 4) -> np.ndarray:
    """(A, B) median reprojection error in pixels of every candidate pair (inf when not comparable).

    All A*B pairs are triangulated in a single batched call. Pairs with fewer than `min_common_joints` joints seen in
    both views, or whose triangulated body lies behind either camera, get an infinite cost.
    """
    a, b = kp0.shape[0], kp1.shape[0]
    if a == 0 or b == 0:
        return np.zeros((a, b))
    tri = triangulate_pair(cam0, cam1, cam1_from_cam0,
                           np.repeat(kp0, b, axis=0), np.repeat(conf0, b, axis=0),
                           np.tile(kp1, (a, 1, 1)), np.tile(conf1, (a, 1)), min_confidence=min_confidence)
    valid = tri.valid & np.isfinite(tri.reprojection_error)
    usable = valid.sum(axis=1) >= min_common_joints
    cost = np.full(a * b, np.inf)
    if usable.any():
        v = valid[usable]
        depth0 = _masked_median(tri.cam0[usable][..., 2], v)
        depth1 = _masked_median(tri.cam1[usable][..., 2], v)
        errors = _masked_median(tri.reprojection_error[usable], v)
        cost[np.nonzero(usable)[0]] = np.where((depth0 > 0) & (depth1 > 0), errors, np.inf)
    return cost.reshape(a, b)


def match_views(cam0: CameraModel, cam1: CameraModel, cam1_from_cam0: RigidTransform,
                kp0: np.ndarray, conf0: np.ndarray, ids0: np.ndarray,
                kp1: np.ndarray, conf1: np.ndarray, ids1: np.ndarray,
                max_error_px: float, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i0, i1) of the same person in both views: track ids first, geometry for the rest."""
    t0, t1 = match_by_track_id(ids0, ids1)
    rest0 = np.setdiff1d(np.arange(kp0.shape[0]), t0)
    rest1 = np.setdiff1d(np.arange(kp1.shape[0]), t1)
    cost = reprojection_cost(cam0, cam1, cam1_from_cam0, kp0[rest0], conf0[rest0], kp1[rest1], conf1[rest1],
                             min_confidence)
    g0, g1 = _gated_assignment(cost, max_error_px)
    i0 = np.concatenate([t0, rest0[g0]])
    i1 = np.concatenate([t1, rest1[g1]])
    order = np.argsort(i0, kind="stable")
    return i0[order], i1[order]


def mean_joint_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) mean distance over joints finite in both skeletons of a (A, J, 3) and b (B, J, 3); inf if none."""
    diff = np.linalg.norm(a[:, None] - b[None, :], axis=-1)  # (A, B, J), NaN where either joint is missing
    finite = np.isfinite(diff)
    count = finite.sum(axis=-1)
    total = np.where(finite, diff, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.inf)


@dataclass
class _Track:
    joints: np.ndarray
    last_seen_ns: int


@dataclass
class IdTracker:
    """Person ids from frame-to-frame 3D proximity: monotonically increasing, never reused within a run."""

    max_distance_m: float = 0.5
    timeout_s: float = 1.0
    tracks: dict[int, _Track] = field(default_factory=dict)
    next_id: int = 0

    def update(self, joints: np.ndarray, stamp_ns: int) -> np.ndarray:
        """Ids (P,) for the skeletons (P, J, 3) of the frame stamped `stamp_ns` (a fixed frame); updates the tracks.

        Tracks last seen more than `timeout_s` before `stamp_ns` are released first.
        """
        timeout_ns = int(round(self.timeout_s * 1e9))
        for tid in [t for t, track in self.tracks.items() if stamp_ns - track.last_seen_ns > timeout_ns]:
            del self.tracks[tid]
        track_ids = np.array(sorted(self.tracks), dtype=np.int64)
        previous = (np.stack([self.tracks[i].joints for i in track_ids]) if len(track_ids)
                    else np.zeros((0,) + joints.shape[1:]))
        rows, cols = _gated_assignment(mean_joint_distance(joints, previous), self.max_distance_m)
        ids = np.full(joints.shape[0], -1, dtype=np.int64)
        ids[rows] = track_ids[cols]
        new = np.nonzero(ids < 0)[0]
        ids[new] = self.next_id + np.arange(len(new))
        self.next_id += len(new)
        for p, tid in enumerate(ids.tolist()):
            track = self.tracks.get(tid)
            # Keep the last known position of joints missing in this frame so matching stays possible.
            merged = joints[p] if track is None else np.where(np.isfinite(joints[p]), joints[p], track.joints)
            self.tracks[tid] = _Track(merged, stamp_ns)
        return ids

    def reset(self) -> None:
        """Forget all tracks (time jump, layout change); the id counter keeps counting so no id is reused."""
        self.tracks.clear()

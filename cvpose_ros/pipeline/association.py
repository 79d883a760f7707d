"""Who is who over time: output ids that stay stable, and the assignment helpers cross-view matching shares.

Cross-view matching itself (geometry first, track ids as hints, swap repair, crowds) is
`cvpose_ros.pipeline.cross_view`.

Output ids come from `IdTracker`, which matches each frame's 3D skeletons to the previous tracks by mean joint
distance (again Hungarian + gate). A new person takes the next id of a counter that only grows, so an id (REP 155
`body_<id>`) names one person for the whole run and is never reused; a track unseen for more than `timeout_s`
seconds of stamp time is released (whatever the frame rate), and whoever appears after that gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

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


def match_by_track_id(ids0: np.ndarray, ids1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i0, i1) of people that carry the same non-negative track id in both views."""
    equal = (ids0[:, None] == ids1[None, :]) & (ids0[:, None] >= 0)
    # A detector that repeats an id inside one view is ambiguous: use only ids that are unique per view.
    unique = (equal.sum(axis=1, keepdims=True) == 1) & (equal.sum(axis=0, keepdims=True) == 1)
    i0, i1 = np.nonzero(equal & unique)
    return i0.astype(np.int64), i1.astype(np.int64)


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

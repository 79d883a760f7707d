"""Who is who over time: output ids that stay stable, and the assignment helpers cross-view matching shares.

Cross-view matching itself (geometry first, track ids as hints, swap repair, crowds) is `cvpose_ros.cross_view`.

Output ids come from `IdTracker`, which matches each frame's 3D skeletons to the previous tracks by mean joint
distance (again Hungarian + gate). New people take the smallest free id, so ids stay small and short; a track
survives `max_missed_frames` frames without detection before its id can be reused.
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
    missed: int = 0


@dataclass
class IdTracker:
    """Stable, small person ids from frame-to-frame 3D proximity."""

    max_distance_m: float = 0.5
    max_missed_frames: int = 15
    tracks: dict[int, _Track] = field(default_factory=dict)

    def update(self, joints: np.ndarray) -> np.ndarray:
        """Ids (P,) for this frame's skeletons (P, J, 3) in a fixed frame; updates the tracks."""
        track_ids = np.array(sorted(self.tracks), dtype=np.int64)
        previous = (np.stack([self.tracks[i].joints for i in track_ids]) if len(track_ids)
                    else np.zeros((0,) + joints.shape[1:]))
        rows, cols = _gated_assignment(mean_joint_distance(joints, previous), self.max_distance_m)
        ids = np.full(joints.shape[0], -1, dtype=np.int64)
        ids[rows] = track_ids[cols]
        for tid in set(track_ids.tolist()) - set(ids[rows].tolist()):
            self.tracks[tid].missed += 1
            if self.tracks[tid].missed > self.max_missed_frames:
                del self.tracks[tid]
        for p in np.nonzero(ids < 0)[0]:
            ids[p] = self._smallest_free_id()
            self.tracks[int(ids[p])] = _Track(joints[p])
        for p, tid in enumerate(ids):
            track = self.tracks[int(tid)]
            # Keep the last known position of joints missing in this frame so matching stays possible.
            track.joints = np.where(np.isfinite(joints[p]), joints[p], track.joints)
            track.missed = 0
        return ids

    def reset(self) -> None:
        """Forget all tracks (e.g. after a time jump in a replay)."""
        self.tracks.clear()

    def _smallest_free_id(self) -> int:
        taken = set(self.tracks)
        return next(i for i in range(len(taken) + 1) if i not in taken)

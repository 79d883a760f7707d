"""Per-camera 2D person tracking: stable `track_id`s for one camera's detections across frames.

Each frame's people are matched to the current tracks by a similarity in 0..1 that mixes an OKS-like keypoint
similarity (joint distances relative to the person's size, over joints seen in both) with the IoU of the keypoint
boxes, then assigned one-to-one by `scipy.optimize.linear_sum_assignment`. Pairs below `min_similarity` are not
matched: an uncertain person gets a fresh id rather than someone else's, because a consumer (the refiner) can
recover from a new id but a swapped one pairs the wrong people. Tracks that miss a frame keep their last pose,
moved by their recent velocity, for `max_age` frames (people briefly occluded or missed by the detector), then are
dropped. Ids are never reused: they count up from `first_id`.
Plain numpy/SciPy, no ROS: the detector node calls `update` once per image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

# OKS falloff as a fraction of the person's size (sqrt of the keypoint box area): at 10% of the size a joint
# scores exp(-0.5) = 0.61. Frame-to-frame motion at video rates is well inside this; other people are far outside.
DEFAULT_KAPPA = 0.1
MIN_COMMON_JOINTS = 3  # fewer joints seen in both: the keypoint term is 0 (only the box IoU speaks)


def keypoint_boxes(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(P, J, 2) pixels, (P, J) bool -> (P, 4) boxes x0, y0, x1, y1 of the visible joints (NaN when none)."""
    x = np.where(visible, keypoints[..., 0], np.nan)
    y = np.where(visible, keypoints[..., 1], np.nan)
    empty = ~visible.any(axis=1)
    boxes = np.full((keypoints.shape[0], 4), np.nan)
    if (~empty).any():
        rows = ~empty
        boxes[rows] = np.stack([np.nanmin(x[rows], axis=1), np.nanmin(y[rows], axis=1),
                                np.nanmax(x[rows], axis=1), np.nanmax(y[rows], axis=1)], axis=1)
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4), (B, 4) xyxy boxes -> (A, B) intersection over union (0 where either box is NaN or empty)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(np.nan_to_num(bottom_right - top_left, nan=0.0), 0.0, None), axis=-1)
    area_a = np.prod(np.clip(np.nan_to_num(a[:, 2:] - a[:, :2], nan=0.0), 0.0, None), axis=-1)
    area_b = np.prod(np.clip(np.nan_to_num(b[:, 2:] - b[:, :2], nan=0.0), 0.0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def keypoint_similarity(a: np.ndarray, visible_a: np.ndarray, b: np.ndarray, visible_b: np.ndarray,
                        scale_a: np.ndarray, kappa: float = DEFAULT_KAPPA) -> np.ndarray:
    """(A, B) OKS-like similarity in 0..1 of poses a (A, J, 2) and b (B, J, 2).

    Mean over joints visible in both of exp(-d^2 / (2 (kappa * scale)^2)), scale = size of the a-person in pixels;
    0 when fewer than MIN_COMMON_JOINTS joints are shared.
    """
    both = visible_a[:, None, :] & visible_b[None, :, :]  # (A, B, J)
    d2 = np.sum((a[:, None] - b[None, :]) ** 2, axis=-1)  # NaN where a joint is missing
    spread = 2.0 * (kappa * np.maximum(scale_a, 1.0))[:, None, None] ** 2
    per_joint = np.where(both, np.exp(-np.nan_to_num(d2, nan=np.inf) / spread), 0.0)
    count = both.sum(axis=-1)
    return np.where(count >= MIN_COMMON_JOINTS, per_joint.sum(axis=-1) / np.maximum(count, 1), 0.0)


@dataclass
class _Tracks:
    """State of the live tracks, one row each (arrays so matching stays vectorised)."""

    ids: np.ndarray        # (T,) int64
    keypoints: np.ndarray  # (T, J, 2) last seen pixels (NaN where not seen)
    visible: np.ndarray    # (T, J) bool
    velocity: np.ndarray   # (T, 2) pixels per frame of the keypoint box centre (smoothed)
    age: np.ndarray        # (T,) frames since last matched (0 = seen in the latest frame)

    @classmethod
    def empty(cls, num_joints: int) -> _Tracks:
        return cls(np.zeros(0, np.int64), np.zeros((0, num_joints, 2)), np.zeros((0, num_joints), bool),
                   np.zeros((0, 2)), np.zeros(0, np.int64))

    def take(self, index: np.ndarray) -> _Tracks:
        return _Tracks(self.ids[index], self.keypoints[index], self.visible[index], self.velocity[index],
                       self.age[index])

    def extend(self, other: _Tracks) -> _Tracks:
        return _Tracks(*(np.concatenate([mine, theirs]) for mine, theirs in
                         ((self.ids, other.ids), (self.keypoints, other.keypoints), (self.visible, other.visible),
                          (self.velocity, other.velocity), (self.age, other.age))))


class PersonTracker:
    """Assigns stable ids to one camera's people, frame after frame (see module docstring).

    max_age: frames a track survives without a match (0 = forget at once).
    min_similarity: the lowest similarity (0..1) accepted as the same person.
    keypoint_weight: share of the keypoint similarity in the mix (the rest is box IoU).
    min_confidence: a joint counts as seen when its confidence is above this.
    first_id: the first id handed out; ids then count up and are never reused.
    """

    def __init__(self, max_age: int = 15, min_similarity: float = 0.3, keypoint_weight: float = 0.6,
                 min_confidence: float = 0.0, first_id: int = 0, kappa: float = DEFAULT_KAPPA) -> None:
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        if not 0.0 < min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in (0, 1], got {min_similarity}")
        if not 0.0 <= keypoint_weight <= 1.0:
            raise ValueError(f"keypoint_weight must be in [0, 1], got {keypoint_weight}")
        if first_id < 0:
            raise ValueError(f"first_id must be >= 0, got {first_id}")
        self.max_age, self.min_similarity = int(max_age), float(min_similarity)
        self.keypoint_weight, self.min_confidence, self.kappa = float(keypoint_weight), float(min_confidence), kappa
        self.next_id = int(first_id)
        self._tracks: _Tracks | None = None

    @property
    def num_tracks(self) -> int:
        """Live tracks, including those not seen in the latest frame but still remembered."""
        return 0 if self._tracks is None else int(self._tracks.ids.shape[0])

    def reset(self) -> None:
        """Forget every track (ids still never repeat)."""
        self._tracks = None

    def similarity(self, keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """(T, P) similarity of the live tracks (moved to where their velocity predicts) to the given people."""
        tracks = self._tracks
        if tracks is None or tracks.ids.size == 0 or keypoints.shape[0] == 0:
            return np.zeros((self.num_tracks, keypoints.shape[0]))
        elapsed = tracks.age + 1  # frames since the track was last seen
        predicted = tracks.keypoints + (tracks.velocity * elapsed[:, None])[:, None, :]
        track_boxes = keypoint_boxes(predicted, tracks.visible)
        sizes = np.sqrt(np.prod(np.nan_to_num(track_boxes[:, 2:] - track_boxes[:, :2], nan=0.0), axis=1))
        # a track unseen for a while may have moved anywhere nearby: widen its tolerance with its age
        sizes = sizes * (1.0 + 0.25 * tracks.age)
        oks = keypoint_similarity(predicted, tracks.visible, keypoints, visible, sizes, self.kappa)
        iou = box_iou(track_boxes, keypoint_boxes(keypoints, visible))
        return self.keypoint_weight * oks + (1.0 - self.keypoint_weight) * iou

    def update(self, keypoints: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Match this frame's people (P, J, 2) pixels / (P, J) confidence to the tracks; returns (P,) int64 ids."""
        keypoints = np.asarray(keypoints, dtype=np.float64)
        confidence = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
        if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or confidence.shape != keypoints.shape[:2]:
            raise ValueError(f"expected keypoints (P, J, 2) and confidence (P, J), got {keypoints.shape} and "
                             f"{confidence.shape}")
        people, joints = confidence.shape
        if self._tracks is None or self._tracks.keypoints.shape[1] != joints:
            self._tracks = _Tracks.empty(joints)  # first frame, or the layout changed: start over
        visible = (confidence > self.min_confidence) & np.isfinite(keypoints).all(axis=-1)
        sim = self.similarity(keypoints, visible)
        tracks = self._tracks
        rows, cols = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if sim.size:
            # below-gate pairs cost the same, so no bad pair can buy a better total by breaking two good ones
            cost = np.where(sim >= self.min_similarity, 1.0 - sim, 2.0)
            rows, cols = linear_sum_assignment(cost)
            keep = sim[rows, cols] >= self.min_similarity
            rows, cols = rows[keep], cols[keep]
        ids = np.full(people, -1, dtype=np.int64)
        ids[cols] = tracks.ids[rows]

        # matched tracks take the new pose; joints not seen now keep their last position (moved with the person)
        # velocity from the joints seen both then and now (a joint appearing or vanishing is not motion)
        shared = (visible[cols] & tracks.visible[rows])[..., None]
        moved = np.where(shared, keypoints[cols] - tracks.keypoints[rows], 0.0).sum(axis=1)
        step = moved / np.maximum(shared.sum(axis=1), 1) / (tracks.age[rows] + 1)[:, None]
        tracks.velocity[rows] = 0.5 * tracks.velocity[rows] + 0.5 * step
        shifted = tracks.keypoints[rows] + (step * (tracks.age[rows] + 1)[:, None])[:, None, :]
        tracks.keypoints[rows] = np.where(visible[cols][..., None], keypoints[cols], shifted)
        tracks.visible[rows] = visible[cols] | tracks.visible[rows]
        tracks.age += 1
        tracks.age[rows] = 0

        # new people: fresh ids, never reused
        new = np.setdiff1d(np.arange(people), cols)
        new = new[visible[new].any(axis=1)]  # a person with no usable joint cannot be tracked
        ids[new] = np.arange(self.next_id, self.next_id + new.size)
        self.next_id += int(new.size)
        born = _Tracks(ids[new].copy(), keypoints[new].copy(), visible[new].copy(), np.zeros((new.size, 2)),
                       np.zeros(new.size, np.int64))
        alive = tracks.take(np.flatnonzero(tracks.age <= self.max_age))
        self._tracks = alive.extend(born)
        return ids


ID_BLOCK = 1_000_000  # ids one camera can hand out before running into the next camera's block
ID_BLOCKS = 2000      # blocks below 2**31 (track_id is int32 on the wire)


def first_id_for(camera_name: str) -> int:
    """A first track id derived from a camera's name (e.g. the node namespace), so cameras whose trackers run
    independently hand out different ids: a consumer that pairs views by equal ids then never pairs two cameras'
    unrelated people. One of ID_BLOCKS blocks of ID_BLOCK ids, chosen by CRC-32 of the name."""
    return (zlib.crc32(camera_name.encode()) % ID_BLOCKS) * ID_BLOCK

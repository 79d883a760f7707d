"""Validation of one camera's keypoints for one frame, before triangulation.

Messages arrive as ragged per-person lists (`x`, `y`, `confidence`) in a named layout. This module turns them into
dense arrays in that same layout (coco17 stays coco17) and decides what is unusable: a person whose arrays
disagree in length is dropped (the rest of the frame is kept), an unknown layout drops the whole frame, NaN/inf
coordinates or confidences mark single joints as missing. Every decision is reported as a `Problem` so the node
can count it in /diagnostics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from cvpose_ros.body.skeleton import LAYOUTS, get_layout, to_h36m


class Problem(StrEnum):
    """Kinds of bad input the pipeline detects; the values are the /diagnostics counter names."""

    UNKNOWN_LAYOUT = "unknown_layout"
    BAD_ARRAY_SIZES = "bad_array_sizes"
    NAN_KEYPOINTS = "nan_keypoints"
    TOO_FEW_JOINTS = "too_few_joints"
    NO_PEOPLE = "no_people"
    UNMATCHED_PEOPLE = "unmatched_people"
    TRACK_ID_DISAGREEMENT = "track_id_disagreement"
    PEOPLE_OVER_LIMIT = "people_over_limit"
    LAYOUT_MISMATCH = "layout_mismatch"
    NO_CAMERA_INFO = "no_camera_info"
    INVALID_CALIBRATION = "invalid_calibration"
    NO_TRANSFORM = "no_transform"
    STALE_STAMP = "stale_stamp"
    FUTURE_STAMP = "future_stamp"
    INVALID_FRAME_ID = "invalid_frame_id"
    IMPLAUSIBLE_PERSON = "implausible_person"
    IMPLAUSIBLE_JOINTS = "implausible_joints"
    OUT_OF_ORDER = "out_of_order"
    SYNC_DROP = "sync_drop"
    PROCESSING_ERROR = "processing_error"


class FrameError(Exception):
    """A frame that cannot be used at all; carries the problem kind for the diagnostics counter."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass
class PersonInput:
    """One person as one camera reported it (ragged, unvalidated)."""

    track_id: int
    x: np.ndarray
    y: np.ndarray
    confidence: np.ndarray


@dataclass
class ViewInput:
    """Everything one camera reported for one image (what a Keypoints2D message carries)."""

    stamp_ns: int
    frame_id: str
    layout: str
    people: list[PersonInput]


@dataclass
class ViewKeypoints:
    """Validated keypoints of one view in `layout`; missing joints have NaN pixels and confidence 0."""

    pixels: np.ndarray       # (P, J, 2) float64, raw (distorted) pixels
    confidence: np.ndarray   # (P, J) float64 in [0, 1]
    track_ids: np.ndarray    # (P,) int64, -1 when untracked
    problems: Counter = field(default_factory=Counter)
    layout: str = "h36m17"

    @property
    def num_people(self) -> int:
        return int(self.pixels.shape[0])

    def as_h36m(self) -> ViewKeypoints:
        """The same people mapped to h36m17 (for a frame whose other view is h36m17)."""
        if self.layout == "h36m17":
            return self
        pixels, conf = to_h36m(self.pixels, self.confidence, self.layout)
        usable = np.isfinite(pixels).all(axis=-1) & (conf > 0.0)
        return ViewKeypoints(np.where(usable[..., None], pixels, np.nan), np.where(usable, conf, 0.0),
                             self.track_ids, self.problems, "h36m17")


def resolve_layout(message_layout: str, default_layout: str) -> str:
    """The message's own layout wins when set; an unknown one is a frame error."""
    name = message_layout.strip() or default_layout
    if name not in LAYOUTS:
        raise FrameError(Problem.UNKNOWN_LAYOUT, f"unknown keypoint layout {name!r}; expected one of {sorted(LAYOUTS)}")
    return name


def validate_view(view: ViewInput, default_layout: str, min_confidence: float,
                  min_valid_joints: int = 6) -> ViewKeypoints:
    """Dense, validated keypoints of one view, in the view's own layout.

    Per-person problems drop that person only: wrong or disagreeing array lengths, or fewer than
    `min_valid_joints` joints with finite pixels and confidence >= `min_confidence`. NaN/inf values mark joints as
    missing and are counted once per view. Raises FrameError for an unknown layout.
    """
    layout = get_layout(resolve_layout(view.layout, default_layout))
    problems: Counter = Counter()
    num = layout.num_joints
    kept = [p for p in view.people if len(p.x) == len(p.y) == len(p.confidence) == num]
    problems[Problem.BAD_ARRAY_SIZES] += len(view.people) - len(kept)
    if not kept:
        empty = np.zeros((0, num))
        return ViewKeypoints(np.zeros((0, num, 2)), empty, np.zeros(0, dtype=np.int64), problems, layout.name)
    pixels = np.stack([np.stack([np.asarray(p.x, np.float64), np.asarray(p.y, np.float64)], axis=-1) for p in kept])
    conf = np.stack([np.asarray(p.confidence, np.float64) for p in kept])
    ids = np.array([int(p.track_id) for p in kept], dtype=np.int64)
    finite = np.isfinite(pixels).all(axis=-1) & np.isfinite(conf)
    # NaN pixels with confidence 0 are the documented "missing joint"; anything else non-finite is a detector bug.
    with np.errstate(invalid="ignore"):
        inconsistent = ~finite & ~(conf <= 0.0)
    if inconsistent.any():
        problems[Problem.NAN_KEYPOINTS] += 1
    conf = np.where(finite, np.clip(conf, 0.0, 1.0), 0.0)
    pixels = np.where(finite[..., None], pixels, np.nan)
    usable = np.isfinite(pixels).all(axis=-1) & (conf >= min_confidence) & (conf > 0.0)
    pixels = np.where(usable[..., None], pixels, np.nan)
    conf = np.where(usable, conf, 0.0)
    enough = usable.sum(axis=-1) >= min_valid_joints
    problems[Problem.TOO_FEW_JOINTS] += int((~enough).sum())
    return ViewKeypoints(pixels[enough], conf[enough], ids[enough], problems, layout.name)

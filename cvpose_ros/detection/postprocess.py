"""Shared post-processing of detections: layout mappings, person filtering and output layout conversion.

Every backend returns coco17; this module maps other joint sets onto it (MediaPipe's 33 landmarks), drops weak or
surplus people and converts to the layout the node publishes (coco17 or h36m17 via `cvpose_ros.body.skeleton.to_h36m`).
"""

from __future__ import annotations

import numpy as np

from cvpose_ros.body.skeleton import COCO17, get_layout, to_h36m
from cvpose_ros.detection.backend import Detections

# MediaPipe BlazePose landmark index of each coco17 joint (an exact subset: nose, eyes, ears and the limb joints).
MEDIAPIPE33_TO_COCO17 = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28], dtype=np.int64)
MEDIAPIPE_NUM_LANDMARKS = 33
OUTPUT_LAYOUTS = ("coco17", "h36m17")


def mediapipe_to_coco17(landmarks: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select coco17 from MediaPipe's 33 landmarks: (..., 33, D), (..., 33) -> (..., 17, D), (..., 17)."""
    if landmarks.shape[-2] != MEDIAPIPE_NUM_LANDMARKS or confidence.shape[-1] != MEDIAPIPE_NUM_LANDMARKS:
        raise ValueError(f"expected {MEDIAPIPE_NUM_LANDMARKS} landmarks, got {landmarks.shape} / {confidence.shape}")
    return landmarks[..., MEDIAPIPE33_TO_COCO17, :], confidence[..., MEDIAPIPE33_TO_COCO17]


def mask_unusable_joints(detections: Detections, width: int, height: int) -> Detections:
    """Zero the confidence of joints that are NaN or outside the image (extrapolated guesses), and NaN the
    position of joints with zero confidence, so consumers see one consistent 'missing' marker."""
    kp = detections.keypoints.copy()
    conf = np.nan_to_num(detections.confidence.copy(), nan=0.0)
    x, y = kp[..., 0], kp[..., 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)  # NaN compares False
    conf = np.where(inside, np.clip(conf, 0.0, 1.0), 0.0).astype(np.float32)
    kp[conf <= 0] = np.nan
    return Detections(kp, conf, detections.scores, detections.layout)


def filter_people(detections: Detections, min_score: float, max_people: int) -> Detections:
    """Keep people with score >= min_score, best first, at most max_people (0 = no limit)."""
    keep = np.flatnonzero(detections.scores >= min_score)
    keep = keep[np.argsort(-detections.scores[keep], kind="stable")]
    if max_people > 0:
        keep = keep[:max_people]
    return detections.select(keep)


def convert_layout(detections: Detections, output_layout: str) -> Detections:
    """Convert coco17 detections to `output_layout` ('coco17' or 'h36m17'); derived joints take the lowest
    confidence of their sources."""
    if output_layout not in OUTPUT_LAYOUTS:
        raise ValueError(f"unsupported output_layout {output_layout!r}; expected one of {OUTPUT_LAYOUTS}")
    if detections.layout == output_layout:
        return detections
    if detections.layout != COCO17.name:
        raise ValueError(f"cannot convert {detections.layout} to {output_layout}")
    kp, conf = to_h36m(detections.keypoints.astype(np.float64), detections.confidence, detections.layout)
    conf = np.where(np.isnan(kp).any(axis=-1), 0.0, conf)
    return Detections(kp, conf, detections.scores, get_layout(output_layout).name)


def finalize(detections: Detections, width: int, height: int, output_layout: str = "coco17",
             min_score: float = 0.0, max_people: int = 0) -> Detections:
    """The full post-processing chain the node applies to a backend's output."""
    cleaned = mask_unusable_joints(detections, width, height)
    return convert_layout(filter_people(cleaned, min_score, max_people), output_layout)

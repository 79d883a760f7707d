"""The interface every 2D keypoint detector backend implements, and the result type they return.

A backend takes one RGB image and returns every person it found in coco17 order, in pixels of that image.
Keeping the interface this small lets the ROS node (and the bench) treat MediaPipe, ONNX models and test doubles
alike; layout conversion and filtering happen once, in `postprocess.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class DetectorError(RuntimeError):
    """A backend cannot be created (missing extra, bad model file) or cannot process an image."""


@dataclass
class Detections:
    """People found in one image.

    keypoints: (P, J, 2) float32 pixels (x right, y down) of the input image, pixel centres at integer
        coordinates (OpenCV, camera_info's K; MediaPipe's normalised landmarks times the size put pixel edges
        there, half a pixel off, well below its error); NaN for a joint the backend has no position for.
    confidence: (P, J) float32 in 0..1; 0 marks a missing joint.
    scores: (P,) float32 person score in 0..1 (detector box score, or mean joint confidence).
    layout: joint layout name (`cvpose_ros.body.skeleton.LAYOUTS`).
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    scores: np.ndarray
    layout: str = "coco17"

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        people, joints = self.confidence.shape[:2] if self.confidence.ndim == 2 else (-1, -1)
        if (self.keypoints.shape != (people, joints, 2) or self.scores.shape != (people,)):
            raise ValueError(f"inconsistent detection shapes: keypoints {self.keypoints.shape}, confidence "
                             f"{self.confidence.shape}, scores {self.scores.shape}")

    @property
    def num_people(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, num_joints: int = 17, layout: str = "coco17") -> Detections:
        """No people."""
        return cls(np.zeros((0, num_joints, 2)), np.zeros((0, num_joints)), np.zeros((0,)), layout)

    def select(self, index: np.ndarray) -> Detections:
        """The people at `index` (integer or boolean array), in that order."""
        return Detections(self.keypoints[index], self.confidence[index], self.scores[index], self.layout)


class DetectorBackend(ABC):
    """One 2D pose detector. Not thread-safe: call `detect` from one thread at a time."""

    #: short name used in parameters, diagnostics and the bench
    name: str = "backend"
    #: True when the backend can return more than one person per image
    multi_person: bool = False

    @abstractmethod
    def detect(self, image_rgb: np.ndarray) -> Detections:
        """Find people in an (H, W, 3) uint8 RGB image; returns coco17 detections in that image's pixels."""

    def max_input_reduction(self, width: int, height: int) -> float:
        """How many times smaller than `width` x `height` an image may be made before `detect` without the
        network seeing fewer pixels (the node's `decode_scale: 0` decodes JPEGs that much smaller). 1 = needs
        full resolution: the default, right for backends that crop each person at the person's own size."""
        return 1.0

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release native resources (graphs, sessions)."""

    def __enter__(self) -> DetectorBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_rgb_image(image: np.ndarray) -> np.ndarray:
    """Return `image` as a C-contiguous (H, W, 3) uint8 array, or raise DetectorError saying what is wrong."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise DetectorError(f"expected an (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise DetectorError(f"image too small: {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image)

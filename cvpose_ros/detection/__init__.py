"""2D keypoint detection: backends behind one interface, image conversion and post-processing.

Optional dependencies (mediapipe, onnxruntime) are imported only when their backend is created.
"""

from __future__ import annotations

from typing import Any

from cvpose_ros.detection.backend import Detections, DetectorBackend, DetectorError
from cvpose_ros.detection.postprocess import finalize
from cvpose_ros.detection.protobuf_compat import install_protobuf_compat

BACKENDS = ("mediapipe", "onnx")
install_protobuf_compat()  # before anyone imports mediapipe (see protobuf_compat.py)

__all__ = ["BACKENDS", "Detections", "DetectorBackend", "DetectorError", "create_backend", "finalize"]


def create_backend(name: str, **options: Any) -> DetectorBackend:
    """Create the backend called `name` ('mediapipe' or 'onnx') with its keyword options.

    mediapipe: tracking, min_detection_confidence, min_tracking_confidence, min_presence_confidence, num_poses,
        window_aspect, rescan, refine_crops (see MediaPipeBackend).
    onnx: model_path (required), model_type, device, input_size, mean, std, score_threshold, iou_threshold, box,
        box_padding, num_threads, person_model_path, person_class (see OnnxBackend).
    Raises DetectorError for an unknown name, a missing optional extra or a bad model.
    """
    if name == "mediapipe":
        from cvpose_ros.detection.mediapipe_backend import MediaPipeBackend

        return MediaPipeBackend(**options)
    if name == "onnx":
        from cvpose_ros.detection.onnx_backend import OnnxBackend

        if not options.get("model_path"):
            raise DetectorError("the onnx backend needs model_path (an .onnx file)")
        return OnnxBackend(**options)
    raise DetectorError(f"unknown detector backend {name!r}; expected one of {BACKENDS}")

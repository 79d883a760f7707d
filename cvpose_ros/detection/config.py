"""Detector node settings: the typed `DetectorConfig`, its validation, and the node's parameter table `PARAMETERS`
(`cvpose_ros.param_spec.ParamSpec`: default, description, range, read-only) in the same kit as the refiner's.
Kept free of rclpy so the checks are testable alone; the node declares exactly these parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from cvpose_ros.detection import BACKENDS
from cvpose_ros.detection.mediapipe_backend import DEFAULT_NUM_POSES
from cvpose_ros.detection.onnx_backend import DEVICES, MODEL_TYPES
from cvpose_ros.detection.postprocess import OUTPUT_LAYOUTS
from cvpose_ros.detection.reduced_decode import DECODE_SCALES
from cvpose_ros.param_spec import ParameterError, ParamSpec

IMAGE_RELIABILITIES = ("best_effort", "reliable")


@dataclass
class DetectorConfig:
    """Validated detector node parameters (see `PARAMETER_DOCS` for the meaning of each)."""

    backend: str = "mediapipe"
    model_path: str = ""
    model_type: str = "auto"
    output_layout: str = "coco17"
    min_confidence: float = 0.3
    max_people: int = 0
    use_compressed: bool = False
    decode_scale: int = 0
    frame_id: str = ""
    device: str = "cpu"
    num_threads: int = 0
    input_size: list[int] | None = None
    box: list[float] | None = None
    box_padding: float = 1.25
    nms_iou: float = 0.45
    mediapipe_tracking: bool = True
    mediapipe_window_aspect: float = 1.0
    mediapipe_rescan: bool = True
    mediapipe_refine_crops: int = 0
    person_model_path: str = ""
    track: bool = True
    track_max_age: int = 15
    track_min_similarity: float = 0.3
    track_id_start: int = -1
    use_cv_bridge: bool = True
    queue_depth: int = 1
    image_reliability: str = "best_effort"
    expected_rate: float = 0.0
    min_received_fraction: float = 0.9
    diagnostics_period: float = 1.0

    def __post_init__(self) -> None:
        self.input_size = list(self.input_size) if self.input_size is not None else [0, 0]
        self.box = list(self.box) if self.box is not None else [0.0, 0.0, 0.0, 0.0]
        validate(self)

    def backend_options(self) -> dict[str, Any]:
        """Keyword options for `cvpose_ros.detection.create_backend(self.backend, ...)`."""
        if self.backend == "mediapipe":
            return {"tracking": self.mediapipe_tracking, "min_detection_confidence": self.min_confidence,
                    "num_poses": self.max_people or DEFAULT_NUM_POSES, "window_aspect": self.mediapipe_window_aspect,
                    "rescan": self.mediapipe_rescan, "refine_crops": self.mediapipe_refine_crops}
        has_box = self.box[2] > self.box[0] and self.box[3] > self.box[1]
        return {"model_path": self.model_path, "model_type": self.model_type, "device": self.device,
                "input_size": tuple(self.input_size) if min(self.input_size) > 0 else None,
                "score_threshold": self.min_confidence, "iou_threshold": self.nms_iou,
                "box": tuple(self.box) if has_box else None, "box_padding": self.box_padding,
                "num_threads": self.num_threads, "person_model_path": self.person_model_path or None}

    def tracker_options(self) -> dict[str, Any]:
        """Keyword options for `cvpose_ros.detection.tracking.PersonTracker` (first_id is the node's choice)."""
        return {"max_age": self.track_max_age, "min_similarity": self.track_min_similarity}


PARAMETER_DOCS: dict[str, str] = {
    "backend": f"detector backend: one of {BACKENDS}",
    "model_path": "ONNX model file (backend 'onnx'); nothing is downloaded",
    "model_type": f"ONNX export convention: one of {MODEL_TYPES}",
    "output_layout": f"published joint layout: one of {OUTPUT_LAYOUTS}",
    "min_confidence": "minimum person score 0..1 to publish a person (also MediaPipe's detection and YOLO's box "
                      "threshold at start-up)",
    "max_people": "publish at most this many people per image, best first (0 = no limit); MediaPipe looks for "
                  f"this many per window, fixed at start-up (0 = {DEFAULT_NUM_POSES})",
    "use_compressed": "subscribe to image/compressed (JPEG/PNG) instead of image",
    "decode_scale": "decode JPEG images at 1/decode_scale of their size (1, 2, 4, 8; keypoints are mapped back to "
                    "full-resolution pixels); 0 = auto: the largest reduction the backend's network does not notice "
                    "(YOLO-pose letterbox, whole-image top-down crop), full size for MediaPipe and person crops",
    "frame_id": "frame_id of the output (empty = copy the image's)",
    "device": f"ONNX Runtime device: one of {DEVICES}",
    "num_threads": "ONNX Runtime intra-op threads (0 = its default)",
    "input_size": "ONNX model input [width, height] ([0, 0] = read from the model)",
    "box": "person box [x0, y0, x1, y1] in pixels for top-down ONNX models (all zero = whole image)",
    "box_padding": "top-down box enlargement before cropping (RTMPose uses 1.25)",
    "nms_iou": "YOLO-pose non-maximum suppression IoU threshold",
    "mediapipe_tracking": "MediaPipe: follow the people between frames (video); false = every image on its own",
    "mediapipe_window_aspect": "MediaPipe: search images whose long side exceeds this many short sides in "
                               "overlapping square windows (finds people the 224 px detector misses); 0 = never",
    "mediapipe_rescan": "MediaPipe: search again with everyone found hidden (it drops one of two people standing "
                        "about a body height apart); false = one pass, faster",
    "mediapipe_refine_crops": "MediaPipe: run the landmark model again on this many square crops cut around each "
                              "person's own landmarks and average them (the same person then gets about the same "
                              "keypoints alone or among others; costs that many landmark runs per person); 0 = off",
    "person_model_path": "ONNX person detector (YOLO-family or mmdeploy export) run before a top-down ONNX pose "
                         "model, one pose per person box; empty = box / whole image",
    "track": "give people per-camera track ids stable across frames (-1 when false)",
    "track_max_age": "frames a person not seen keeps their track id before it is dropped",
    "track_min_similarity": "lowest keypoint/box similarity 0..1 accepted as the same person between frames",
    "track_id_start": "first track id of this camera (-1 = derived from the node's namespace, so two cameras "
                      "never share ids)",
    "use_cv_bridge": "convert images with cv_bridge when it is importable",
    "queue_depth": "image subscription history depth; 1 = always the newest image",
    "image_reliability": f"image subscription reliability: one of {IMAGE_RELIABILITIES}; best_effort connects to "
                         "both reliable and sensor-data (best-effort) publishers, reliable only to reliable ones",
    "expected_rate": "the camera's image rate (Hz) to measure loss against; 0 = take it from camera_info, else "
                     "from the image stamps",
    "min_received_fraction": "/diagnostics WARN when fewer than this fraction of the camera's images arrive, or "
                             "of the arrived images are processed (0..1)",
    "diagnostics_period": "seconds between /diagnostics messages",
}
RUNTIME_PARAMETERS = ("min_confidence", "max_people", "frame_id")  # may change while running; the rest are read-only
# Inclusive numeric ranges, declared in the descriptors (`ros2 param describe`) and checked before `validate`.
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "min_confidence": (0.0, 1.0), "max_people": (0, 1000), "decode_scale": (0, 8), "num_threads": (0, 1024),
    "box_padding": (0.01, 100.0), "nms_iou": (0.0, 1.0), "mediapipe_window_aspect": (0.0, 100.0),
    "mediapipe_refine_crops": (0, 16),
    "track_max_age": (0, 1_000_000), "track_min_similarity": (0.0, 1.0), "track_id_start": (-1, 2**31 - 1),
    "queue_depth": (1, 1000), "expected_rate": (0.0, 10_000.0), "min_received_fraction": (0.0, 1.0),
    "diagnostics_period": (0.001, 3600.0),
}


def defaults() -> dict[str, Any]:
    """Parameter name -> default value, in declaration order."""
    config = DetectorConfig()
    return {f.name: getattr(config, f.name) for f in fields(DetectorConfig)}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def validate(config: DetectorConfig) -> None:
    """Raise ValueError naming the first invalid parameter."""
    _require(config.backend in BACKENDS, f"backend must be one of {BACKENDS}, got {config.backend!r}")
    _require(config.backend != "onnx" or bool(config.model_path), "backend 'onnx' needs model_path")
    _require(config.model_type in MODEL_TYPES, f"model_type must be one of {MODEL_TYPES}, got {config.model_type!r}")
    _require(config.output_layout in OUTPUT_LAYOUTS,
             f"output_layout must be one of {OUTPUT_LAYOUTS}, got {config.output_layout!r}")
    _require(0.0 <= config.min_confidence <= 1.0, f"min_confidence must be in [0, 1], got {config.min_confidence}")
    _require(config.max_people >= 0, f"max_people must be >= 0, got {config.max_people}")
    _require(config.decode_scale in DECODE_SCALES,
             f"decode_scale must be one of {DECODE_SCALES} (0 = auto), got {config.decode_scale}")
    _require(config.decode_scale in (0, 1) or config.box[2] <= config.box[0] or config.box[3] <= config.box[1],
             f"decode_scale {config.decode_scale} cannot be used with a fixed box (its pixels are the full image's); "
             "set decode_scale to 0 or 1")
    _require(not config.frame_id.startswith("/"), f"frame_id must not start with '/', got {config.frame_id!r}")
    _require(config.device in DEVICES, f"device must be one of {DEVICES}, got {config.device!r}")
    _require(config.num_threads >= 0, f"num_threads must be >= 0, got {config.num_threads}")
    _require(len(config.input_size) == 2 and min(config.input_size) >= 0,
             f"input_size must be [width, height] >= 0, got {config.input_size}")
    _require(len(config.box) == 4, f"box must be [x0, y0, x1, y1], got {config.box}")
    _require(config.box_padding > 0, f"box_padding must be > 0, got {config.box_padding}")
    _require(0.0 < config.nms_iou <= 1.0, f"nms_iou must be in (0, 1], got {config.nms_iou}")
    _require(config.mediapipe_window_aspect == 0.0 or config.mediapipe_window_aspect >= 1.0,
             f"mediapipe_window_aspect must be 0 or >= 1, got {config.mediapipe_window_aspect}")
    _require(0 <= config.mediapipe_refine_crops <= 16,
             f"mediapipe_refine_crops must be in [0, 16] (0 = off), got {config.mediapipe_refine_crops}")
    _require(not config.person_model_path or config.backend == "onnx",
             "person_model_path needs backend 'onnx' (a top-down ONNX pose model)")
    _require(config.track_max_age >= 0, f"track_max_age must be >= 0, got {config.track_max_age}")
    _require(0.0 < config.track_min_similarity <= 1.0,
             f"track_min_similarity must be in (0, 1], got {config.track_min_similarity}")
    _require(config.track_id_start >= -1, f"track_id_start must be >= -1, got {config.track_id_start}")
    _require(config.queue_depth >= 1, f"queue_depth must be >= 1, got {config.queue_depth}")
    _require(config.image_reliability in IMAGE_RELIABILITIES,
             f"image_reliability must be one of {IMAGE_RELIABILITIES}, got {config.image_reliability!r}")
    _require(config.expected_rate >= 0, f"expected_rate must be >= 0 (Hz), got {config.expected_rate}")
    _require(0.0 <= config.min_received_fraction <= 1.0,
             f"min_received_fraction must be in [0, 1], got {config.min_received_fraction}")
    _require(config.diagnostics_period > 0, f"diagnostics_period must be > 0, got {config.diagnostics_period}")


def config_from_values(values: dict[str, Any]) -> DetectorConfig:
    """The validated settings from a complete name -> value dict; ParameterError names what is wrong."""
    try:
        return DetectorConfig(**values)
    except (ValueError, TypeError) as exc:
        raise ParameterError(str(exc)) from exc


def _table() -> dict[str, ParamSpec]:
    values = defaults()
    if set(values) != set(PARAMETER_DOCS) or not set(PARAMETER_RANGES) <= set(values):
        raise RuntimeError("detector parameter table out of sync with DetectorConfig")  # a developer error
    return {name: ParamSpec(default, PARAMETER_DOCS[name], PARAMETER_RANGES.get(name),
                            restart=name not in RUNTIME_PARAMETERS) for name, default in values.items()}


PARAMETERS: dict[str, ParamSpec] = _table()

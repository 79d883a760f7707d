"""ONNX Runtime backend for a user-supplied 2D pose model (coco17 output). Nothing is downloaded.

Supported export conventions (`model_type`, or 'auto' to recognise them from the output shapes):
- 'simcc': top-down RTMPose-style, outputs simcc_x (1, K, Wx) and simcc_y (1, K, Hy); one person per box.
- 'heatmap': top-down HRNet/ViTPose-style, one output (1, K, h, w); one person per box.
- 'yolo_pose': bottom-up Ultralytics YOLO-pose, one output (1, 5 + 3K, anchors) (or transposed); multi-person.
Top-down models crop each box of an optional ONNX person detector (`person_model_path`, see
`person_detector.py`), else `box` (x0, y0, x1, y1) in image pixels, or the whole image when no box is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cvpose_ros.body.skeleton import COCO17
from cvpose_ros.detection import onnx_codecs as codecs
from cvpose_ros.detection.backend import Detections, DetectorBackend, DetectorError, check_rgb_image

MODEL_TYPES = ("auto", "simcc", "heatmap", "yolo_pose")
DEVICES = ("cpu", "cuda", "auto")
DEFAULT_INPUT_SIZE = {"simcc": (192, 256), "heatmap": (192, 256), "yolo_pose": (640, 640)}  # (w, h)


def providers_for(device: str, available: Sequence[str]) -> list[str]:
    """ONNX Runtime execution providers for `device` ('cpu', 'cuda' or 'auto' = CUDA when available)."""
    if device not in DEVICES:
        raise DetectorError(f"device must be one of {DEVICES}, got {device!r}")
    wants_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise DetectorError(f"device 'cuda' requested but ONNX Runtime offers only {list(available)} "
                            "(install onnxruntime-gpu)")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if wants_cuda else ["CPUExecutionProvider"]


def guess_model_type(output_shapes: Sequence[Sequence[object]], num_joints: int = COCO17.num_joints) -> str:
    """Recognise the export convention from the model's output shapes (see module docstring)."""
    ranks = [len(shape) for shape in output_shapes]
    if len(ranks) == 2 and ranks == [3, 3]:
        return "simcc"
    if ranks and ranks[0] == 4:
        return "heatmap"
    if ranks and ranks[0] == 3 and 5 + 3 * num_joints in output_shapes[0]:
        return "yolo_pose"
    raise DetectorError(f"cannot tell the model type from its output shapes {list(output_shapes)}; "
                        f"set model_type to one of {MODEL_TYPES[1:]}")


class OnnxBackend(DetectorBackend):
    """2D pose from an ONNX model file (see module docstring for the conventions).

    input_size: (w, h) of the model input; None reads it from the model (falls back to the type's usual size
        when the model's input is dynamic).
    mean / std: per-channel RGB normalisation on 0..255 pixels; None = ImageNet for top-down, 0 / 255 for YOLO.
    score_threshold / iou_threshold: YOLO-pose person score threshold and NMS overlap.
    box: default person box for top-down models (None = whole image); `detect(image, box=...)` overrides it.
    box_padding: how much the box is grown before cropping (1.25 as in RTMPose).
    """

    name = "onnx"

    def __init__(self, model_path: str | Path, model_type: str = "auto", device: str = "cpu",
                 input_size: tuple[int, int] | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, score_threshold: float = 0.25, iou_threshold: float = 0.45,
                 box: Sequence[float] | None = None, box_padding: float = 1.25, num_threads: int = 0,
                 person_model_path: str | Path | None = None, person_class: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorError("the ONNX backend needs the optional extra 'onnx' "
                                "(pip install 'cvpose_ros[onnx]' from a clone, or on a ROS install: "
                                "pip install onnxruntime)") from exc
        if model_type not in MODEL_TYPES:
            raise DetectorError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise DetectorError(f"ONNX model file not found: {str(model_path)!r}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(num_threads), 0)
        options.log_severity_level = 3
        providers = providers_for(device, ort.get_available_providers())

        def open_session(model: Path):
            try:
                return ort.InferenceSession(str(model), sess_options=options, providers=providers)
            except Exception as exc:  # onnxruntime raises its own exception types for unreadable/invalid models
                raise DetectorError(f"ONNX Runtime cannot load {model.name}: {exc}") from exc

        self._session = open_session(path)
        outputs = self._session.get_outputs()
        self.model_type = guess_model_type([o.shape for o in outputs]) if model_type == "auto" else model_type
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        self._output_names = self._ordered_output_names([o.name for o in outputs])
        self.input_size = self._resolve_input_size(model_input.shape, input_size)
        top_down = self.model_type != "yolo_pose"
        self._mean = tuple(mean) if mean is not None else (codecs.IMAGENET_MEAN_255 if top_down else (0.0,) * 3)
        self._std = tuple(std) if std is not None else (codecs.IMAGENET_STD_255 if top_down else (255.0,) * 3)
        if len(self._mean) != 3 or len(self._std) != 3 or min(self._std) <= 0:
            raise DetectorError(f"mean and std need 3 values (std > 0), got {self._mean} and {self._std}")
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)
        self.box = tuple(float(v) for v in box) if box else None
        self.box_padding = float(box_padding)
        self.person_detector = None
        if person_model_path:
            if self.model_type == "yolo_pose":
                raise DetectorError("person_model_path is for top-down pose models; a YOLO-pose model finds the "
                                    "people itself")
            from cvpose_ros.detection.person_detector import OnnxPersonDetector

            self.person_detector = OnnxPersonDetector(open_session, person_model_path, person_class,
                                                      score_threshold, iou_threshold)
        self.multi_person = self.model_type == "yolo_pose" or self.person_detector is not None

    def _ordered_output_names(self, names: list[str]) -> list[str]:
        """SimCC outputs as [x, y], recognised by name when the export names them (simcc_x / simcc_y)."""
        if self.model_type == "simcc":
            if len(names) != 2:
                raise DetectorError(f"a SimCC model has two outputs, this one has {names}")
            if names[0].lower().endswith("y") and names[1].lower().endswith("x"):
                return [names[1], names[0]]
        return names

    def _resolve_input_size(self, shape: Sequence[object], requested: tuple[int, int] | None) -> tuple[int, int]:
        if requested and all(int(v) > 0 for v in requested):
            return int(requested[0]), int(requested[1])
        if len(shape) != 4:
            raise DetectorError(f"expected a (1, 3, h, w) image input, the model has {list(shape)}")
        height, width = shape[2], shape[3]
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            return width, height
        return DEFAULT_INPUT_SIZE[self.model_type]

    def detect(self, image_rgb: np.ndarray, box: Sequence[float] | None = None) -> Detections:
        image = check_rgb_image(image_rgb)
        height, width = image.shape[:2]
        try:
            if self.model_type == "yolo_pose":
                return self._detect_bottom_up(image)
            if box is None and self.person_detector is not None:
                return self._detect_people(image)
            return self._detect_top_down(image, tuple(box) if box is not None else self.box or (0, 0, width, height))
        except ValueError as exc:  # outputs or box of an unexpected shape
            raise DetectorError(str(exc)) from exc

    def max_input_reduction(self, width: int, height: int) -> float:
        """YOLO-pose letterboxes the whole image into input_size, a top-down model without a box or person
        detector crops the whole image: the network sees the image shrunk by 1 / that scale, so an image that much
        smaller loses nothing. A fixed box or person boxes are cropped at the person's size: full resolution."""
        if self.model_type == "yolo_pose":
            return 1.0 / codecs.letterbox_transform((width, height), self.input_size).scale
        if self.box is None and self.person_detector is None:
            return 1.0 / codecs.crop_transform((0, 0, width, height), self.input_size, self.box_padding).scale
        return 1.0

    def _run(self, tensor: np.ndarray) -> list[np.ndarray]:
        try:
            return self._session.run(self._output_names, {self._input_name: tensor})
        except Exception as exc:  # keep onnxruntime's message, expose one error type
            raise DetectorError(f"ONNX inference failed: {exc}") from exc

    def _detect_top_down(self, image: np.ndarray, box: tuple[float, ...]) -> Detections:
        transform = codecs.crop_transform(box, self.input_size, self.box_padding)
        outputs = self._run(codecs.warp_to_input(image, transform, self.input_size, self._mean, self._std))
        if self.model_type == "simcc":
            joints, confidence = codecs.decode_simcc(outputs[0][0], outputs[1][0], self.input_size)
        else:
            joints, confidence = codecs.decode_heatmaps(outputs[0][0], self.input_size)
        self._check_joint_count(joints.shape[0])
        score = np.array([confidence.mean()], dtype=np.float32)
        return Detections(transform.to_image(joints)[None], confidence[None], score)

    def _detect_people(self, image: np.ndarray) -> Detections:
        """Person detector, then the pose model once per box; the person score is the box score."""
        boxes, scores = self.person_detector.detect(image)
        if boxes.shape[0] == 0:
            return Detections.empty()
        people = [self._detect_top_down(image, tuple(b)) for b in boxes]
        return Detections(np.concatenate([p.keypoints for p in people]),
                          np.concatenate([p.confidence for p in people]), scores)

    def _detect_bottom_up(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        transform = codecs.letterbox_transform((width, height), self.input_size)
        tensor = codecs.warp_to_input(image, transform, self.input_size, self._mean, self._std,
                                      pad_value=codecs.YOLO_PAD_VALUE)
        output = self._run(tensor)[0]
        _, scores, joints, confidence = codecs.decode_yolo_pose(output[0], COCO17.num_joints, self.score_threshold,
                                                                self.iou_threshold)
        return Detections(transform.to_image(joints), confidence, scores)

    def _check_joint_count(self, count: int) -> None:
        if count != COCO17.num_joints:
            raise DetectorError(f"the model outputs {count} joints; only coco17 (17) models are supported")

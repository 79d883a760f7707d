"""ONNX person detector in front of a top-down pose model: image -> person boxes. Nothing is downloaded.

Supported exports (recognised from the output shape):
- YOLO-family detection (Ultralytics YOLOv5u/v8/11 and the like): one output (1, 4 + classes, anchors) or its
  transpose, rows cx, cy, w, h then one score per class; `person_class` (COCO: 0) is kept, then NMS.
- Exports with NMS inside (Ultralytics `nms=True`, YOLOv10, RT-DETR-style postprocessed): one output (1, N, 6)
  rows x0, y0, x1, y1, score, class.
The input is the letterboxed image (pad 114), RGB / 255, as these exports expect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvpose_ros.detection import onnx_codecs as codecs
from cvpose_ros.detection.backend import DetectorError

DEFAULT_INPUT_SIZE = (640, 640)


def decode_person_boxes(output: np.ndarray, person_class: int, score_threshold: float, iou_threshold: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One detector output (batch dimension removed) -> person boxes (N, 4) xyxy and scores (N,) in input
    pixels, best first. (N, 6) rows are final detections; any other 2D shape is a YOLO (4 + classes, anchors)."""
    if output.ndim != 2:
        raise ValueError(f"person detector output must be 2D after the batch dimension, got {output.shape}")
    if output.shape[1] == 6 and output.shape[0] != 6:  # x0, y0, x1, y1, score, class (NMS inside the model)
        rows = output[(output[:, 5].round() == person_class) & (output[:, 4] >= score_threshold)]
        order = np.argsort(-rows[:, 4], kind="stable")
        return rows[order, :4].astype(np.float32), rows[order, 4].astype(np.float32)
    rows = output if output.shape[0] > output.shape[1] else output.T  # (anchors, 4 + classes)
    if rows.shape[1] < 5 or person_class + 4 >= rows.shape[1]:
        raise ValueError(f"person detector output {output.shape} has no class {person_class}")
    scores = rows[:, 4 + person_class]
    rows, scores = rows[scores >= score_threshold], scores[scores >= score_threshold]
    centre, size = rows[:, 0:2], rows[:, 2:4]
    boxes = np.concatenate([centre - size / 2.0, centre + size / 2.0], axis=1)
    keep = codecs.non_max_suppression(boxes, scores, iou_threshold)
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)


class OnnxPersonDetector:
    """Person boxes from an ONNX detection model (see module docstring); `detect(rgb)` -> (boxes, scores) in
    image pixels."""

    def __init__(self, session_factory, model_path: str | Path, person_class: int = 0,
                 score_threshold: float = 0.3, iou_threshold: float = 0.45, max_people: int = 0) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise DetectorError(f"person detector model file not found: {str(model_path)!r}")
        self._session = session_factory(path)
        model_input = self._session.get_inputs()[0]
        shape = model_input.shape
        self._input_name = model_input.name
        if len(shape) != 4:
            raise DetectorError(f"person detector: expected a (1, 3, h, w) image input, the model has {list(shape)}")
        height, width = shape[2], shape[3]
        fixed = isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
        self.input_size = (width, height) if fixed else DEFAULT_INPUT_SIZE
        self.person_class, self.max_people = int(person_class), int(max_people)
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        transform = codecs.letterbox_transform((width, height), self.input_size)
        tensor = codecs.warp_to_input(image, transform, self.input_size, (0.0,) * 3, (255.0,) * 3,
                                      pad_value=codecs.YOLO_PAD_VALUE)
        try:
            output = self._session.run(None, {self._input_name: tensor})[0]
        except Exception as exc:  # keep onnxruntime's message, expose one error type
            raise DetectorError(f"person detector inference failed: {exc}") from exc
        boxes, scores = decode_person_boxes(np.asarray(output)[0], self.person_class, self.score_threshold,
                                            self.iou_threshold)
        if self.max_people > 0:
            boxes, scores = boxes[:self.max_people], scores[:self.max_people]
        corners = transform.to_image(boxes.reshape(-1, 2)).reshape(-1, 4)
        corners = np.clip(corners, 0.0, [width - 1, height - 1, width - 1, height - 1])
        usable = (corners[:, 2] > corners[:, 0] + 1) & (corners[:, 3] > corners[:, 1] + 1)
        return corners[usable], scores[usable]

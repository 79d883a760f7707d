"""Pre- and post-processing of the common 2D pose model exports (pure numpy + OpenCV, no onnxruntime needed).

Top-down models see one person crop: `crop_transform` maps a box (grown by `padding` and widened to the model's
aspect ratio, as RTMPose/mmpose do) onto the input; `decode_simcc` (RTMPose SimCC) and `decode_heatmaps`
(HRNet/ViTPose style) read joints back in input pixels. Bottom-up YOLO-pose sees the letterboxed image and
`decode_yolo_pose` turns its (56, anchors) tensor into people after score filtering and NMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)
YOLO_PAD_VALUE = 114


@dataclass(frozen=True)
class ScaleShift:
    """Image -> model input mapping without rotation: input = image * scale + offset (per axis x, y)."""

    scale: float
    offset_x: float
    offset_y: float

    def matrix(self) -> np.ndarray:
        return np.array([[self.scale, 0.0, self.offset_x], [0.0, self.scale, self.offset_y]], dtype=np.float64)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) model-input pixels back to image pixels."""
        offset = np.array([self.offset_x, self.offset_y], dtype=np.float64)
        return ((points - offset) / self.scale).astype(np.float32)


def crop_transform(box: tuple[float, float, float, float], input_size: tuple[int, int],
                   padding: float = 1.25) -> ScaleShift:
    """Transform placing box (x0, y0, x1, y1) centred in an input of input_size (w, h), grown by `padding` and
    widened along one axis to the input's aspect ratio."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box must have x1 > x0 and y1 > y0, got {box}")
    in_w, in_h = input_size
    box_w, box_h = (x1 - x0) * padding, (y1 - y0) * padding
    box_w = max(box_w, box_h * in_w / in_h)  # widen the narrower side: aspect ratio of the input
    scale = in_w / box_w
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return ScaleShift(scale, in_w / 2.0 - scale * cx, in_h / 2.0 - scale * cy)


def letterbox_transform(image_size: tuple[int, int], input_size: tuple[int, int]) -> ScaleShift:
    """Uniform scale fitting image_size (w, h) inside input_size (w, h), centred with padding (YOLO letterbox)."""
    (img_w, img_h), (in_w, in_h) = image_size, input_size
    scale = min(in_w / img_w, in_h / img_h)
    return ScaleShift(scale, (in_w - img_w * scale) / 2.0, (in_h - img_h * scale) / 2.0)


def warp_to_input(image_rgb: np.ndarray, transform: ScaleShift, input_size: tuple[int, int],
                  mean: tuple[float, ...], std: tuple[float, ...], pad_value: int = 0) -> np.ndarray:
    """Warp an RGB uint8 image into a normalised (1, 3, h, w) float32 tensor."""
    warped = cv2.warpAffine(image_rgb, transform.matrix(), input_size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(pad_value,) * 3)
    tensor = np.ascontiguousarray(warped.transpose(2, 0, 1), dtype=np.float32)  # (3, h, w), one copy
    tensor -= np.asarray(mean, np.float32)[:, None, None]
    tensor *= (1.0 / np.asarray(std, np.float32))[:, None, None]
    return tensor[None]


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, input_size: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """SimCC (K, Wx), (K, Hy) classification vectors -> joints (K, 2) in input pixels and confidence (K,).

    The bin width comes from the vector length (Wx / input width, usually 2 bins per pixel); the confidence is
    the smaller of the two peak values (as mmpose does), clipped to 0..1.
    """
    if simcc_x.ndim != 2 or simcc_y.ndim != 2 or simcc_x.shape[0] != simcc_y.shape[0]:
        raise ValueError(f"SimCC outputs must be (K, Wx) and (K, Hy), got {simcc_x.shape} and {simcc_y.shape}")
    ratio_x, ratio_y = simcc_x.shape[1] / input_size[0], simcc_y.shape[1] / input_size[1]
    x = simcc_x.argmax(axis=1) / ratio_x
    y = simcc_y.argmax(axis=1) / ratio_y
    confidence = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1))
    return np.stack([x, y], axis=-1).astype(np.float32), np.clip(confidence, 0.0, 1.0).astype(np.float32)


def decode_heatmaps(heatmaps: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (K, h, w) -> joints (K, 2) in input pixels and confidence (K,) (peak value clipped to 0..1).

    The peak is moved a quarter pixel towards the higher neighbour (the classic sub-pixel refinement).
    """
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must be (K, h, w), got {heatmaps.shape}")
    num, hm_h, hm_w = heatmaps.shape
    flat = heatmaps.reshape(num, -1)
    peak = flat.argmax(axis=1)
    iy, ix = np.divmod(peak, hm_w)
    rows = np.arange(num)
    left = heatmaps[rows, iy, np.clip(ix - 1, 0, hm_w - 1)]
    right = heatmaps[rows, iy, np.clip(ix + 1, 0, hm_w - 1)]
    up = heatmaps[rows, np.clip(iy - 1, 0, hm_h - 1), ix]
    down = heatmaps[rows, np.clip(iy + 1, 0, hm_h - 1), ix]
    interior_x = (ix > 0) & (ix < hm_w - 1)
    interior_y = (iy > 0) & (iy < hm_h - 1)
    dx = np.where(interior_x, 0.25 * np.sign(right - left), 0.0)
    dy = np.where(interior_y, 0.25 * np.sign(down - up), 0.0)
    stride = np.array([input_size[0] / hm_w, input_size[1] / hm_h])
    joints = np.stack([ix + dx, iy + dy], axis=-1) * stride
    confidence = np.clip(flat[rows, peak], 0.0, 1.0)
    return joints.astype(np.float32), confidence.astype(np.float32)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on (N, 4) xyxy boxes; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def decode_yolo_pose(output: np.ndarray, num_joints: int, score_threshold: float, iou_threshold: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """YOLO-pose output (5 + 3K, A) or (A, 5 + 3K) -> boxes (P, 4) xyxy, scores (P,), keypoints (P, K, 2),
    keypoint confidence (P, K), all in input pixels, after score filtering and NMS.

    Rows are cx, cy, w, h, person score, then x, y, visibility per joint. Visibility already in 0..1 (Ultralytics
    exports apply the sigmoid) is used as is; raw logits are passed through a sigmoid.
    """
    channels = 5 + 3 * num_joints
    if output.ndim != 2 or channels not in output.shape:
        raise ValueError(f"YOLO-pose output must be ({channels}, anchors) or (anchors, {channels}), "
                         f"got {output.shape}")
    rows = output if output.shape[1] == channels and output.shape[0] != channels else output.T
    rows = rows[rows[:, 4] >= score_threshold].astype(np.float64)
    centre, size = rows[:, 0:2], rows[:, 2:4]
    boxes = np.concatenate([centre - size / 2.0, centre + size / 2.0], axis=1)
    keep = non_max_suppression(boxes, rows[:, 4], iou_threshold)
    rows, boxes = rows[keep], boxes[keep]
    joints = rows[:, 5:].reshape(-1, num_joints, 3)
    visibility = joints[..., 2]
    if visibility.size and (visibility.min() < 0.0 or visibility.max() > 1.0):
        visibility = 1.0 / (1.0 + np.exp(-visibility))
    return (boxes.astype(np.float32), rows[:, 4].astype(np.float32), joints[..., :2].astype(np.float32),
            visibility.astype(np.float32))

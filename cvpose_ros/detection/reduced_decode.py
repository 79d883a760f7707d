"""JPEG images decoded at 1/2, 1/4 or 1/8 of their size when the detector's network would not see more pixels.

libjpeg scales the inverse DCT, so `cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_2)` skips most of the work a full
decode does (the Huffman decoding stays); a YOLO-pose network that letterboxes a 1920x1080 image into 640x640
sees 640x360 pixels, so decoding at 960x540 loses nothing it would use. The detector gets the reduced image, and
its keypoints are mapped back to pixels of the original image, so camera_info and triangulation never know.

Coordinates follow OpenCV's pixel-centre convention (pixel i's centre at x = i, as camera_info's K): reduced pixel
j averages original pixels s*j .. s*j + s - 1, whose centre is x = s*j + (s - 1) / 2, hence
x_full = (x_reduced + 0.5) * s - 0.5.
Plain numpy/OpenCV, no rclpy: the node passes message fields and a full decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cvpose_ros.detection.image_conversion import ImageConversionError, as_uint8

AUTO = 0
DECODE_SCALES = (AUTO, 1, 2, 4, 8)  # 0 = auto; others: the reduction factor
_IMREAD_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass
class DecodedImage:
    """An RGB image for the detector and how it relates to the original: `factor` (1 = full resolution) and the
    original `width` x `height` in pixels."""

    rgb: np.ndarray
    factor: int
    width: int
    height: int

    @classmethod
    def full(cls, rgb: np.ndarray) -> DecodedImage:
        return cls(rgb, 1, int(rgb.shape[1]), int(rgb.shape[0]))


def is_jpeg(buffer: np.ndarray) -> bool:
    """True when the bytes start with a JPEG start-of-image marker (the format string of a CompressedImage is
    free text, so the bytes decide)."""
    return buffer.size >= 3 and bytes(buffer[:3]) == _JPEG_MAGIC


def pick_factor(requested: int, limit: float) -> int:
    """The reduction to decode at: `requested` when it is 1, 2, 4 or 8; for AUTO the largest of those that is at
    most `limit` (the backend's `max_input_reduction`)."""
    if requested != AUTO:
        return requested
    return max([1] + [s for s in DECODE_SCALES[2:] if s <= limit + 1e-9])


def reduced_size(width: int, height: int, factor: int) -> tuple[int, int]:
    """Size of a JPEG of width x height decoded at 1/factor (libjpeg rounds up)."""
    return -(-width // factor), -(-height // factor)


def to_full_resolution(points: np.ndarray, factor: int) -> np.ndarray:
    """Map (..., 2) pixel coordinates of an image decoded at 1/factor to the original image (pixel centres at
    integers, see module docstring); NaN stays NaN."""
    if factor == 1:
        return points
    return ((np.asarray(points, np.float64) + 0.5) * factor - 0.5).astype(np.float32)


def decode_jpeg_reduced(buffer: np.ndarray, factor: int) -> np.ndarray:
    """Decode JPEG bytes at 1/factor (2, 4 or 8) to (H, W, 3) uint8 RGB; raises ImageConversionError."""
    decoded = cv2.imdecode(buffer, _IMREAD_REDUCED[factor])
    if decoded is None:
        raise ImageConversionError(f"cannot decode JPEG image at 1/{factor} ({buffer.size} bytes)")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


class CompressedDecoder:
    """Decodes CompressedImage messages for one camera, reduced where `scale` allows (see module docstring).

    scale: AUTO (0), 1, 2, 4 or 8. With AUTO the factor comes from `limit(width, height)` (the backend's largest
        harmless reduction for an image of that size). PNG and other formats are always decoded in full.
    full_decode: message -> full-resolution RGB (the node's converter, cv_bridge when available).
    The first image, and any whose reduced size does not match the last full one (the camera changed its
    resolution), is decoded in full: that is how the original size is known exactly.
    """

    def __init__(self, scale: int, limit: Callable[[int, int], float], full_decode: Callable[[Any], np.ndarray]
                 ) -> None:
        if scale not in DECODE_SCALES:
            raise ValueError(f"decode_scale must be one of {DECODE_SCALES} (0 = auto), got {scale}")
        self.scale, self._limit, self._full_decode = scale, limit, full_decode
        self._size: tuple[int, int] | None = None  # (width, height) of the last full decode
        self._kind: tuple[int, int, bool] | None = None  # that size and whether it was a JPEG
        self.factor = 1  # for JPEGs of that size (1 while the images are not JPEGs)
        self.reduced_count = 0  # images decoded reduced so far

    def decode(self, msg: Any) -> DecodedImage:
        if self.scale != 1 and self._size is not None and self.factor > 1:
            buffer = as_uint8(msg.data)
            if is_jpeg(buffer):
                rgb = decode_jpeg_reduced(buffer, self.factor)
                width, height = self._size
                if (rgb.shape[1], rgb.shape[0]) == reduced_size(width, height, self.factor):
                    self.reduced_count += 1
                    return DecodedImage(rgb, self.factor, width, height)
        rgb = self._full_decode(msg)
        height, width = rgb.shape[:2]
        kind = (width, height, is_jpeg(as_uint8(msg.data)))
        if kind != self._kind:
            self._size, self._kind = (width, height), kind
            self.factor = pick_factor(self.scale, self._limit(width, height)) if kind[2] else 1
        return DecodedImage.full(rgb)

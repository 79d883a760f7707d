"""sensor_msgs/Image and sensor_msgs/CompressedImage -> (H, W, 3) uint8 RGB numpy arrays.

cv_bridge is used when importable (it knows every encoding); otherwise the package's own conversion covers
rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1, 8UC3, yuv422 (UYVY) and yuv422_yuy2, honouring `step` (row padding)
and `is_bigendian`, plus JPEG/PNG CompressedImage through cv2.imdecode. Messages are duck-typed (only their fields
are read), so this module imports without rclpy.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# encoding -> (channels, bytes per channel, OpenCV conversion to RGB or None when already RGB)
_ENCODINGS: dict[str, tuple[int, int, int | None]] = {
    "rgb8": (3, 1, None),
    "bgr8": (3, 1, cv2.COLOR_BGR2RGB),
    "8UC3": (3, 1, cv2.COLOR_BGR2RGB),  # cv_bridge reads untyped 3-channel images as BGR
    "rgba8": (4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": (1, 1, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, 1, cv2.COLOR_GRAY2RGB),
    "mono16": (1, 2, cv2.COLOR_GRAY2RGB),
    "yuv422": (2, 1, cv2.COLOR_YUV2RGB_UYVY),  # ROS 'yuv422' is UYVY byte order
    "uyvy": (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": (2, 1, cv2.COLOR_YUV2RGB_YUY2),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


class ImageConversionError(ValueError):
    """The message cannot be turned into an RGB image (unsupported encoding, truncated data, bad codec)."""


def _cv_bridge() -> Any | None:
    """A CvBridge instance when the ROS cv_bridge package is importable, else None."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


class ImageConverter:
    """Converts image messages to RGB; uses cv_bridge when available and `use_cv_bridge` is True."""

    def __init__(self, use_cv_bridge: bool = True) -> None:
        self._bridge = _cv_bridge() if use_cv_bridge else None

    @property
    def uses_cv_bridge(self) -> bool:
        return self._bridge is not None

    def image_to_rgb(self, msg: Any) -> np.ndarray:
        """sensor_msgs/Image -> (H, W, 3) uint8 RGB."""
        if self._bridge is not None:
            try:
                return np.ascontiguousarray(self._bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            except Exception as exc:  # cv_bridge raises CvBridgeError or cv2.error
                raise ImageConversionError(f"cv_bridge cannot convert {msg.encoding!r} image: {exc}") from exc
        return image_fields_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data, bool(msg.is_bigendian))

    def compressed_to_rgb(self, msg: Any) -> np.ndarray:
        """sensor_msgs/CompressedImage (JPEG or PNG) -> (H, W, 3) uint8 RGB."""
        if self._bridge is not None:
            try:
                return np.ascontiguousarray(self._bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            except Exception as exc:
                raise ImageConversionError(f"cv_bridge cannot decode {msg.format!r} image: {exc}") from exc
        return decode_compressed(msg.format, msg.data)


def as_uint8(data: Any) -> np.ndarray:
    """View message bytes (bytes, array.array, numpy) as a flat uint8 array without copying when possible."""
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:  # a plain list of ints
        return np.asarray(data, dtype=np.uint8).ravel()


def image_fields_to_rgb(height: int, width: int, encoding: str, step: int, data: Any,
                        is_bigendian: bool = False) -> np.ndarray:
    """Convert raw sensor_msgs/Image fields to (H, W, 3) uint8 RGB; raises ImageConversionError."""
    if encoding not in _ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported without cv_bridge: "
                                   f"{', '.join(SUPPORTED_ENCODINGS)}")
    channels, depth, conversion = _ENCODINGS[encoding]
    row_bytes = width * channels * depth
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    if step < row_bytes:
        raise ImageConversionError(f"step {step} is shorter than one row of {width} {encoding} pixels "
                                   f"({row_bytes} bytes)")
    buffer = as_uint8(data)
    if buffer.size < height * step:
        raise ImageConversionError(f"image data has {buffer.size} bytes, {height} rows of step {step} need "
                                   f"{height * step}")
    rows = buffer[: height * step].reshape(height, step)[:, :row_bytes]
    if depth == 2:
        dtype = np.dtype(">u2" if is_bigendian else "<u2")
        pixels = (np.ascontiguousarray(rows).view(dtype).reshape(height, width) >> 8).astype(np.uint8)
    else:
        pixels = rows.reshape(height, width, channels) if channels > 1 else rows
    pixels = np.ascontiguousarray(pixels)
    if conversion is None:
        return pixels
    try:
        return cv2.cvtColor(pixels, conversion)
    except cv2.error as exc:  # e.g. an odd width for a 4:2:2 encoding
        raise ImageConversionError(f"cannot convert {width}x{height} {encoding} image: {exc}") from exc


def decode_compressed(fmt: str, data: Any) -> np.ndarray:
    """Decode a JPEG or PNG CompressedImage payload to (H, W, 3) uint8 RGB; raises ImageConversionError."""
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ImageConversionError(f"compressed depth images are not colour images (format {fmt!r})")
    buffer = as_uint8(data)
    if buffer.size == 0:
        raise ImageConversionError("compressed image has no data")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageConversionError(f"cannot decode compressed image (format {fmt!r}, {buffer.size} bytes)")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)

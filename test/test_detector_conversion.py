"""Image message -> RGB conversion without cv_bridge (the package's own path) and coco17 mapping helpers."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cvpose_ros.detection import Detections
from cvpose_ros.detection.image_conversion import ImageConversionError, ImageConverter, image_fields_to_rgb
from cvpose_ros.detection.postprocess import (
    MEDIAPIPE33_TO_COCO17,
    convert_layout,
    filter_people,
    mask_unusable_joints,
    mediapipe_to_coco17,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def padded(pixels: np.ndarray, pad: int = 3) -> tuple[bytes, int]:
    """Rows of `pixels` (H, W[, C]) with `pad` junk bytes after each row: (data, step)."""
    rows = pixels.reshape(pixels.shape[0], -1)
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    return np.concatenate([rows.view(np.uint8), junk], axis=1).tobytes(), rows.view(np.uint8).shape[1] + pad


@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB),
    ("bgr8", RGB[..., ::-1]),
    ("8UC3", RGB[..., ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_with_row_padding(encoding, pixels):
    data, step = padded(np.ascontiguousarray(pixels))
    out = image_fields_to_rgb(5, 7, encoding, step, data)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, RGB)


def test_mono_encodings():
    gray = RGB[..., 0].copy()
    for encoding in ("mono8", "8UC1"):
        out = image_fields_to_rgb(5, 7, encoding, 7, gray.tobytes())
        np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    wide = gray.astype(np.uint16) * 256 + 77  # the high byte carries the value
    for big_endian in (False, True):
        raw = wide.astype(">u2" if big_endian else "<u2")
        data, step = padded(raw, pad=2)
        out = image_fields_to_rgb(5, 7, "mono16", step, data, is_bigendian=big_endian)
        np.testing.assert_array_equal(out[..., 1], gray)


def test_yuv422_grey_and_message_fields():
    uyvy = np.full((4, 8 * 2), 128, np.uint8)  # U = Y = V = 128: mid grey
    msg = SimpleNamespace(height=4, width=8, encoding="yuv422", step=16, data=list(uyvy.ravel()),
                          is_bigendian=0)
    out = ImageConverter(use_cv_bridge=False).image_to_rgb(msg)
    assert out.shape == (4, 8, 3) and np.all(np.abs(out.astype(int) - 128) <= 2)


def test_compressed_jpeg_and_png():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 20:50] = (250, 30, 10)  # a red patch: survives JPEG, proves the RGB order
    converter = ImageConverter(use_cv_bridge=False)
    for ext, fmt in ((".png", "png"), (".jpg", "rgb8; jpeg compressed bgr8")):
        ok, encoded = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert ok
        out = converter.compressed_to_rgb(SimpleNamespace(format=fmt, data=encoded.tobytes()))
        assert out.shape == (40, 60, 3)
        tolerance = 0 if ext == ".png" else 12
        assert np.abs(out[20, 35].astype(int) - [250, 30, 10]).max() <= tolerance


@pytest.mark.parametrize("fields, message", [
    ((5, 7, "32FC1", 28, bytes(140)), "unsupported image encoding '32FC1'"),
    ((5, 7, "rgb8", 20, bytes(100)), "step 20 is shorter"),
    ((5, 7, "rgb8", 21, bytes(50)), "has 50 bytes"),
    ((0, 7, "rgb8", 21, b""), "empty image"),
    ((2, 7, "yuv422", 14, bytes(28)), "cannot convert 7x2 yuv422"),  # 4:2:2 needs an even width
])
def test_bad_raw_images_raise_one_clear_error(fields, message):
    with pytest.raises(ImageConversionError, match=message):
        image_fields_to_rgb(*fields)


@pytest.mark.parametrize("fmt, data, message", [
    ("jpeg", b"", "no data"),
    ("jpeg", b"\xff\xd8 definitely not a jpeg", "cannot decode"),
    ("16UC1; compressedDepth", b"\x00" * 20, "compressed depth"),
])
def test_bad_compressed_images(fmt, data, message):
    with pytest.raises(ImageConversionError, match=message):
        ImageConverter(use_cv_bridge=False).compressed_to_rgb(SimpleNamespace(format=fmt, data=data))


def test_mediapipe_mapping_is_the_coco_subset():
    landmarks = np.arange(33 * 2, dtype=np.float32).reshape(33, 2)
    conf = np.linspace(0, 1, 33, dtype=np.float32)
    kp, c = mediapipe_to_coco17(landmarks, conf)
    # nose, eyes (not the inner/outer corners), ears, shoulders..wrists, hips..ankles
    expected = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    np.testing.assert_array_equal(MEDIAPIPE33_TO_COCO17, expected)
    np.testing.assert_array_equal(kp[:, 0], landmarks[MEDIAPIPE33_TO_COCO17, 0])
    np.testing.assert_array_equal(c, conf[MEDIAPIPE33_TO_COCO17])
    with pytest.raises(ValueError, match="33 landmarks"):
        mediapipe_to_coco17(landmarks[:17], conf[:17])


def test_out_of_image_joints_become_missing_and_people_are_ranked():
    kp = np.tile(np.array([[10.0, 10.0]], np.float32), (3, 17, 1))
    kp[0, 3] = (-1.0, 5.0)      # left of the image
    kp[0, 4] = (5.0, 100.0)     # below the image (height 50)
    kp[1, 5] = np.nan
    det = Detections(kp, np.full((3, 17), 0.8), np.array([0.5, 0.9, 0.2]))
    clean = mask_unusable_joints(det, width=80, height=50)
    assert clean.confidence[0, 3] == 0 and clean.confidence[0, 4] == 0 and clean.confidence[1, 5] == 0
    assert np.isnan(clean.keypoints[0, 3]).all() and clean.confidence[0, 0] == pytest.approx(0.8)
    ranked = filter_people(clean, min_score=0.3, max_people=0)
    np.testing.assert_allclose(ranked.scores, [0.9, 0.5])
    assert filter_people(clean, 0.0, max_people=1).scores.tolist() == pytest.approx([0.9])
    with pytest.raises(ValueError, match="inconsistent"):
        Detections(kp[:2], np.ones((3, 17)), np.ones(3))


def test_h36m_mapping_keeps_a_missing_joint_local():
    """One missing coco joint (NaN) makes only the h36m joints built from it missing (regression: 0 * NaN)."""
    kp = RNG.uniform(0, 100, (17, 2))
    kp[15] = np.nan  # left ankle
    h36m = convert_layout(Detections(kp[None], np.ones((1, 17)), np.ones(1)), "h36m17")
    missing = np.isnan(h36m.keypoints[0]).any(axis=1)
    assert missing.tolist() == [j == 6 for j in range(17)]  # h36m 6 = l_ankle
    assert h36m.confidence[0, 6] == 0 and h36m.confidence[0, 0] == pytest.approx(1.0)

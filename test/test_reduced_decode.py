"""JPEG decoding at reduced size (cvpose_ros.detection.reduced_decode): the coordinate mapping back to the
original image, the choice of the factor per backend, the decoder's bookkeeping and the parameter's validation."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cvpose_ros.detection.config import DetectorConfig
from cvpose_ros.detection.image_conversion import ImageConversionError, decode_compressed
from cvpose_ros.detection.reduced_decode import (
    AUTO,
    CompressedDecoder,
    decode_jpeg_reduced,
    pick_factor,
    reduced_size,
    to_full_resolution,
)


def blob_jpeg(width: int, height: int, centre: tuple[float, float], sigma: float = 12.0, quality: int = 95
              ) -> bytes:
    """A dark width x height JPEG with one red Gaussian spot at `centre` (pixel-centre coordinates)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    spot = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))
    bgr = np.full((height, width, 3), 30, np.uint8)
    bgr[..., 2] = np.clip(30 + 200 * spot, 0, 255).astype(np.uint8)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def red_centroid(rgb: np.ndarray) -> np.ndarray:
    weight = np.clip(rgb[..., 0].astype(np.float64) - 30.0, 0.0, None)
    yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]]
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_points_of_a_reduced_decode_map_back_to_the_original_pixel_centres(factor):
    centre = (700.3, 400.7)
    data = np.frombuffer(blob_jpeg(1920, 1080, centre), np.uint8)
    full = red_centroid(decode_compressed("jpeg", data))
    reduced = decode_jpeg_reduced(data, factor)
    assert reduced.shape == (1080 // factor, 1920 // factor, 3)
    back = to_full_resolution(red_centroid(reduced)[None], factor)[0]
    assert np.abs(full - centre).max() < 0.1
    assert np.abs(back - centre).max() < 0.15
    # plain multiplication (pixel edges at integers) would be (factor - 1) / 2 px off
    assert np.abs(red_centroid(reduced) * factor - centre).min() > (factor - 1) / 2 - 0.15


def test_full_resolution_mapping_keeps_nan_and_factor_one():
    points = np.array([[[0.0, 0.0], [np.nan, np.nan], [479.0, 269.0]]], np.float32)
    back = to_full_resolution(points, 4)
    assert np.isnan(back[0, 1]).all()
    np.testing.assert_allclose(back[0, [0, 2]], [[1.5, 1.5], [1917.5, 1077.5]])
    assert to_full_resolution(points, 1) is points


def test_reduced_size_is_what_libjpeg_returns_for_odd_sizes():
    for width, height in ((1921, 1081), (1919, 1079), (643, 37)):
        data = np.frombuffer(cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))[1], np.uint8)
        for factor in (2, 4, 8):
            rgb = decode_jpeg_reduced(data, factor)
            assert (rgb.shape[1], rgb.shape[0]) == reduced_size(width, height, factor)


def test_auto_picks_the_largest_power_of_two_the_backend_allows():
    assert [pick_factor(AUTO, limit) for limit in (0.5, 1.0, 1.99, 2.0, 3.0, 4.0, 7.9, 12.5)] == [1, 1, 1, 2, 2, 4,
                                                                                                   4, 8]
    assert pick_factor(4, 1.0) == 4  # an explicit factor is the user's choice


def jpeg_msg(data: bytes, fmt: str = "jpeg") -> SimpleNamespace:
    return SimpleNamespace(format=fmt, data=data)


def test_decoder_learns_the_size_from_a_full_decode_then_decodes_reduced():
    limits: list[tuple[int, int]] = []

    def limit(width: int, height: int) -> float:
        limits.append((width, height))
        return 3.0 if width == 1920 else 1.0

    decoder = CompressedDecoder(AUTO, limit, lambda m: decode_compressed(m.format, m.data))
    big = jpeg_msg(blob_jpeg(1920, 1080, (100.0, 100.0)))
    first, second = decoder.decode(big), decoder.decode(big)
    assert (first.factor, first.rgb.shape) == (1, (1080, 1920, 3))
    assert (second.factor, second.rgb.shape, second.width, second.height) == (2, (540, 960, 3), 1920, 1080)
    assert decoder.reduced_count == 1 and limits == [(1920, 1080)]
    # the camera switches to 1280x720: a full decode, and this size's own factor
    small = jpeg_msg(blob_jpeg(1280, 720, (100.0, 100.0)))
    assert decoder.decode(small).rgb.shape == (720, 1280, 3) and decoder.factor == 1
    assert decoder.decode(small).factor == 1 and limits == [(1920, 1080), (1280, 720)]
    # PNG is never reduced (OpenCV would decode it in full and resize)
    png = jpeg_msg(cv2.imencode(".png", np.zeros((1080, 1920, 3), np.uint8))[1].tobytes(), "png")
    decoder.decode(png)
    assert decoder.decode(png).factor == 1 and decoder.factor == 1 and decoder.reduced_count == 1
    assert decoder.decode(big).factor == 1 and decoder.decode(big).factor == 2  # JPEGs again: learnt again


def test_decoder_with_an_explicit_factor_and_broken_data():
    decoder = CompressedDecoder(4, lambda w, h: 1.0, lambda m: decode_compressed(m.format, m.data))
    msg = jpeg_msg(blob_jpeg(640, 480, (10.0, 10.0)))
    assert decoder.decode(msg).factor == 1 and decoder.decode(msg).rgb.shape == (120, 160, 3)
    with pytest.raises(ImageConversionError, match="1/4"):
        decoder.decode(jpeg_msg(b"\xff\xd8\xff garbage"))
    with pytest.raises(ValueError, match="decode_scale"):
        CompressedDecoder(3, lambda w, h: 1.0, lambda m: None)


@pytest.mark.parametrize("value", [3, -1, 16])
def test_bad_decode_scale_is_rejected_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"decode_scale must be one of \(0, 1, 2, 4, 8\)"):
        DetectorConfig(decode_scale=value)


def test_explicit_decode_scale_refuses_a_fixed_box_in_full_resolution_pixels():
    with pytest.raises(ValueError, match="decode_scale 2 cannot be used with a fixed box"):
        DetectorConfig(backend="onnx", model_path="m.onnx", decode_scale=2, box=[10.0, 10.0, 200.0, 300.0])
    DetectorConfig(backend="onnx", model_path="m.onnx", decode_scale=0, box=[10.0, 10.0, 200.0, 300.0])


def test_backends_say_how_much_smaller_their_network_lets_the_image_be(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from cvpose_ros.detection import create_backend
    from cvpose_ros.detection.synthetic_models import simcc_probe_model, yolo_pose_constant_model

    yolo = create_backend("onnx", model_path=str(yolo_pose_constant_model(tmp_path / "y.onnx",
                                                                          np.zeros((56, 1), np.float32))))
    # letterbox into 640x640: 1920x1080 is shown at 640x360 (3x smaller), 1280x720 at 2x, 640x480 at 1x
    assert [yolo.max_input_reduction(w, h) for w, h in ((1920, 1080), (1280, 720), (640, 480))] == pytest.approx(
        [3.0, 2.0, 1.0])
    probe = str(simcc_probe_model(tmp_path / "s.onnx", (192, 256)))
    whole = create_backend("onnx", model_path=probe)  # whole image (x 1.25) into 192 px wide
    assert whole.max_input_reduction(1920, 1080) == pytest.approx(1920 * 1.25 / 192)
    boxed = create_backend("onnx", model_path=probe, box=(100, 100, 300, 500))
    assert boxed.max_input_reduction(1920, 1080) == 1.0  # a person crop at the person's own size

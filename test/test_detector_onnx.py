"""ONNX backend end to end on tiny models built by the test (cvpose_ros.detection.synthetic_models)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cvpose_ros.detection import DetectorError, create_backend, finalize  # noqa: E402
from cvpose_ros.detection import onnx_codecs as codecs  # noqa: E402
from cvpose_ros.detection.onnx_backend import guess_model_type, providers_for  # noqa: E402
from cvpose_ros.detection.synthetic_models import (  # noqa: E402
    heatmap_probe_model,
    simcc_probe_model,
    yolo_pose_constant_model,
)

RED_BLOB = (slice(140, 156), slice(300, 316))  # rows, cols of a 16 x 16 red square; centre (307.5, 147.5)


def red_blob_image(height: int = 360, width: int = 480) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[RED_BLOB] = (255, 0, 0)
    return image


def assert_on_blob(keypoints: np.ndarray, tolerance: float) -> None:
    """Every joint inside the red square (grown by `tolerance` pixels)."""
    rows, cols = RED_BLOB
    assert np.all(keypoints[..., 0] >= cols.start - tolerance) and np.all(keypoints[..., 0] <= cols.stop + tolerance)
    assert np.all(keypoints[..., 1] >= rows.start - tolerance) and np.all(keypoints[..., 1] <= rows.stop + tolerance)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx_models")
    return {"simcc": simcc_probe_model(folder / "simcc.onnx"), "heatmap": heatmap_probe_model(folder / "hm.onnx"),
            "folder": folder}


def test_simcc_whole_image_finds_the_red_blob(models):
    backend = create_backend("onnx", model_path=str(models["simcc"]))
    assert backend.model_type == "simcc" and backend.input_size == (192, 256) and not backend.multi_person
    det = backend.detect(red_blob_image())
    assert det.keypoints.shape == (1, 17, 2) and det.layout == "coco17"
    # crop scale = 192 / (480 * 1.25) = 0.32: one input pixel is about 3 image pixels
    assert_on_blob(det.keypoints, tolerance=3.5)
    np.testing.assert_allclose(det.confidence, 1.0)  # normalised red = +2.2, clipped to 1


def test_simcc_colour_order_matters(models):
    """A blue square gives a flat red channel: the joints must not land on it (catches RGB/BGR mix-ups)."""
    image = np.zeros((360, 480, 3), np.uint8)
    image[RED_BLOB] = (0, 0, 255)
    det = create_backend("onnx", model_path=str(models["simcc"])).detect(image)
    rows, cols = RED_BLOB
    assert np.all(np.abs(det.keypoints[0, :, 0] - (cols.start + cols.stop) / 2) > 30)
    assert np.all(det.confidence == 0.0)  # normalised black red channel is negative


def test_simcc_with_person_box_is_more_precise(models):
    backend = create_backend("onnx", model_path=str(models["simcc"]), box=(250, 100, 370, 260))
    det = backend.detect(red_blob_image())
    assert_on_blob(det.keypoints, tolerance=1.0)
    # the box given per call overrides the default one; a box missing the blob finds nothing red
    det_elsewhere = backend.detect(red_blob_image(), box=(0, 0, 100, 100))
    assert np.all(det_elsewhere.confidence == 0.0)


def test_heatmap_model_finds_the_red_blob(models):
    backend = create_backend("onnx", model_path=str(models["heatmap"]))
    assert backend.model_type == "heatmap"
    det = backend.detect(red_blob_image())
    assert_on_blob(det.keypoints, tolerance=4 * 3.2)  # heatmap stride 4 input pixels, 3.1 image pixels each


def yolo_rows(people: list[tuple[np.ndarray, float]], anchors: int = 50) -> np.ndarray:
    """(56, anchors) YOLO-pose output (input pixels) holding `people` = [(keypoints (17, 3), score)] with a box
    around each person's keypoints; the remaining anchors are low-score noise."""
    rng = np.random.default_rng(1)
    rows = np.zeros((56, anchors), np.float32)
    rows[:4] = rng.uniform(10, 600, (4, anchors))
    rows[4] = rng.uniform(0.0, 0.1, anchors)
    rows[5:] = rng.uniform(0, 640, (51, anchors))
    for anchor, (keypoints, score) in enumerate(people):
        low, high = keypoints[:, :2].min(axis=0), keypoints[:, :2].max(axis=0)
        rows[0:2, anchor] = (low + high) / 2
        rows[2:4, anchor] = high - low
        rows[4, anchor] = score
        rows[5:, anchor] = keypoints.reshape(-1)
    return rows


def standing_person(x: float, top: float, height: float, visibility: float = 0.9) -> np.ndarray:
    """A crude upright coco17 figure in input pixels: (17, 3) x, y, visibility."""
    fractions = np.array([0.05, 0.03, 0.03, 0.04, 0.04, 0.18, 0.18, 0.35, 0.35, 0.5, 0.5, 0.52, 0.52,
                          0.75, 0.75, 0.98, 0.98])
    side = np.array([0, -1, 1, -2, 2, -4, 4, -5, 5, -5, 5, -2, 2, -2, 2, -2, 2]) * height * 0.03
    return np.stack([x + side, top + fractions * height, np.full(17, visibility)], axis=1).astype(np.float32)


def test_yolo_pose_multi_person_letterbox_and_nms(models):
    person_a = standing_person(200, 150, 300)
    person_b = standing_person(450, 120, 360, visibility=0.7)
    duplicate_a = person_a + np.array([3, 2, 0], np.float32)  # overlaps A, lower score: suppressed by NMS
    rows = yolo_rows([(person_a, 0.9), (person_b, 0.8), (duplicate_a, 0.6)])
    backend = create_backend("onnx", model_path=str(yolo_pose_constant_model(models["folder"] / "y.onnx", rows)))
    assert backend.model_type == "yolo_pose" and backend.multi_person and backend.input_size == (640, 640)
    image = np.zeros((480, 960, 3), np.uint8)  # letterbox: scale 640/960, 106.67 px padding at the top
    det = backend.detect(image)
    assert det.num_people == 2
    np.testing.assert_allclose(det.scores, [0.9, 0.8], atol=1e-6)
    scale, pad_y = 640 / 960, (640 - 480 * 640 / 960) / 2
    for found, truth in zip(det.keypoints, (person_a, person_b), strict=True):
        expected = (truth[:, :2] - np.array([0.0, pad_y])) / scale
        np.testing.assert_allclose(found, expected, atol=1e-3)
    np.testing.assert_allclose(det.confidence[1], 0.7, atol=1e-6)
    # the node's post-processing: a threshold and a people limit, best person first
    final = finalize(det, 960, 480, "coco17", min_score=0.85, max_people=5)
    assert final.num_people == 1 and final.scores[0] == pytest.approx(0.9)


def test_yolo_pose_transposed_output_and_logit_visibility():
    person = standing_person(300, 100, 400, visibility=2.0)  # a raw logit: sigmoid(2) = 0.881
    rows = yolo_rows([(person, 0.95)], anchors=30)
    boxes, scores, joints, conf = codecs.decode_yolo_pose(rows.T, 17, 0.25, 0.45)
    assert boxes.shape == (1, 4) and scores[0] == pytest.approx(0.95)
    np.testing.assert_allclose(joints[0], person[:, :2], atol=1e-4)
    np.testing.assert_allclose(conf[0], 1 / (1 + np.exp(-2.0)), atol=1e-6)
    with pytest.raises(ValueError, match="YOLO-pose output"):
        codecs.decode_yolo_pose(np.zeros((40, 10)), 17, 0.25, 0.45)


def test_non_max_suppression_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], float)
    keep = codecs.non_max_suppression(boxes, np.array([0.5, 0.9, 0.7, 0.1]), iou_threshold=0.5)
    np.testing.assert_array_equal(keep, [1, 2])


def test_decode_simcc_and_heatmap_known_peaks():
    simcc_x, simcc_y = np.zeros((2, 384)), np.zeros((2, 512))
    simcc_x[0, 101], simcc_x[1, 0], simcc_y[0, 300], simcc_y[1, 511] = 0.8, 0.4, 0.6, 1.7
    joints, conf = codecs.decode_simcc(simcc_x, simcc_y, (192, 256))
    np.testing.assert_allclose(joints, [[50.5, 150.0], [0.0, 255.5]])
    np.testing.assert_allclose(conf, [0.6, 0.4])
    heatmaps = np.zeros((1, 64, 48))
    heatmaps[0, 10, 20], heatmaps[0, 10, 21] = 0.9, 0.5  # right neighbour higher: +1/4 cell
    joints, conf = codecs.decode_heatmaps(heatmaps, (192, 256))
    np.testing.assert_allclose(joints, [[20.25 * 4, 10 * 4]])
    assert conf[0] == pytest.approx(0.9)


def test_crop_transform_round_trip():
    transform = codecs.crop_transform((100, 50, 200, 350), (192, 256), padding=1.0)
    # the box is taller than the input's aspect: its height fills the input exactly
    assert transform.scale == pytest.approx(256 / 300)
    corners = np.array([[150.0, 50.0], [150.0, 350.0]])
    mapped = corners * transform.scale + np.array([transform.offset_x, transform.offset_y])
    np.testing.assert_allclose(mapped, [[96, 0], [96, 256]], atol=1e-9)
    np.testing.assert_allclose(transform.to_image(mapped), corners, atol=1e-4)


def test_h36m_output_layout_derives_pelvis_from_hips(models):
    det = create_backend("onnx", model_path=str(models["simcc"])).detect(red_blob_image())
    h36m = finalize(det, 480, 360, "h36m17")
    assert h36m.layout == "h36m17" and h36m.keypoints.shape == (1, 17, 2)
    np.testing.assert_allclose(h36m.keypoints[0, 0], (det.keypoints[0, 11] + det.keypoints[0, 12]) / 2, atol=1e-4)


def test_clear_errors(models, tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        create_backend("onnx", model_path=str(tmp_path / "missing.onnx"))
    with pytest.raises(DetectorError, match="needs model_path"):
        create_backend("onnx")
    with pytest.raises(DetectorError, match="model_type"):
        create_backend("onnx", model_path=str(models["simcc"]), model_type="centernet")
    with pytest.raises(DetectorError, match="unknown detector backend"):
        create_backend("openpose")
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load"):
        create_backend("onnx", model_path=str(bad))
    backend = create_backend("onnx", model_path=str(models["simcc"]))
    with pytest.raises(DetectorError, match="uint8 RGB"):
        backend.detect(np.zeros((10, 10), np.float32))
    with pytest.raises(DetectorError, match="output shapes"):
        guess_model_type([[1, 10]])
    with pytest.raises(DetectorError, match="onnxruntime-gpu"):
        providers_for("cuda", ["CPUExecutionProvider"])
    assert providers_for("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"


def person_detector_rows(boxes_scores: list[tuple[tuple[float, float, float, float], float, int]],
                         classes: int = 3, anchors: int = 50) -> np.ndarray:
    """YOLO detection output (4 + classes, anchors): cx, cy, w, h, then one score per class; empty anchors 0."""
    rows = np.zeros((4 + classes, anchors), np.float32)
    for i, ((x0, y0, x1, y1), score, label) in enumerate(boxes_scores):
        rows[:4, i] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
        rows[4 + label, i] = score
    return rows


def two_red_blobs(height: int = 480, width: int = 640) -> np.ndarray:
    """Two 'people': red squares centred at (160, 240) and (480, 200) in a 640 x 480 image."""
    image = np.zeros((height, width, 3), np.uint8)
    image[232:248, 152:168] = (255, 0, 0)
    image[192:208, 472:488] = (255, 0, 0)
    return image


def test_top_down_model_runs_once_per_detected_person(models):
    """A person detector (constant YOLO output, 640 x 640 input = the image letterboxed with 80 px at the top)
    gives two person boxes, a box of another class and a duplicate; the probe pose model then finds each
    person's own red square inside their box."""
    pad = 80.0  # (640 - 480) / 2, scale 1
    rows = person_detector_rows([((100, 140 + pad, 220, 340 + pad), 0.9, 0),   # around blob 1
                                 ((420, 100 + pad, 540, 300 + pad), 0.8, 0),   # around blob 2
                                 ((104, 142 + pad, 222, 338 + pad), 0.7, 0),   # duplicate of the first: NMS
                                 ((300, 0 + pad, 400, 100 + pad), 0.95, 2)])   # not a person
    detector = yolo_pose_constant_model(models["folder"] / "people.onnx", rows)
    backend = create_backend("onnx", model_path=str(models["simcc"]), person_model_path=str(detector),
                             score_threshold=0.5)
    assert backend.multi_person and backend.person_detector is not None
    det = backend.detect(two_red_blobs())
    assert det.num_people == 2
    np.testing.assert_allclose(det.scores, [0.9, 0.8], atol=1e-6)
    for found, centre in zip(det.keypoints, ((159.5, 239.5), (479.5, 199.5)), strict=True):
        assert np.all(np.abs(found - centre) <= 8.5)  # on the person's own square, not the other one
    # without the person detector the whole image is one crop: one person
    assert create_backend("onnx", model_path=str(models["simcc"])).detect(two_red_blobs()).num_people == 1


def test_person_detector_output_formats_and_errors(models, tmp_path):
    from cvpose_ros.detection.person_detector import decode_person_boxes

    final = np.array([[10, 20, 110, 220, 0.8, 0], [5, 5, 50, 50, 0.9, 1], [0, 0, 30, 30, 0.2, 0]], np.float32)
    boxes, scores = decode_person_boxes(final, 0, 0.3, 0.45)  # (N, 6): NMS already inside the model
    np.testing.assert_allclose(boxes, [[10, 20, 110, 220]]) and np.testing.assert_allclose(scores, [0.8])
    rows = person_detector_rows([((10, 20, 110, 220), 0.6, 0)], classes=1, anchors=8)
    boxes, _ = decode_person_boxes(rows.T, 0, 0.3, 0.45)  # transposed (anchors, 5)
    np.testing.assert_allclose(boxes, [[10, 20, 110, 220]], atol=1e-4)
    with pytest.raises(ValueError, match="no class 3"):
        decode_person_boxes(rows, 3, 0.3, 0.45)
    with pytest.raises(DetectorError, match="person detector model file not found"):
        create_backend("onnx", model_path=str(models["simcc"]), person_model_path=str(tmp_path / "none.onnx"))
    yolo = yolo_pose_constant_model(models["folder"] / "y2.onnx", np.zeros((56, 10), np.float32))
    with pytest.raises(DetectorError, match="top-down"):
        create_backend("onnx", model_path=str(yolo), person_model_path=str(yolo))

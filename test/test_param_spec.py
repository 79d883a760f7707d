"""The parameter kit's rclpy-free half (`cvpose_ros.param_spec`) and the detector's table on it."""

from __future__ import annotations

import pytest

from cvpose_ros.detection.config import PARAMETERS as DETECTOR
from cvpose_ros.detection.config import RUNTIME_PARAMETERS, config_from_values, defaults
from cvpose_ros.param_spec import ParameterError, ParamSpec, coerce_types

SPECS = {"rate": ParamSpec(5.0, "Hz", (0.1, 1000.0)), "depth": ParamSpec(1, "messages", (1, 100)),
         "size": ParamSpec([0, 0], "pixels"), "box": ParamSpec([0.0, 0.0], "pixels"),
         "names": ParamSpec(["cam0"], "namespaces"), "flag": ParamSpec(True, "switch"), "text": ParamSpec("", "name")}


def test_values_take_their_defaults_type():
    out = coerce_types({"rate": 30, "depth": 4, "size": [640, 480.0], "box": [1, 2.5], "names": ("a", "b"),
                        "flag": False, "text": "x"}, SPECS)
    assert out == {"rate": 30.0, "depth": 4, "size": [640, 480], "box": [1.0, 2.5], "names": ["a", "b"],
                   "flag": False, "text": "x"}
    assert type(out["rate"]) is float and all(type(v) is int for v in out["size"])


@pytest.mark.parametrize(("values", "fragment"), [
    ({"rate": 0.0}, "rate must be in [0.1, 1000.0]"),
    ({"rate": float("nan")}, "rate must be in"),
    ({"depth": 2.0}, "depth must be int"),
    ({"depth": True}, "depth must be int"),
    ({"size": [640.5, 480]}, "size must be list"),
    ({"box": ["1", 2]}, "box must be list"),
    ({"names": [1]}, "names must be list"),
    ({"flag": 1}, "flag must be bool"),
])
def test_a_bad_value_names_the_parameter(values, fragment):
    with pytest.raises(ParameterError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        coerce_types(values, SPECS)


def test_detector_table_matches_its_config_and_ranges():
    """The detector node is on the same kit as the refiner: every number carries a range holding its default,
    and only the live parameters are writable."""
    assert set(DETECTOR) == set(defaults())
    for name, spec in DETECTOR.items():
        numeric = isinstance(spec.default, int | float) and not isinstance(spec.default, bool)
        assert (spec.range is not None) == numeric, name
        if numeric:
            assert spec.range[0] <= spec.default <= spec.range[1], name
        assert spec.restart == (name not in RUNTIME_PARAMETERS), name
    assert config_from_values(coerce_types(defaults(), DETECTOR)) == config_from_values(defaults())


def test_detector_values_are_validated_with_one_clear_line():
    values = coerce_types(defaults(), DETECTOR)
    with pytest.raises(ParameterError, match="decode_scale must be one of"):
        config_from_values({**values, **coerce_types({"decode_scale": 3}, DETECTOR)})
    with pytest.raises(ParameterError, match="max_people must be in"):
        coerce_types({"max_people": -1}, DETECTOR)
    with pytest.raises(ParameterError, match="backend 'onnx' needs model_path"):
        config_from_values({**values, "backend": "onnx"})

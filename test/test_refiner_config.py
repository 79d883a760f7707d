"""The shipped configuration of the refiner node: YAML, docs table, launch file and RViz config agree with the
parameters the node declares, and the YAML loads into a running node."""

from __future__ import annotations

import importlib.util
import py_compile
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")
from cvpose_ros.ros.params import PARAMETERS, camera_parameters  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARAMS_YAML = REPO / "config" / "refiner.yaml"
LAUNCH = REPO / "launch" / "cvpose.launch.py"


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def test_yaml_lists_every_parameter_with_its_default():
    values = flatten(yaml.safe_load(PARAMS_YAML.read_text())["/**"]["ros__parameters"])
    assert set(values) == set(PARAMETERS)
    for name, spec in PARAMETERS.items():
        assert values[name] == spec.default, name


@pytest.mark.parametrize("doc_path", ["docs/refiner_node.md", "README.md"])
def test_docs_table_lists_every_parameter(doc_path):
    doc = (REPO / doc_path).read_text()
    start = doc.index("refiner_node") if doc_path == "README.md" else 0
    section = doc[doc.index("| parameter | default | meaning |", start):]
    table = section[:section.index("\n\n")]
    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", table, flags=re.MULTILINE))
    assert documented == set(PARAMETERS) | set(camera_parameters(3))  # cam2.* stands for every further camera


def test_yaml_loads_into_the_node():
    import rclpy
    from rclpy.parameter import Parameter

    from cvpose_ros.ros.refiner_node import RefinerNode

    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(PARAMS_YAML)])
    try:
        node = RefinerNode(context=context, parameter_overrides=[
            Parameter("cam1.translation", value=[0.5, 0.0, 0.0]), Parameter("refine", value=False),
            Parameter("guard_fit_chi2", value=3.5)])
        assert node.params.extrinsics_source == "parameters" and node.params.queue_size == 10
        assert node.params.guard.fit_chi2 == 3.5 and node.pipeline.guard.fit_chi2 == 3.5
        assert node.params.tf_naming.root(3) == "body_3" and node.params.tf_naming.joint("l_wrist", 3) == "l_wrist_3"
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_launch_file_compiles_and_builds_when_launch_is_installed(tmp_path):
    py_compile.compile(str(LAUNCH), cfile=str(tmp_path / "launch.pyc"), doraise=True)
    text = LAUNCH.read_text()
    for needed in ("params_file", "cam0_ns", "cam1_ns", "cameras", '"refiner_node"', "refiner_remappings"):
        assert needed in text
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installed here; the file was only compiled")
    spec = importlib.util.spec_from_file_location("cvpose_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.generate_launch_description().entities) >= 6


def test_rviz_config_shows_markers_and_tf():
    config = yaml.safe_load((REPO / "config" / "cvpose.rviz").read_text())
    displays = {d["Class"]: d for d in config["Visualization Manager"]["Displays"]}
    assert displays["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/skeleton_markers"
    assert "rviz_default_plugins/TF" in displays


def test_every_numeric_parameter_has_a_range_and_restart_ones_are_read_only():
    """Issue 12 #9: `ros2 param describe` showed no ranges. Every number carries one; every default is in it."""
    from cvpose_ros.ros.params import descriptor

    for name, spec in PARAMETERS.items():
        numeric = isinstance(spec.default, int | float) and not isinstance(spec.default, bool)
        assert (spec.range is not None) == numeric, name
        desc = descriptor(name, spec)
        assert desc.read_only == spec.restart and desc.description
        if numeric:
            assert spec.range[0] <= spec.default <= spec.range[1], name
            ranges = desc.floating_point_range if isinstance(spec.default, float) else desc.integer_range
            assert len(ranges) == 1, name

"""Detector launch files and parameter file: parsed here; executed only where ROS 2 `launch` is installed."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from cvpose_ros.detection.config import PARAMETER_DOCS, DetectorConfig, defaults

REPO = Path(__file__).resolve().parents[1]
DETECTORS = REPO / "launch" / "detectors.launch.py"
PIPELINE = REPO / "launch" / "pipeline.launch.py"


def string_constants(tree: ast.AST) -> set[str]:
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def console_scripts() -> set[str]:
    setup = ast.parse((REPO / "setup.py").read_text())
    return {re.split(r"\s*=", s)[0] for s in string_constants(setup) if re.match(r"^[\w-]+\s*=\s*[\w.]+:\w+$", s)}


def declared_arguments(path: Path) -> set[str]:
    """Names of the DeclareLaunchArgument calls in a launch file (literal first arguments, or the keys of
    module-level ARGUMENTS / *_ARGUMENTS dicts that feed them)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = {call.args[0].value for call in ast.walk(tree) if isinstance(call, ast.Call)
             and getattr(call.func, "id", "") == "DeclareLaunchArgument" and call.args
             and isinstance(call.args[0], ast.Constant)}
    tables = [getattr(t, "id", "") for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
    for table in (t for t in tables if t == "ARGUMENTS" or t.endswith("_ARGUMENTS")):
        names |= set(module_constant(tree, table) or {})
    return names


def module_constant(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


@pytest.mark.parametrize("path", [DETECTORS, PIPELINE])
def test_launch_file_parses(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert "cvpose_ros" in string_constants(tree)


def test_detectors_launch_starts_two_detector_nodes():
    tree = ast.parse(DETECTORS.read_text())
    constants = string_constants(tree)
    assert "detector_node" in console_scripts() and "detector_node" in constants
    assert {"detector.yaml", "image", "image/compressed"} <= constants
    source = DETECTORS.read_text()
    assert "OpaqueFunction(function=detectors)" in source and "camera_namespaces(" in source
    assert {"cam0_ns", "cam1_ns", "cameras"} <= declared_arguments(DETECTORS)


def test_pipeline_includes_detectors_and_refiner_with_their_arguments():
    tree = ast.parse(PIPELINE.read_text())
    ours = declared_arguments(PIPELINE)
    to_detectors = module_constant(tree, "TO_DETECTORS")
    to_refiner = module_constant(tree, "TO_REFINER")
    assert {"detectors.launch.py", "cvpose.launch.py"} <= string_constants(tree)
    assert set(to_detectors) <= ours and set(to_refiner) <= ours
    assert set(to_detectors) <= declared_arguments(DETECTORS)
    refiner_launch = REPO / "launch" / "cvpose.launch.py"
    if not refiner_launch.exists():
        pytest.skip("launch/cvpose.launch.py (the refiner's) not present")
    assert set(to_refiner) <= declared_arguments(refiner_launch)
    assert "refiner_node" in string_constants(ast.parse(refiner_launch.read_text())) & console_scripts()


def test_parameter_file_lists_every_parameter_with_its_default():
    document = yaml.safe_load((REPO / "config" / "detector.yaml").read_text())
    params = document["/**/detector"]["ros__parameters"]
    assert params == defaults()
    assert set(PARAMETER_DOCS) == set(params)
    DetectorConfig(**params)  # valid as shipped
    for doc in ("docs/detector.md", "README.md"):
        text = (REPO / doc).read_text()
        assert all(f"| `{name}` |" in text for name in params), doc


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="ROS 2 launch/launch_ros not installed")
@pytest.mark.parametrize("path", [DETECTORS, PIPELINE])
def test_launch_description_builds(path):
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription) and len(description.entities) > 2


def test_pipeline_passes_params_file_and_camera_pose_to_the_refiner():
    """Issue 12 #9: pipeline.launch.py listed cvpose.launch.py's `params_file` but overrode it with its own
    `refiner_params`, so a user's file was ignored; it also had no camera-pose arguments."""
    tree = ast.parse(PIPELINE.read_text())
    ours = declared_arguments(PIPELINE)
    to_refiner = set(module_constant(tree, "TO_REFINER"))
    needed = {"params_file", "cam1_translation", "cam1_rotation", "namespace", "name"}
    assert needed <= ours and "refiner_params" not in ours
    assert needed - {"namespace"} <= to_refiner  # the namespace is pushed for the whole group instead
    assert needed <= declared_arguments(REPO / "launch" / "cvpose.launch.py")


@pytest.mark.parametrize("path", [DETECTORS, PIPELINE, REPO / "launch" / "cvpose.launch.py"])
def test_launch_files_give_every_process_the_dds_profile(path):
    """Issue 18: the profile's actions come first in the description, before any node or included launch file
    (launch runs actions in order, and a process sees the environment as it was when it started)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "cvpose_ros.ros.dds_profile" for alias in node.names}
    assert "launch_actions" in imports
    returns = [node.value for node in ast.walk(tree) if isinstance(node, ast.Return)
               and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "LaunchDescription"]
    assert len(returns) == 1
    entities = returns[0].args[0].elts
    names = [ast.unparse(e) for e in entities]
    position = names.index("*launch_actions()")
    assert all(name.startswith("*arguments") for name in names[:position]), names


def test_pipeline_starts_a_camera_launch_after_the_profile():
    source = PIPELINE.read_text()
    assert "camera_launch" in declared_arguments(PIPELINE)
    assert "AnyLaunchDescriptionSource(camera_launch)" in source
    assert "*launch_actions(), camera," in source


def test_every_launch_file_takes_the_camera_list():
    """Issue 14: the launch files remapped two cameras only; `cameras` now reaches the detectors and the refiner,
    which build their nodes and remappings from it with `cvpose_ros.ros.camera_list` (tested in test_camera_list.py)."""
    refiner_launch = REPO / "launch" / "cvpose.launch.py"
    for path in (DETECTORS, PIPELINE, refiner_launch):
        assert "cameras" in declared_arguments(path), path.name
    tree = ast.parse(PIPELINE.read_text())
    assert "cameras" in module_constant(tree, "TO_DETECTORS") and "cameras" in module_constant(tree, "TO_REFINER")
    source = refiner_launch.read_text()
    assert "remappings=refiner_remappings(namespaces)" in source and "refiner_cameras(cameras, namespaces)" in source
    assert '"cam0/keypoints"' not in source  # no hand-written two-camera remapping left

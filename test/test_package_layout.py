"""The package's groups depend in one direction (docs/ARCHITECTURE.md), and only the ROS layer needs rclpy.

Read from the source with `ast` (every import, also those inside functions), so a new import that turns the
direction round or pulls rclpy into the plain modules fails here, not on a robot without ROS 2.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cvpose_ros"

# group -> the groups its modules may import at module level (itself always); the top-level helpers count as groups
DEPENDS_ON = {
    "nanstats": set(),
    "param_spec": set(),
    "body": {"nanstats"},
    "geometry": {"calibration", "nanstats"},
    "calibration": {"geometry"},
    "model": {"body", "geometry", "nanstats"},
    "refine": {"model", "body", "geometry", "nanstats"},
    "pipeline": {"refine", "model", "body", "geometry", "calibration", "nanstats"},
    "detection": {"body", "geometry", "param_spec"},
    "devtools": {"pipeline", "body", "geometry", "nanstats"},
}
# imports inside a function, taken only when that function runs (export checks on a synthetic scene)
LAZY_ALSO = {"model": {"devtools"}}
ROS_ONLY = ("rclpy", "launch", "launch_ros", "cvpose_ros_msgs", "rosidl_runtime_py", "tf2_ros")
RCLPY_FREE_IN_ROS = ("camera_list.py", "frame_ids.py")


def _group(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import of a file; `from cvpose_ros import x` gives
    cvpose_ros.x."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "cvpose_ros":
                found += [(f"cvpose_ros.{alias.name}", id(node) in top) for alias in node.names]
            else:
                found.append((node.module, id(node) in top))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_group_is_a_documented_package() -> None:
    groups = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert groups == set(DEPENDS_ON) - {"nanstats", "param_spec"} | {"ros"}, groups
    for group in groups:
        init = PACKAGE / group / "__init__.py"
        assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), f"{group}/__init__.py"
    loose = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert loose == {"nanstats", "param_spec"}, f"modules outside a group: {sorted(loose)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_group_order(path: Path) -> None:
    group = _group(path)
    if group == "ros":
        return  # the ROS layer may use everything
    wrong = []
    for module, at_top in _imports(path):
        parts = module.split(".")
        if parts[0] in ROS_ONLY:
            wrong.append(f"{module} (ROS only)")
        if parts[0] != "cvpose_ros" or len(parts) < 2 or parts[1] in (group, "__version__"):
            continue
        allowed = DEPENDS_ON[group] | (set() if at_top else LAZY_ALSO.get(group, set()))
        if parts[1] not in allowed:
            wrong.append(module)
    assert not wrong, f"{path.relative_to(PACKAGE)} ({group}/) imports {wrong}"


@pytest.mark.parametrize("name", RCLPY_FREE_IN_ROS)
def test_plain_modules_of_the_ros_layer_need_no_ros(name: str) -> None:
    ros = [m for m, _ in _imports(PACKAGE / "ros" / name) if m.split(".")[0] in ROS_ONLY]
    ours = [m for m, _ in _imports(PACKAGE / "ros" / name) if m.startswith("cvpose_ros.ros.")]
    assert not ros and not ours, (ros, ours)


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    """The rule above can fail: a body module importing the pipeline, or rclpy inside a function, is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from cvpose_ros.pipeline.sync import NS_PER_S\n\ndef f():\n    import rclpy\n")
    found = _imports(bad)
    assert ("cvpose_ros.pipeline.sync", True) in found and ("rclpy", False) in found
    assert "pipeline" not in DEPENDS_ON["body"]

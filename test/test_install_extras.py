"""Issue 12 #6: the install hints of the optional detector backends name extras that exist in setup.py and
install exactly the packages the hints name, and the README's ROS install steps install them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setup_extras() -> dict[str, list[str]]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXTRAS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no EXTRAS")


def hints() -> dict[str, str]:
    """extra name -> the backend's install hint text."""
    out = {}
    for path in (REPO / "cvpose_ros" / "detection").glob("*_backend.py"):
        text = " ".join(re.findall(r'"([^"]*)"', path.read_text()))
        for extra in re.findall(r"cvpose_ros\[(\w+)\]", text):
            out[extra] = text
    return out


def test_every_extra_a_hint_names_exists_and_installs_what_the_hint_says():
    extras, named = setup_extras(), hints()
    assert set(named) == {"mediapipe", "onnx"}
    for extra, text in named.items():
        assert extra in extras, f"cvpose_ros[{extra}] is named in an error message but setup.py lacks it"
        for requirement in extras[extra]:
            assert requirement in text, f"the hint for {extra} should name {requirement}"


def test_the_ros_install_steps_install_both_backends():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## On a real ROS 2 install"):]
    section = section[:section.index("\n## ", 10)]
    for requirement in (r for reqs in setup_extras().values() for r in reqs):
        assert requirement in section, f"README's ROS install steps do not install {requirement}"
    assert "pipeline.launch.py" in section

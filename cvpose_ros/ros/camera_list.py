"""The camera list of a launch: which camera namespaces the detectors and the refiner use (no launch, no rclpy).

The launch files take `cameras` as one launch argument ("" = the two-camera default from `cam0_ns` / `cam1_ns`, or
a list such as "[left, right, top]" or "left,right,top") and build from it one detector per camera and the
refiner's remappings (`cam<i>/keypoints`, `cam<i>/camera_info` -> `<namespace i>/...`) and `cameras` parameter.
Kept here, plain Python, so that the rules are tested where ROS 2 `launch` is not installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

MAX_CAMERAS = 16
# a relative or absolute topic namespace: letters, digits and _, "/" separators, no part starting with a digit
NAMESPACE = re.compile(r"^/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
TOPICS = ("keypoints", "camera_info")  # what the refiner reads from each camera


def camera_namespaces(text: str, cam0_ns: str, cam1_ns: str) -> list[str]:
    """The cameras' namespaces from the `cameras` launch argument; "" gives [cam0_ns, cam1_ns]. Raises
    ValueError naming the argument and the problem (count 2..MAX_CAMERAS, valid and distinct namespaces)."""
    text = text.strip()
    if not text:
        names = [cam0_ns, cam1_ns]
    else:
        try:
            parsed = yaml.safe_load(text) if text.startswith("[") else [part.strip() for part in text.split(",")]
        except yaml.YAMLError as exc:
            problem = str(getattr(exc, "problem", "") or "unreadable")
            raise ValueError(f"launch argument cameras: not a list like [cam0, cam1, cam2]: {text!r} ({problem})") \
                from exc
        if not isinstance(parsed, list) or not all(isinstance(n, str) for n in parsed):
            raise ValueError(f"launch argument cameras: not a list of namespaces like [cam0, cam1, cam2]: {text!r}")
        names = parsed
    if not 2 <= len(names) <= MAX_CAMERAS:
        raise ValueError(f"launch argument cameras: 2 to {MAX_CAMERAS} camera namespaces, got {len(names)}: {names}")
    bad = [n for n in names if not NAMESPACE.match(n)]
    if bad:
        raise ValueError(f"launch argument cameras: {bad[0]!r} is not a topic namespace (letters, digits, _ and / "
                         "separators, not starting with a digit)")
    if len({n.strip("/") for n in names}) != len(names):
        raise ValueError(f"launch argument cameras: a namespace is listed twice: {names}")
    return names


def refiner_remappings(namespaces: Sequence[str]) -> list[tuple[str, str]]:
    """The refiner's remappings: camera i's topics `cam<i>/<topic>` -> `<namespaces[i]>/<topic>`."""
    return [(f"cam{i}/{topic}", f"{ns}/{topic}") for i, ns in enumerate(namespaces) for topic in TOPICS]


def refiner_cameras(text: str, namespaces: Sequence[str]) -> dict[str, list[str]]:
    """The refiner's `cameras` parameter for a given `cameras` launch argument ({"cameras": [cam0, ..., cam<N-1>]},
    topics then remapped by `refiner_remappings`); {} for "" so that the parameter file decides, as before."""
    return {"cameras": [f"cam{i}" for i in range(len(namespaces))]} if text.strip() else {}

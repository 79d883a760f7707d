"""Which frame ids the refiner node may use as a camera frame or output reference frame (a TF parent).

A frame id from a message header or a parameter ends up as the parent of `/tf_static` and `/tf` transforms and as
the frame of every output, so it must be a valid TF frame name and must not be one of the frames the node itself
publishes (a camera called `body_0` would make a person frame its own ancestor). Rules:

- ROS name characters only: segments of `[A-Za-z_][A-Za-z0-9_]*` separated by single `/`, no leading `/` (REP 105
  and tf2 drop it), at most `MAX_LENGTH` characters; so no whitespace, no `..`, no empty segment, ASCII only;
- not a person frame of this node: the root (`body_<id>`) or a joint frame (`<joint>_<id>`, joint names of every
  layout) under the node's TF naming.

Plain Python (no rclpy); `FrameIdRules.problem` returns the reason or None.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cvpose_ros.body.skeleton import LAYOUTS

MAX_LENGTH = 256
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
_ID, _JOINT = "\x00id\x00", "\x00joint\x00"


def _pattern(template: str, fields: dict[str, str]) -> str:
    """Regex source of a formatted name: literal text escaped, each sentinel replaced by its pattern."""
    out = re.escape(template)
    for sentinel, regex in fields.items():
        out = out.replace(re.escape(sentinel), regex)
    return out


class FrameIdRules:
    """Frame-id checks for a node whose person frames are named `prefix + root_format` / `prefix + joint_format`."""

    def __init__(self, prefix: str = "", root_format: str = "body_{id}", joint_format: str = "{joint}_{id}") -> None:
        joints = "|".join(sorted({re.escape(n) for lay in LAYOUTS.values() for n in lay.joint_names}, key=len,
                                 reverse=True))
        ident = r"-?[0-9]+"
        root = _pattern(prefix + root_format.format(id=_ID), {_ID: ident})
        joint = _pattern(prefix + joint_format.format(joint=_JOINT, id=_ID), {_ID: ident, _JOINT: f"(?:{joints})"})
        self._own = re.compile(f"(?:{root})|(?:{joint})")

    def problem(self, frame_id: str) -> str | None:
        """Why `frame_id` cannot be used as a camera or reference frame, or None when it can."""
        return _problem(self._own, frame_id)


@lru_cache(maxsize=256)
def _problem(own: re.Pattern, frame_id: str) -> str | None:
    shown = repr(frame_id if len(frame_id) <= 64 else frame_id[:64] + "...")
    if not frame_id:
        return "frame id is empty"
    if len(frame_id) > MAX_LENGTH:
        return f"frame id {shown} is {len(frame_id)} characters long (at most {MAX_LENGTH})"
    if frame_id.startswith("/"):
        return f"frame id {shown} starts with '/' (tf2 frame ids have no leading slash)"
    if not _NAME.fullmatch(frame_id):
        return (f"frame id {shown} is not a valid TF frame name (letters, digits and '_' in segments separated "
                "by single '/', not starting with a digit)")
    if own.fullmatch(frame_id):
        return f"frame id {shown} is one of this node's own person frames (TF would get a loop)"
    return None

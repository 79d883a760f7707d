"""RViz markers for skeletons: one SPHERE_LIST (joints) and one LINE_LIST (bones) per person.

Each person gets its own namespace (`<ns_prefix><id>`) with fixed marker ids (0 joints, 1 bones), so RViz replaces
markers in place while the id is stable, and a short lifetime removes people that left. Missing (NaN) joints and
bones touching them are left out: no NaN ever reaches a marker.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.ros.conversions import NS_PER_S, ns_to_stamp

JOINTS_MARKER_ID = 0
BONES_MARKER_ID = 1

# Distinct colours (tab10-like); a person's colour follows its id so it stays the same while tracked.
_PALETTE = np.array([
    [0.12, 0.47, 0.71], [1.00, 0.50, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16], [0.58, 0.40, 0.74],
    [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.50, 0.50, 0.50], [0.74, 0.74, 0.13], [0.09, 0.75, 0.81],
])


def person_color(track_id: int) -> ColorRGBA:
    """Stable colour for a person id."""
    r, g, b = _PALETTE[int(track_id) % len(_PALETTE)]
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=1.0)


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in xyz.tolist()]


def skeleton_markers(stamp_ns: int, frame_id: str, track_ids: np.ndarray, joints: np.ndarray,
                     lifetime_s: float = 0.3, ns_prefix: str = "person_", joint_diameter_m: float = 0.05,
                     bone_width_m: float = 0.02, layout: str = "h36m17") -> MarkerArray:
    """MarkerArray for ids (P,) and joints (P, J, 3) in `layout` (its body graph is drawn); people with no finite
    joint produce no marker."""
    out = MarkerArray()
    bones = get_layout(layout).edge_array
    life = Duration(sec=int(lifetime_s), nanosec=int(round((lifetime_s % 1.0) * NS_PER_S)) % NS_PER_S)
    stamp = ns_to_stamp(stamp_ns)
    finite = np.isfinite(joints).all(axis=-1)  # (P, J)
    bone_ok = finite[:, bones[:, 0]] & finite[:, bones[:, 1]]  # (P, B)
    for tid, pose, joint_ok, bones_ok in zip(track_ids, joints, finite, bone_ok, strict=True):
        if not joint_ok.any():
            continue
        ns = f"{ns_prefix}{int(tid)}"
        color = person_color(int(tid))
        spheres = Marker(ns=ns, id=JOINTS_MARKER_ID, type=Marker.SPHERE_LIST, action=Marker.ADD, lifetime=life,
                         color=color, points=_points(pose[joint_ok]))
        spheres.scale.x = spheres.scale.y = spheres.scale.z = joint_diameter_m
        lines = Marker(ns=ns, id=BONES_MARKER_ID, type=Marker.LINE_LIST, action=Marker.ADD, lifetime=life,
                       color=color, points=_points(pose[bones[bones_ok]].reshape(-1, 3)))
        lines.scale.x = bone_width_m
        for marker in (spheres, lines):
            marker.header.stamp = stamp
            marker.header.frame_id = frame_id
            marker.pose.orientation.w = 1.0
            marker.frame_locked = False
            out.markers.append(marker)
    return out


def delete_all_markers(frame_id: str) -> MarkerArray:
    """A MarkerArray that clears every marker of this publisher (sent once at start-up)."""
    marker = Marker(action=Marker.DELETEALL)
    marker.header.frame_id = frame_id
    return MarkerArray(markers=[marker])

"""TF for skeletons (REP 155 naming) and camera extrinsics, published with tf2's own QoS.

Per person: a root frame (default `body_<id>`) at the layout's root (h36m17: the pelvis; coco17: the mid-hip),
falling back to the mean of the hips that are known, then to the centroid of all known joints, so every person
with at least one valid joint gets a frame; child of the reference frame, and one frame per joint
(default `<joint>_<id>`), child of the root, translated by the joint's offset from the pelvis. The tree is flat
(joints hang off the root, not off each other) so a missing joint never cuts its descendants off the tree; all
rotations are identity because only positions are estimated. Joints that are NaN get no transform.

Built without tf2_ros (not installable in the venv): messages are `tf2_msgs/TFMessage` on `/tf` and `/tf_static`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.geometry.camera import RigidTransform
from cvpose_ros.ros.conversions import ns_to_stamp

# The profiles tf2_ros uses for its broadcasters and listeners.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                    history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)

@dataclass(frozen=True)
class TfNaming:
    """Frame names of a person: `prefix + root_format.format(id=...)` and `prefix + joint_format.format(...)`."""

    prefix: str = ""
    root_format: str = "body_{id}"
    joint_format: str = "{joint}_{id}"

    def root(self, track_id: int) -> str:
        return self.prefix + self.root_format.format(id=int(track_id))

    def joint(self, joint_name: str, track_id: int) -> str:
        return self.prefix + self.joint_format.format(joint=joint_name, id=int(track_id))

    def validate(self) -> None:
        """Raise ValueError when the formats do not give distinct, slash-free frame names."""
        try:
            root, joint = self.root(0), self.joint("pelvis", 0)
            distinct = self.root(1) != root and self.joint("pelvis", 1) != joint and self.joint("head", 0) != joint
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad TF name format: {exc}; use the fields {{id}} and {{joint}}") from exc
        if not distinct or root == joint:
            raise ValueError("TF name formats must contain {id} (root) and {joint} and {id} (joints)")
        if root.startswith("/") or joint.startswith("/"):
            raise ValueError("TF frame names must not start with '/'")


def _mean_of_finite(joints: np.ndarray, index: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) mean of the finite joints among `index` of each person, and (P,) how many were finite."""
    points = joints[:, index]
    finite = np.isfinite(points).all(axis=-1)
    count = finite.sum(axis=1)
    total = np.where(finite[..., None], points, 0.0).sum(axis=1)
    return total / np.maximum(count, 1)[:, None], count


def root_positions(joints: np.ndarray, layout: str = "h36m17") -> np.ndarray:
    """(P, 3) root of each person: the layout's root when all its joints are known, else the mean of the known
    hips, else the centroid of the known joints; NaN only for a person without any finite joint."""
    lay = get_layout(layout)
    joints = np.asarray(joints, np.float64)
    root = np.full((joints.shape[0], 3), np.nan)
    hips = [lay.joint_names.index(name) for name in ("l_hip", "r_hip")]
    fallbacks = ((list(lay.root), len(lay.root)), (hips, 1), (list(range(joints.shape[1])), 1))
    for index, needed in reversed(fallbacks):  # the best available estimate is written last
        mean, count = _mean_of_finite(joints, index)
        root = np.where((count >= needed)[:, None], mean, root)
    return root


def _transform(stamp, parent: str, child: str, xyz, quat_xyzw=(0.0, 0.0, 0.0, 1.0)) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp = stamp
    tf.header.frame_id = parent
    tf.child_frame_id = child
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = (float(v) for v in xyz)
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in quat_xyzw)
    return tf


def skeleton_transforms(stamp_ns: int, reference_frame: str, track_ids: np.ndarray, joints: np.ndarray,
                        naming: TfNaming = TfNaming(), layout: str = "h36m17") -> TFMessage:
    """TFMessage with the root and joint frames (joint names of `layout`) of every person whose root is known (NaN
    joints skipped)."""
    stamp = ns_to_stamp(stamp_ns)
    names = get_layout(layout).joint_names
    roots = root_positions(joints, layout)
    offsets = joints - roots[:, None, :]
    finite = np.isfinite(offsets).all(axis=-1)
    msg = TFMessage()
    for tid, root, offset, ok in zip(track_ids, roots, offsets, finite, strict=True):
        if not np.isfinite(root).all():
            continue
        root_frame = naming.root(int(tid))
        msg.transforms.append(_transform(stamp, reference_frame, root_frame, root))
        msg.transforms.extend(_transform(stamp, root_frame, naming.joint(names[j], int(tid)), offset[j])
                              for j in np.nonzero(ok)[0])
    return msg


def static_camera_transforms(stamp_ns: int, reference_frame: str,
                             cameras: list[tuple[str, RigidTransform]]) -> TFMessage:
    """Static transforms reference -> camera optical frame from (frame_id, reference_from_camera) pairs.

    A camera whose frame is the reference frame itself is skipped (a frame cannot be its own parent).
    """
    stamp = ns_to_stamp(stamp_ns)
    return TFMessage(transforms=[_transform(stamp, reference_frame, frame_id, pose.t, pose.quaternion())
                                 for frame_id, pose in cameras if frame_id != reference_frame])


class ForeignFrames:
    """Which frames TF already has, from the /tf and /tf_static messages seen: a camera frame found here is never
    re-parented by the node (a robot's `base_link -> cam_link -> cam_optical_frame` stays one tree)."""

    def __init__(self) -> None:
        self.parents: dict[str, str] = {}    # child -> parent, latest seen
        self.as_parent: set[str] = set()     # frames that are some transform's parent

    def add(self, msg: TFMessage) -> None:
        for tf in msg.transforms:
            parent, child = tf.header.frame_id.lstrip("/"), tf.child_frame_id.lstrip("/")
            self.parents[child] = parent
            self.as_parent.add(parent)

    def conflict(self, parent: str, child: str) -> str | None:
        """Why publishing `parent -> child` would re-parent an existing frame, or None when it would not."""
        existing = self.parents.get(child)
        if existing is not None and existing != parent:
            return f"{child} already has parent {existing} in TF"
        if existing is None and child in self.as_parent:
            return f"{child} is already in TF (parent of {sorted(c for c, p in self.parents.items() if p == child)})"
        return None

"""rosbag2 reading and writing (mcap or sqlite3) without a ROS install, through the `rosbags` package.

The type store knows the stock ROS 2 messages and registers `cvpose_ros_msgs` from its `.msg` text, so bags written
here replay in a real ROS graph and bags recorded on a robot read here. Topic names are the refiner node's, in the
root namespace. Messages are built from numpy arrays and read back into numpy arrays; raw CDR bytes pass through
unchanged (rclpy can (de)serialise them), which is what the recorder and the replay use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from cvpose_ros.body.skeleton import H36M17, get_layout
from cvpose_ros.geometry.camera import RigidTransform
from cvpose_ros.pipeline.sync import NS_PER_S

KEYPOINTS_TOPICS = ("/cam0/keypoints", "/cam1/keypoints")
CAMERA_INFO_TOPICS = ("/cam0/camera_info", "/cam1/camera_info")
GROUND_TRUTH_TOPIC = "/ground_truth"
TF_STATIC_TOPIC = "/tf_static"
CLOCK_TOPIC = "/clock"
OUTPUT_TOPICS = ("/skeletons", "/skeletons_coarse")

KEYPOINTS_TYPE = "cvpose_ros_msgs/msg/Keypoints2D"
SKELETONS_TYPE = "cvpose_ros_msgs/msg/Skeleton3DArray"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag that cannot be used: missing, corrupt, truncated, or without the topics a tool needs."""


def _msg_dirs() -> list[Path]:
    """Where `cvpose_ros_msgs/msg/*.msg` may be: ament prefixes, this interpreter's prefix, a source checkout."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [Path(sys.prefix)]
    dirs = [p / "share" / "cvpose_ros_msgs" / "msg" for p in prefixes]
    return dirs + [Path(__file__).resolve().parents[2] / "msg" / "msg"]


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The stock ROS 2 types plus `cvpose_ros_msgs` (registered from the installed or checked-out .msg files)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for folder in _msg_dirs():
        files = sorted(folder.glob("*.msg"))
        if files:
            types: dict[str, Any] = {}
            for f in files:
                types.update(get_types_from_msg(f.read_text(), f"cvpose_ros_msgs/msg/{f.stem}"))
            store.register(types)
            return store
    raise BagError("cannot find the cvpose_ros_msgs .msg files (install the interface package or run from a "
                   "source checkout)")


# ---------------------------------------------------------------------------------------------------------------
# Building messages (rosbags dataclasses)
def _header(stamp_ns: int, frame_id: str) -> Any:
    t = typestore().types
    return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=int(stamp_ns // NS_PER_S),
                                                                          nanosec=int(stamp_ns % NS_PER_S)),
                                    frame_id=frame_id)


def keypoints_message(stamp_ns: int, frame_id: str, pixels: np.ndarray, confidence: np.ndarray,
                      track_ids: Iterable[int] | None = None, layout: str = "h36m17") -> Any:
    """Keypoints2D from (P, J, 2) raw pixels (NaN = missing) and (P, J) confidence."""
    t = typestore().types
    ids = [-1] * len(pixels) if track_ids is None else [int(i) for i in track_ids]
    people = [t["cvpose_ros_msgs/msg/PersonKeypoints2D"](
        track_id=i, x=np.asarray(px[:, 0], np.float32), y=np.asarray(px[:, 1], np.float32),
        confidence=np.asarray(c, np.float32)) for i, px, c in zip(ids, pixels, confidence, strict=True)]
    return t[KEYPOINTS_TYPE](header=_header(stamp_ns, frame_id), layout=layout, people=people)


def camera_info_message(stamp_ns: int, fields: dict) -> Any:
    """CameraInfo from `cvpose_ros.devtools.synthetic.camera_info_fields`-style values."""
    t = typestore().types
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return t[CAMERA_INFO_TYPE](
        header=_header(stamp_ns, fields["frame_id"]), height=int(fields["height"]), width=int(fields["width"]),
        distortion_model=fields["distortion_model"], d=np.asarray(fields["d"], np.float64),
        k=np.asarray(fields["k"], np.float64), r=np.asarray(fields["r"], np.float64),
        p=np.asarray(fields["p"], np.float64), binning_x=0, binning_y=0, roi=roi)


def skeletons_message(stamp_ns: int, frame_id: str, track_ids: Iterable[int], joints: np.ndarray,
                      layout: str = "h36m17") -> Any:
    """Skeleton3DArray (in `layout`) from ids and (P, J, 3) joints in metres; confidence 1 for finite joints."""
    t = typestore().types
    point = t["geometry_msgs/msg/Point"]
    skeletons = [t["cvpose_ros_msgs/msg/Skeleton3D"](
        track_id=int(i), joints=[point(x=float(x), y=float(y), z=float(z)) for x, y, z in pose],
        confidence=np.isfinite(pose).all(axis=-1).astype(np.float32), reprojection_error=0.0)
        for i, pose in zip(track_ids, np.asarray(joints, np.float64), strict=True)]
    lay = get_layout(layout)
    return t[SKELETONS_TYPE](header=_header(stamp_ns, frame_id), layout=lay.name,
                             joint_names=list(lay.joint_names), skeletons=skeletons)


def tf_static_message(stamp_ns: int, parent: str, children: Iterable[tuple[str, RigidTransform]]) -> Any:
    """TFMessage with parent -> child transforms given as (child frame, parent_from_child)."""
    t = typestore().types
    transforms = []
    for child, pose in children:
        x, y, z, w = pose.quaternion()
        transforms.append(t["geometry_msgs/msg/TransformStamped"](
            header=_header(stamp_ns, parent), child_frame_id=child,
            transform=t["geometry_msgs/msg/Transform"](
                translation=t["geometry_msgs/msg/Vector3"](x=float(pose.t[0]), y=float(pose.t[1]), z=float(pose.t[2])),
                rotation=t["geometry_msgs/msg/Quaternion"](x=float(x), y=float(y), z=float(z), w=float(w)))))
    return t[TF_TYPE](transforms=transforms)


# ---------------------------------------------------------------------------------------------------------------
# Writing
class BagWriter:
    """A rosbag2 writer that adds connections on first use; use as a context manager."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; expected one of {sorted(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} already exists (rosbag2 writes a new folder)")
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self._connections: dict[str, Any] = {}
        self.count = 0

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Any:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        return self._connections[topic]

    def write(self, topic: str, msgtype: str, stamp_ns: int, message: Any) -> None:
        """Serialise a rosbags message and write it with log time `stamp_ns`."""
        self.write_raw(topic, msgtype, stamp_ns, typestore().serialize_cdr(message, msgtype))

    def write_raw(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """Write already serialised CDR bytes (e.g. from an rclpy raw subscription)."""
        self._writer.write(self._connection(topic, msgtype), int(stamp_ns), bytes(data))
        self.count += 1


# ---------------------------------------------------------------------------------------------------------------
# Reading
@dataclass
class BagMessage:
    topic: str
    msgtype: str
    log_time_ns: int
    raw: bytes

    def decode(self) -> Any:
        return typestore().deserialize_cdr(self.raw, self.msgtype)


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """topic -> (message type, message count); raises BagError with one clear line when the bag is unusable."""
    with _open_reader(path) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def read_messages(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Messages of `topics` (all when None) in log-time order; BagError when the file is corrupt or truncated."""
    wanted = None if topics is None else set(topics)
    with _open_reader(path) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        try:
            for conn, stamp, raw in reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, int(stamp), bytes(raw))
        except Exception as err:  # rosbags raises several types for damaged files
            raise BagError(f"{path}: cannot read messages ({type(err).__name__}: {err}); corrupt or truncated bag?"
                           ) from err


def require_topics(path: str | Path, topics: Iterable[str]) -> dict[str, tuple[str, int]]:
    """bag_topics(path), or BagError naming the required topics that are absent or empty."""
    have = bag_topics(path)
    missing = [t for t in topics if have.get(t, ("", 0))[1] == 0]
    if missing:
        raise BagError(f"{path}: missing topics {missing} (the bag has {sorted(have) or 'no topics'})")
    return have


@contextmanager
def _open_reader(path: str | Path) -> Iterator[Reader]:
    """Open a rosbag2 folder (or its .mcap/.db3 file), turning every failure into one BagError line."""
    path = Path(path)
    if path.is_file() and (path.parent / "metadata.yaml").exists():
        path = path.parent
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as err:  # rosbags raises many types for foreign, damaged or truncated files
        raise BagError(f"{path}: not a readable rosbag2 ({type(err).__name__}: {err})") from err
    try:
        yield reader
    finally:
        reader.close()


# ---------------------------------------------------------------------------------------------------------------
# Decoding to numpy
def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)


def keypoints_arrays(msg: Any, num_joints: int = H36M17.num_joints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels (P, J, 2), confidence (P, J), track ids (P,)) of a Keypoints2D; people with wrong lengths dropped."""
    ok = [p for p in msg.people if len(p.x) == len(p.y) == len(p.confidence) == num_joints]
    if not ok:
        return np.zeros((0, num_joints, 2)), np.zeros((0, num_joints)), np.zeros(0, np.int64)
    pixels = np.stack([np.stack([p.x, p.y], axis=-1) for p in ok]).astype(np.float64)
    conf = np.stack([p.confidence for p in ok]).astype(np.float64)
    return pixels, conf, np.array([p.track_id for p in ok], np.int64)


def skeleton_arrays(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(track ids (P,), joints (P, J, 3)) of a Skeleton3DArray."""
    ids = np.array([s.track_id for s in msg.skeletons], np.int64)
    joints = np.array([[(p.x, p.y, p.z) for p in s.joints] for s in msg.skeletons], np.float64)
    return ids, joints.reshape(len(ids), -1, 3) if len(ids) else np.zeros((0, H36M17.num_joints, 3))


def static_transforms(messages: Iterable[Any]) -> dict[str, tuple[str, RigidTransform]]:
    """child frame -> (parent frame, parent_from_child) from TFMessages (later ones win)."""
    out: dict[str, tuple[str, RigidTransform]] = {}
    for msg in messages:
        for tf in msg.transforms:
            q, p = tf.transform.rotation, tf.transform.translation
            out[tf.child_frame_id.lstrip("/")] = (tf.header.frame_id.lstrip("/"), RigidTransform.from_quaternion(
                [q.x, q.y, q.z, q.w], [p.x, p.y, p.z]))
    return out


def root_from_frame(tree: dict[str, tuple[str, RigidTransform]], frame: str) -> tuple[str, RigidTransform]:
    """(root frame, root_from_frame) by chaining parents; BagError on a loop."""
    pose, seen = RigidTransform.identity(), {frame}
    while frame in tree:
        parent, parent_from_child = tree[frame]
        pose = parent_from_child.compose(pose)
        if parent in seen:
            raise BagError(f"transform loop through {parent!r} in /tf_static")
        seen.add(parent)
        frame = parent
    return frame, pose

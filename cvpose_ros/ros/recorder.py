"""In-process recording: a node that writes topics to a rosbag2 (via `rosbags`), and one that collects the refiner's
skeleton outputs with their arrival times for scoring.

The recorder subscribes with `raw=True`, so messages go to the bag as the CDR bytes that travelled over DDS.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cvpose_ros_msgs.msg import Skeleton3DArray
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from cvpose_ros.devtools.bag_io import BagWriter
from cvpose_ros.ros.conversions import skeletons_from_msg, stamp_to_ns
from cvpose_ros.ros.tf import TF_STATIC_QOS

SENSOR_TOPICS = ("/cam0/keypoints", "/cam1/keypoints", "/cam0/camera_info", "/cam1/camera_info")


def _qos_for(topic: str) -> QoSProfile:
    """Best effort for sensor inputs (matches any publisher), tf2's QoS for /tf_static, reliable otherwise."""
    if topic in SENSOR_TOPICS:
        return qos_profile_sensor_data
    if topic == "/tf_static":
        return TF_STATIC_QOS
    return QoSProfile(depth=100)


class BagRecorder(Node):
    """Writes every message of `topics` ({name: (rclpy message class, rosbag type name)}) to a new bag.

    Callbacks only queue the bytes; one writer thread owns the bag (sqlite3 storage must stay on one thread, and
    executor threads never wait on disk).
    """

    def __init__(self, path: str | Path, topics: dict[str, tuple[type, str]], storage: str = "mcap",
                 name: str = "cvpose_recorder", **kwargs) -> None:
        super().__init__(name, **kwargs)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self.count = 0
        self._thread = threading.Thread(target=self._write_loop, args=(Path(path), storage), daemon=True)
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            raise self._error
        for topic, (cls, msgtype) in topics.items():
            self.create_subscription(cls, topic, self._callback(topic, msgtype), _qos_for(topic), raw=True)

    def _write_loop(self, path: Path, storage: str) -> None:
        try:
            writer = BagWriter(path, storage).__enter__()
        except BaseException as err:  # reported to the constructor
            self._error = err
            self._opened.set()
            return
        self._opened.set()
        try:
            while (item := self._queue.get()) is not None:
                writer.write_raw(*item)
                self.count = writer.count
        finally:
            writer.__exit__(None, None, None)

    def _callback(self, topic: str, msgtype: str):
        def enqueue(data: bytes) -> None:
            self._queue.put((topic, msgtype, self.get_clock().now().nanoseconds, bytes(data)))
        return enqueue

    def close(self) -> None:
        """Write what is queued and finish the bag (idempotent); call before destroying the node."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@dataclass
class ReceivedSkeletons:
    """One output message: header stamp, arrival time (system clock, ns), ids and joints (P, J, 3)."""

    stamp_ns: int
    received_ns: int
    track_ids: np.ndarray
    joints: np.ndarray
    layout: str = "h36m17"


@dataclass
class OutputStore:
    """Outputs per topic, appended from subscription callbacks."""

    by_topic: dict[str, list[ReceivedSkeletons]] = field(default_factory=dict)
    event: threading.Event = field(default_factory=threading.Event)
    diagnostics: list[DiagnosticArray] = field(default_factory=list)

    def count(self, topic: str) -> int:
        return len(self.by_topic.get(topic, []))


class OutputCollector(Node):
    """Subscribes to Skeleton3DArray topics and /diagnostics and stores what arrives (for MPJPE and latency)."""

    def __init__(self, topics: tuple[str, ...] = ("skeletons", "skeletons_coarse"),
                 name: str = "cvpose_output_collector", **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.store = OutputStore({t: [] for t in topics})
        for topic in topics:
            self.create_subscription(Skeleton3DArray, topic, self._callback(topic), QoSProfile(depth=100))
        self.create_subscription(DiagnosticArray, "/diagnostics", self.store.diagnostics.append, QoSProfile(depth=10))

    def _callback(self, topic: str):
        def store(msg: Skeleton3DArray) -> None:
            received = time.time_ns()
            ids, joints, _, _ = skeletons_from_msg(msg)
            self.store.by_topic[topic].append(ReceivedSkeletons(stamp_to_ns(msg.header.stamp), received, ids, joints,
                                                                msg.layout or "h36m17"))
            self.store.event.set()
        return store

"""Replay a bag through a real refiner node (in-process, over DDS), record its outputs and score them.

As fast as possible: after each keypoint pair the player waits for the node's output (or a timeout, counted as a
drop), so the replay runs at the node's own pace. With `realtime`, messages go out at their recorded rate and
`/clock` is published from the bag so the node runs on sim time (`use_sim_time`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo
from tqdm import tqdm

from cvpose_ros.devtools import bag_io
from cvpose_ros.devtools.scoring import PoseScore, latency_summary, rate_hz
from cvpose_ros.geometry.camera import RigidTransform
from cvpose_ros.ros.conversions import ns_to_stamp, stamp_to_ns
from cvpose_ros.ros.graph import BackgroundGraph
from cvpose_ros.ros.recorder import BagRecorder, OutputCollector
from training.data.bags import Recording, load_recording

PLAYED = {t: CameraInfo for t in bag_io.CAMERA_INFO_TOPICS} | {t: Keypoints2D for t in bag_io.KEYPOINTS_TOPICS}
OUTPUTS = {"/skeletons": (Skeleton3DArray, bag_io.SKELETONS_TYPE),
           "/skeletons_coarse": (Skeleton3DArray, bag_io.SKELETONS_TYPE),
           "/diagnostics": (DiagnosticArray, "diagnostic_msgs/msg/DiagnosticArray")}


@dataclass
class EvalOptions:
    realtime: bool = False
    out_bag: str | Path | None = None
    storage: str = "mcap"
    checkpoint: str = ""
    params_file: str | None = None
    sync_slop: float = 0.01
    output_timeout: float = 2.0
    progress: bool = True
    torch_threads: int = 1


def node_parameters(rec: Recording, opts: EvalOptions) -> list[Parameter]:
    """Refiner parameters that reproduce the bag's rig: camera poses in the bag's reference frame."""
    values: dict[str, object] = {"reference_frame": rec.reference_frame, "extrinsics_source": "parameters",
                                 "checkpoint": opts.checkpoint, "sync_slop": opts.sync_slop,
                                 "max_stamp_age": 0.0, "warn_throttle": 30.0, "use_sim_time": opts.realtime}
    for i, pose in enumerate(rec.reference_from_cams):
        values[f"cam{i}.translation"] = pose.t.tolist()
        values[f"cam{i}.rotation"] = pose.quaternion().tolist()
        values[f"cam{i}.frame_id"] = rec.frame_ids[i]
    return [Parameter(k, value=v) for k, v in values.items()]


def _truth_to_reference(rec: Recording) -> RigidTransform | None:
    """reference_from_truth when the ground truth's frame is known, else None (no MPJPE)."""
    if not rec.truth:
        return None
    if rec.truth_frame in ("", rec.reference_frame):
        return RigidTransform.identity()
    if rec.truth_frame in rec.frame_ids:
        return rec.reference_from_cams[rec.frame_ids.index(rec.truth_frame)]
    return None


class _Player:
    """Publishes bag messages and waits for outputs."""

    def __init__(self, context: rclpy.Context) -> None:
        self.node = rclpy.create_node("cvpose_bag_player", context=context)
        reliable = QoSProfile(depth=20)
        self.pubs = {t: self.node.create_publisher(cls, t, qos_profile_sensor_data) for t, cls in PLAYED.items()}
        self.pub_clock = self.node.create_publisher(Clock, "/clock", reliable)

    def clock(self, stamp_ns: int) -> None:
        self.pub_clock.publish(Clock(clock=ns_to_stamp(stamp_ns)))


def evaluate_bag(path: str | Path, opts: EvalOptions) -> dict:
    """Replay `path` through a RefinerNode; returns the report dict. Raises BagError for unusable bags."""
    rec = load_recording(path, opts.sync_slop, opts.params_file)
    pair_of = {}  # (camera, stamp) -> pair index
    for k, (f0, f1) in enumerate(rec.pairs):
        pair_of[(0, f0.stamp_ns)] = pair_of[(1, f1.stamp_ns)] = k
    messages = list(bag_io.read_messages(path, list(PLAYED)))
    graph = BackgroundGraph()
    context = graph.context
    try:
        import torch

        from cvpose_ros.ros.refiner_node import RefinerNode

        if opts.torch_threads > 0:
            torch.set_num_threads(opts.torch_threads)
        refiner = graph.add(RefinerNode(context=context, parameter_overrides=node_parameters(rec, opts)))
        player, collector = _Player(context), OutputCollector(context=context)
        graph.add(player.node)
        graph.add(collector)
        if opts.out_bag:
            graph.add(BagRecorder(opts.out_bag, OUTPUTS, opts.storage, context=context))
        graph.start()
        deadline = time.monotonic() + 5.0
        while refiner.count_publishers("cam1/keypoints") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        published_at = _replay(messages, pair_of, player, collector, opts, len(rec.pairs))
        deadline = time.monotonic() + opts.output_timeout
        while collector.store.count("skeletons") < len(published_at) and time.monotonic() < deadline:
            time.sleep(0.02)
        state = refiner.diag.refinement_state
        problems = {p.value: n for p, n in refiner.diag.problems.items() if n}
    finally:
        graph.close()
    return _report(rec, collector, published_at, state, problems, opts)


def _replay(messages: list, pair_of: dict, player: _Player, collector: OutputCollector, opts: EvalOptions,
            num_pairs: int) -> dict[int, int]:
    """Publish in log-time order; returns pair index -> wall time its second message went out."""
    published_at: dict[int, int] = {}
    half_done: set[int] = set()
    start_wall, start_log = time.monotonic(), messages[0].log_time_ns if messages else 0
    bar = tqdm(total=num_pairs, desc="replay", unit="pair", disable=not opts.progress, leave=False)
    # Calibration first: DDS does not order messages across topics, so a first pair could beat its camera_info.
    for topic in bag_io.CAMERA_INFO_TOPICS:
        first = next(m for m in messages if m.topic == topic)
        player.pubs[topic].publish(deserialize_message(first.raw, CameraInfo))
    time.sleep(0.2)
    for m in messages:
        if opts.realtime:
            delay = (m.log_time_ns - start_log) / 1e9 - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
            player.clock(m.log_time_ns)
        msg = deserialize_message(m.raw, PLAYED[m.topic])
        if m.topic in bag_io.CAMERA_INFO_TOPICS:
            player.pubs[m.topic].publish(msg)
            continue
        cam = bag_io.KEYPOINTS_TOPICS.index(m.topic)
        k = pair_of.get((cam, stamp_to_ns(msg.header.stamp)))
        before = collector.store.count("skeletons")
        player.pubs[m.topic].publish(msg)
        if k is None:
            continue
        if k not in half_done:
            half_done.add(k)
            continue
        published_at[k] = time.time_ns()
        bar.update(1)
        if not opts.realtime:  # wait for the node before the next pair (the collector sets the event per output)
            deadline = time.monotonic() + opts.output_timeout
            while collector.store.count("skeletons") <= before and (left := deadline - time.monotonic()) > 0:
                collector.store.event.wait(left)
                collector.store.event.clear()
    bar.close()
    return published_at


def _report(rec: Recording, collector: OutputCollector, published_at: dict[int, int], state: str, problems: dict,
            opts: EvalOptions) -> dict:
    """Outputs, drops, people, latency, rate and (with ground truth) MPJPE of the replay."""
    by_stamp = {}
    for k, (f0, f1) in enumerate(rec.pairs):
        by_stamp[f0.stamp_ns] = by_stamp[f1.stamp_ns] = k
    to_ref = _truth_to_reference(rec)
    truth_stamps = np.array(sorted(rec.truth), np.int64)
    outputs = collector.store.by_topic["skeletons"]
    layout = outputs[0].layout if outputs else "h36m17"  # outputs keep the keypoints' joint definition
    scores = {t: PoseScore(layout=layout) for t in ("skeletons_coarse", "skeletons")}
    latencies, people = [], []
    for topic, score in scores.items():
        for out in collector.store.by_topic[topic]:
            k = by_stamp.get(out.stamp_ns)
            if topic == "skeletons":
                people.append(len(out.track_ids))
                if k in published_at:
                    latencies.append(out.received_ns - published_at[k])
            if to_ref is not None and len(truth_stamps):
                j = int(np.argmin(np.abs(truth_stamps - out.stamp_ns)))
                if abs(int(truth_stamps[j]) - out.stamp_ns) <= opts.sync_slop * 1e9:
                    score.add(out.joints, to_ref.apply(rec.truth[int(truth_stamps[j])][1]))
    outputs = collector.store.by_topic["skeletons"]
    answered = {by_stamp.get(o.stamp_ns) for o in outputs} - {None}
    result = {
        "refinement": state, "pairs_in_bag": len(rec.pairs), "pairs_published": len(published_at),
        "outputs": len(outputs), "dropped": len(set(published_at) - answered),
        "people_mean": float(np.mean(people)) if people else 0.0, "people_max": int(max(people, default=0)),
        "latency": latency_summary(latencies), "rate_hz": rate_hz([o.received_ns for o in outputs]),
        "node_problems": problems, "realtime": opts.realtime,
        "out_bag": str(opts.out_bag) if opts.out_bag else None,
    }
    if to_ref is not None:
        result["triangulation"] = scores["skeletons_coarse"].summary()
        result["refined"] = scores["skeletons"].summary()
    return result

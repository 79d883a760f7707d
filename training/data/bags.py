"""rosbag2 recordings of two cameras <-> two-view data: write bags for the node, read robot bags into samples.

A bag holds, with the refiner node's topic names, `camera_info` and `keypoints` per camera, optionally
`/tf_static` (camera poses) and `/ground_truth` (Skeleton3DArray). Reading pairs the two keypoint streams by stamp
(nearest within a slop), matches people across the views like the node does (`cvpose_ros.pipeline.association`) and
gives one `TwoViewSamples` entry per person and pair: no 3D is needed, the weak losses train on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from cvpose_ros.body.skeleton import H36M17, get_layout, to_h36m
from cvpose_ros.devtools import bag_io
from cvpose_ros.devtools.bag_io import BagError
from cvpose_ros.devtools.synthetic import RigCamera, SceneKeypoints, camera_info_fields
from cvpose_ros.geometry.camera import CameraError, CameraModel, RigidTransform
from cvpose_ros.pipeline.cross_view import MatchConfig, match_views
from training.data.samples import TwoViewSamples, concat_samples

REQUIRED_TOPICS = bag_io.KEYPOINTS_TOPICS + bag_io.CAMERA_INFO_TOPICS


# ---------------------------------------------------------------------------------------------------------------
# Writing
def write_two_view_bag(path: str | Path, stamps_ns: np.ndarray, cameras: Sequence[RigCamera],
                       views: Sequence[SceneKeypoints], truth: np.ndarray | None = None,
                       track_ids: np.ndarray | None = None, storage: str = "mcap", world_frame: str = "world",
                       publish_track_ids: bool = False) -> int:
    """Write a replayable bag; returns the number of messages.

    `views[i].keypoints` (T, P, J, 2) / `confidence` (T, P, J) / `visible` (T, P) per camera; `truth` (T, P, J, 3)
    in `world_frame`; camera poses go to /tf_static as world -> optical frame. Invisible people are left out of a
    view's message, as a detector would.
    """
    stamps_ns = np.asarray(stamps_ns, np.int64)
    num_people = views[0].keypoints.shape[1]
    ids = np.arange(1, num_people + 1) if track_ids is None else np.asarray(track_ids)
    with bag_io.BagWriter(path, storage) as writer:
        start = int(stamps_ns[0])
        writer.write(bag_io.TF_STATIC_TOPIC, bag_io.TF_TYPE, start, bag_io.tf_static_message(
            start, world_frame, [(c.frame_id, c.cam_from_world.inverse()) for c in cameras]))
        infos = [camera_info_fields(c) for c in cameras]
        for t, stamp in enumerate(stamps_ns.tolist()):
            for i, (cam, view) in enumerate(zip(cameras, views, strict=True)):
                writer.write(bag_io.CAMERA_INFO_TOPICS[i], bag_io.CAMERA_INFO_TYPE, stamp,
                             bag_io.camera_info_message(stamp, infos[i]))
                seen = np.flatnonzero(view.visible[t])
                writer.write(bag_io.KEYPOINTS_TOPICS[i], bag_io.KEYPOINTS_TYPE, stamp, bag_io.keypoints_message(
                    stamp, cam.frame_id, view.keypoints[t, seen], view.confidence[t, seen],
                    ids[seen] if publish_track_ids else None))
            if truth is not None:
                writer.write(bag_io.GROUND_TRUTH_TOPIC, bag_io.SKELETONS_TYPE, stamp,
                             bag_io.skeletons_message(stamp, world_frame, ids, truth[t]))
        return writer.count


# ---------------------------------------------------------------------------------------------------------------
# Reading
@dataclass
class ViewFrame:
    stamp_ns: int
    pixels: np.ndarray      # (P, J, 2)
    confidence: np.ndarray  # (P, J)
    track_ids: np.ndarray   # (P,)


@dataclass
class Recording:
    """What a bag says about a two-camera rig and its keypoint streams."""

    cameras: tuple[CameraModel, CameraModel]
    frame_ids: tuple[str, str]
    reference_frame: str
    reference_from_cams: tuple[RigidTransform, RigidTransform]
    pairs: list[tuple[ViewFrame, ViewFrame]]
    truth: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # stamp -> (ids, joints)
    truth_frame: str = ""

    @property
    def cam1_from_cam0(self) -> RigidTransform:
        return self.reference_from_cams[1].inverse().compose(self.reference_from_cams[0])


def extrinsics_from_params(path: str | Path) -> tuple[str, tuple[RigidTransform, RigidTransform]]:
    """(reference_frame, reference_from_cam per camera) from a refiner parameter YAML (ros__parameters)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BagError(f"cannot read extrinsics parameters {path}: {err}") from err

    def find(node: object) -> dict | None:
        if isinstance(node, dict):
            if "ros__parameters" in node:
                return node["ros__parameters"]
            return next((found for v in node.values() if (found := find(v)) is not None), None)
        return None

    params = find(data) or data or {}
    try:
        poses = tuple(RigidTransform.from_quaternion(params[c]["rotation"], params[c]["translation"])
                      for c in ("cam0", "cam1"))
    except (KeyError, TypeError, ValueError) as err:
        raise BagError(f"{path}: needs cam0/cam1 translation and rotation parameters ({err})") from err
    return str(params.get("reference_frame", "")), poses  # type: ignore[return-value]


def _camera(msg: object, topic: str) -> CameraModel:
    try:
        return CameraModel.from_camera_info(msg.k, msg.d, msg.distortion_model, msg.width, msg.height)
    except CameraError as err:
        raise BagError(f"{topic}: unusable camera_info ({err})") from err


def pair_by_stamp(stamps0: np.ndarray, stamps1: np.ndarray, slop_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of mutually nearest stamps no more than `slop_ns` apart (both arrays sorted)."""
    if len(stamps0) == 0 or len(stamps1) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    def nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        j = np.clip(np.searchsorted(b, a), 1, len(b) - 1) if len(b) > 1 else np.zeros(len(a), np.int64)
        if len(b) > 1:
            j = np.where(np.abs(b[j - 1] - a) <= np.abs(b[j] - a), j - 1, j)
        return j

    to1, to0 = nearest(stamps0, stamps1), nearest(stamps1, stamps0)
    i0 = np.flatnonzero((to0[to1] == np.arange(len(stamps0))) & (np.abs(stamps1[to1] - stamps0) <= slop_ns))
    return i0, to1[i0]


def load_recording(path: str | Path, slop_s: float = 0.01, params_file: str | Path | None = None,
                   layout: str = "h36m17") -> Recording:
    """Read a bag's cameras, extrinsics (/tf_static, else `params_file`) and keypoint pairs; BagError if unusable.

    Keypoints come out in `layout`: a message in that layout is kept, coco17 is mapped to h36m17; h36m17 keypoints
    cannot become coco17 (BagError).
    """
    bag_io.require_topics(path, REQUIRED_TOPICS)
    infos: dict[str, tuple[CameraModel, str] | BagError] = {}
    frames: dict[str, list[ViewFrame]] = {t: [] for t in bag_io.KEYPOINTS_TOPICS}
    frame_ids = ["", ""]
    tf_msgs, truth, truth_frame = [], {}, ""
    for m in bag_io.read_messages(path):
        if m.topic in bag_io.CAMERA_INFO_TOPICS and not isinstance(infos.get(m.topic), tuple):
            msg = m.decode()  # the first usable calibration of each camera
            try:
                infos[m.topic] = (_camera(msg, m.topic), msg.header.frame_id.lstrip("/"))
            except BagError as err:
                infos[m.topic] = err
        elif m.topic in frames:
            msg = m.decode()
            pixels, conf, ids = bag_io.keypoints_arrays(msg)
            found = msg.layout or H36M17.name
            if found != layout:
                if layout != H36M17.name:
                    raise BagError(f"{path}: {m.topic} holds {found} keypoints, {layout} samples were asked for")
                pixels, conf = to_h36m(pixels, conf, found)  # ValueError names an unknown layout
            frames[m.topic].append(ViewFrame(bag_io.stamp_ns(msg.header), pixels, conf, ids))
            frame_ids[bag_io.KEYPOINTS_TOPICS.index(m.topic)] = msg.header.frame_id.lstrip("/")
        elif m.topic == bag_io.TF_STATIC_TOPIC:
            tf_msgs.append(m.decode())
        elif m.topic == bag_io.GROUND_TRUTH_TOPIC:
            msg = m.decode()
            truth[bag_io.stamp_ns(msg.header)] = bag_io.skeleton_arrays(msg)
            truth_frame = msg.header.frame_id.lstrip("/")
    for t in bag_io.CAMERA_INFO_TOPICS:
        if isinstance(infos[t], BagError):
            raise infos[t]
    cameras = tuple(infos[t][0] for t in bag_io.CAMERA_INFO_TOPICS)
    frame_ids = [frame_ids[i] or infos[t][1] for i, t in enumerate(bag_io.CAMERA_INFO_TOPICS)]

    if params_file is not None:
        reference, poses = extrinsics_from_params(params_file)
        reference = reference or frame_ids[0]
    else:
        tree = bag_io.static_transforms(tf_msgs)
        (root0, pose0), (root1, pose1) = (bag_io.root_from_frame(tree, f) for f in frame_ids)
        if root0 != root1:
            raise BagError(f"{path}: /tf_static does not connect {frame_ids[0]!r} and {frame_ids[1]!r}; record "
                           "/tf_static or pass the refiner parameter file with the camera poses")
        reference, poses = root0, (pose0, pose1)

    streams = [sorted(frames[t], key=lambda f: f.stamp_ns) for t in bag_io.KEYPOINTS_TOPICS]
    i0, i1 = pair_by_stamp(np.array([f.stamp_ns for f in streams[0]], np.int64),
                           np.array([f.stamp_ns for f in streams[1]], np.int64), int(slop_s * 1e9))
    pairs = [(streams[0][a], streams[1][b]) for a, b in zip(i0, i1, strict=True)]
    return Recording(cameras, tuple(frame_ids), reference, poses, pairs, truth, truth_frame)


def recording_samples(rec: Recording, min_confidence: float = 0.1, association_gate: float = 0.1,
                      min_valid_joints: int = 6, layout: str = "h36m17", repair: bool = True) -> TwoViewSamples:
    """One sample per person matched across the views in each pair (people too sparse in a view are skipped).

    With `repair` (default) a sample holds the keypoints the node triangulates: one-view left/right swaps repaired
    and joints the views disagree on dropped (`cvpose_ros.pipeline.cross_view`), so fine-tuning sees what the network
    sees at run time and the weak losses are not pulled towards swapped labels. Without, the detector's own
    keypoints."""
    c0, c1 = rec.cameras
    rel = rec.cam1_from_cam0
    kp, conf = [], []
    config = MatchConfig(gate=association_gate, lone_gate=max(association_gate, MatchConfig.lone_gate),
                         min_confidence=min_confidence, repair_swaps=repair, drop_bad_joints=repair)
    for f0, f1 in rec.pairs:
        ok0 = ((f0.confidence >= min_confidence) & np.isfinite(f0.pixels).all(-1)).sum(-1) >= min_valid_joints
        ok1 = ((f1.confidence >= min_confidence) & np.isfinite(f1.pixels).all(-1)).sum(-1) >= min_valid_joints
        p0, p1 = np.flatnonzero(ok0), np.flatnonzero(ok1)
        match = match_views(c0, c1, rel, f0.pixels[p0], f0.confidence[p0], f0.track_ids[p0],
                            f1.pixels[p1], f1.confidence[p1], f1.track_ids[p1], get_layout(layout), config)
        if repair:
            kp.append(np.stack([match.kp0, match.kp1], axis=1))
            conf.append(np.stack([match.conf0, match.conf1], axis=1))
        else:
            a, b = match.i0, match.i1
            kp.append(np.stack([f0.pixels[p0[a]], f1.pixels[p1[b]]], axis=1))
            conf.append(np.stack([f0.confidence[p0[a]], f1.confidence[p1[b]]], axis=1))
    kp2d = np.concatenate(kp) if kp else np.zeros((0, 2, 17, 2))
    n = len(kp2d)
    return TwoViewSamples(
        kp2d=kp2d, conf=np.concatenate(conf) if conf else np.zeros((0, 2, 17)),
        K=np.broadcast_to(np.stack([c0.K, c1.K]), (n, 2, 3, 3)),
        dist=np.broadcast_to(np.stack([c0.rational_coefficients(), c1.rational_coefficients()]), (n, 2, 8)),
        R10=np.broadcast_to(rel.R, (n, 3, 3)), t10=np.broadcast_to(rel.t, (n, 3)))


def bag_samples(paths: Sequence[str | Path], slop_s: float = 0.01, params_file: str | Path | None = None,
                min_confidence: float = 0.1, association_gate: float = 0.1,
                layout: str = "h36m17", repair: bool = True) -> TwoViewSamples:
    """Training samples in `layout` from one or more bags of keypoints + camera_info (BagError if none gives a
    sample); `repair` as in `recording_samples`."""
    parts = [recording_samples(load_recording(p, slop_s, params_file, layout), min_confidence, association_gate,
                               layout=layout, repair=repair) for p in paths]
    if not any(len(p) for p in parts):
        raise BagError(f"no person was seen by both cameras in {[str(p) for p in paths]}")
    return concat_samples(parts)


def keypoint_layout(path: str | Path) -> str:
    """The layout of a bag's first keypoints message (h36m17 when the field is empty)."""
    for m in bag_io.read_messages(path):
        if m.topic in bag_io.KEYPOINTS_TOPICS:
            return m.decode().layout or H36M17.name
    raise BagError(f"{path}: no keypoints message")


# ---------------------------------------------------------------------------------------------------------------
# Fine-tuning
def finetune_on_bags(paths: Sequence[str | Path], out_dir: str | Path, init: str | Path | None = None,
                     epochs: int = 5, params_file: str | Path | None = None, slop_s: float = 0.01,
                     lr: float = 1e-4, max_median_px: float = 10.0, **config: object) -> Path:
    """Fine-tune the refiner on robot bags with the weak losses (no 3D needed); returns the best checkpoint.

    `init` is the checkpoint to start from (None = the packaged default weights, if any). Other keyword arguments
    are `training.train_config.TrainConfig` fields (e.g. batch_size, samples_per_epoch, device). The defaults are
    gentle (5 epochs at lr 1e-4) because weak-only updates can pull a supervised model away from good poses:
    always compare old and new weights with `cvpose-bag eval` (docs/demo_and_bags.md). BatchNorm statistics stay
    frozen (`freeze_batchnorm`, unless given), the layout is the init checkpoint's, and samples whose two views
    disagree (median reprojection of their triangulation > `max_median_px`; 0 keeps all) are dropped. Passing
    `motion=[...]` (plus the shipped weights' `w_*` and `w_supervised=1`) rehearses the mocap prior alongside.
    """
    from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS
    from training.data.video_samples import consistent_samples
    from training.metrics import load_model
    from training.train import train
    from training.train_config import TrainConfig

    if init is None:  # the packaged weights of the layout the bags' keypoints are in
        default = DEFAULT_CHECKPOINTS.get(keypoint_layout(paths[0]))
        init = default if default is not None and default.exists() else None
    layout = str(config.get("layout") or (load_model(init).model.layout.name if init is not None else "h36m17"))
    config["layout"] = layout
    samples = bag_samples(paths, slop_s, params_file, layout=layout)
    if max_median_px > 0:
        samples, keep = consistent_samples(samples, max_median_px)
        if not len(samples):
            raise BagError(f"no sample whose two views agree within {max_median_px} px (of {len(keep)})")
    config.setdefault("freeze_batchnorm", True)
    cfg = TrainConfig(out_dir=str(out_dir), epochs=epochs, lr=lr, **config)
    if not cfg.motion and cfg.procedural_sequences <= 0:
        cfg.samples_per_epoch = min(cfg.samples_per_epoch, len(samples))
    return train(cfg, [samples], init=init)

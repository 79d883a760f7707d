"""Parameters of the refiner node: declaration with descriptions, reading and start-up validation.

`PARAMETERS` is the single source of truth (name, default, description); `config/refiner.yaml` and the table in
docs/refiner_node.md list the same entries, and a test keeps them in sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from cvpose_ros.camera import RigidTransform
from cvpose_ros.guard import EvidenceGuard
from cvpose_ros.model.backend import RUNTIMES
from cvpose_ros.ros.tf import TfNaming
from cvpose_ros.skeleton import LAYOUTS

EXTRINSICS_SOURCES = ("parameters", "camera_info", "tf")

# name -> (default, description)
PARAMETERS: dict[str, tuple[object, str]] = {
    "reference_frame": ("", "Frame of all outputs; empty = camera 0's optical frame."),
    "extrinsics_source": ("parameters", "Where camera poses come from: parameters | camera_info | tf."),
    "cam0.frame_id": ("", "Camera 0 optical frame; empty = header.frame_id of its keypoints."),
    "cam1.frame_id": ("", "Camera 1 optical frame; empty = header.frame_id of its keypoints."),
    "cam0.translation": ([0.0, 0.0, 0.0], "Camera 0 position in reference_frame (x y z, metres)."),
    "cam0.rotation": ([0.0, 0.0, 0.0, 1.0], "Camera 0 orientation in reference_frame (quaternion x y z w)."),
    "cam1.translation": ([0.0, 0.0, 0.0], "Camera 1 position in reference_frame (x y z, metres); must differ "
                                          "from camera 0 (baseline > 0) with extrinsics_source=parameters."),
    "cam1.rotation": ([0.0, 0.0, 0.0, 1.0], "Camera 1 orientation in reference_frame (quaternion x y z w)."),
    "device": ("auto", "Device for refinement: auto (GPU when available: CUDA for torch; TensorRT, then CUDA, for "
                       "onnxruntime) | cpu | cuda | cuda:N | tensorrt | tensorrt:N (onnxruntime only)."),
    "runtime": ("auto", "Refinement runtime: auto (onnxruntime for an .onnx checkpoint, else torch) | torch | "
                        "onnxruntime (torch weights are exported to ONNX in memory at start-up)."),
    "cpu_threads": (1, "Intra-op threads of torch or ONNX Runtime when refining on the CPU; 0 = the runtime's "
                       "default (all cores). One thread gives the lowest latency for a few people on small or shared "
                       "CPUs."),
    "checkpoint": ("", "Refiner weights file (torch .pt, or .onnx from cvpose-export); it serves the keypoint "
                       "layout it records (h36m17 or coco17) instead of that layout's packaged default; empty = the "
                       "packaged weights of every layout."),
    "refine": (True, "Run CV-UGCN refinement; false publishes triangulation only on both topics."),
    "layout": ("h36m17", "Keypoint layout when a message's own layout field is empty: h36m17 | coco17."),
    "guard": (True, "Do no harm: for a person whose two views agree, shorten any refined joint's correction that "
                    "reprojects further from the keypoints than max(guard_min_px, guard_factor x its triangulation "
                    "residual); people whose views disagree (swaps, outliers) are refined freely."),
    "guard_agree_fraction": (0.02, "Guard: a person's views agree when the median triangulation residual is at "
                                   "most this fraction of their height in the image."),
    "guard_min_px": (3.0, "Guard: smallest allowed mean reprojection error (px) of a refined joint."),
    "guard_factor": (2.0, "Guard: allowed reprojection error as a multiple of the triangulation's residual (>= 1)."),
    "guard_free_above": (0.15, "Guard: corrections longer than this (m) are kept (the refiner repairing a swap or "
                               "outlier that both views can show consistently); 0 = guard every correction."),
    "min_confidence": (0.1, "Keypoints below this confidence are treated as missing."),
    "min_valid_joints": (6, "A person with fewer usable joints in a view is dropped."),
    "sync_slop": (0.01, "Largest stamp difference (s) between the two cameras' keypoints to pair them."),
    "queue_size": (10, "Messages kept per camera while waiting for the other camera."),
    "input_depth": (2, "History depth of the input subscriptions: small keeps latency bounded when processing is "
                       "slower than the cameras; raise it for replays that must not drop frames."),
    "max_stamp_age": (1.0, "Skip keypoints older than this (s) against the node clock; 0 disables."),
    "association_gate": (0.1, "Largest median two-view residual to match people across views, as a fraction of the "
                              "person's size in the image (0 < gate <= 1); a lone person in each view is matched "
                              "up to 0.35 unless geometry rules it out."),
    "max_people": (20, "Most people per view and frame (1..200); extra detections, least confident first, are "
                       "dropped and counted (problem_people_over_limit), so no message can stall the node."),
    "track_max_distance": (0.5, "Largest mean joint distance (m) to keep a person's id between frames."),
    "track_max_missed": (15, "Frames a person may be unseen before the id is released."),
    "publish_coarse": (True, "Also publish the triangulation on skeletons_coarse."),
    "publish_markers": (True, "Publish skeleton_markers (visualization_msgs/MarkerArray)."),
    "publish_tf": (True, "Publish a root and per-joint TF frame for every person on /tf."),
    "tf_prefix": ("", "Prefix of every person frame name."),
    "tf_root_format": ("body_{id}", "Person root frame name ({id} = person id), REP 155 style."),
    "tf_joint_format": ("{joint}_{id}", "Joint frame name ({joint} = the joint name in the frame's layout, "
                                        "{id} = person id)."),
    "marker_lifetime": (0.3, "Marker lifetime (s): people that left disappear after it."),
    "diagnostics_period": (1.0, "Period (s) of /diagnostics."),
    "warn_throttle": (5.0, "Smallest interval (s) between two warnings of the same problem kind."),
}


class ParameterError(ValueError):
    """An invalid parameter value found at start-up."""


@dataclass(frozen=True)
class RefinerParams:
    """Validated parameter values."""

    reference_frame: str
    extrinsics_source: str
    frame_ids: tuple[str, str]
    reference_from_cams: tuple[RigidTransform, RigidTransform]
    device: str
    runtime: str
    cpu_threads: int
    checkpoint: str
    refine: bool
    layout: str
    guard: EvidenceGuard
    min_confidence: float
    min_valid_joints: int
    sync_slop: float
    queue_size: int
    input_depth: int
    max_stamp_age: float
    association_gate: float
    max_people: int
    track_max_distance: float
    track_max_missed: int
    publish_coarse: bool
    publish_markers: bool
    publish_tf: bool
    tf_naming: TfNaming
    marker_lifetime: float
    diagnostics_period: float
    warn_throttle: float


def declare_parameters(node: Node) -> None:
    """Declare every parameter with its description.

    Typing is dynamic so that YAML like `sync_slop: 0` or `translation: [0, 0, 1]` is accepted; `coerce_types`
    then checks each value against its default's type with a clear message.
    """
    for name, (default, description) in PARAMETERS.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description, dynamic_typing=True))


def coerce_types(values: dict) -> dict:
    """Values converted to the type of their default (int -> float, int lists -> float lists); ParameterError
    names the parameter when a value has the wrong type."""
    out = {}
    for name, value in values.items():
        default = PARAMETERS[name][0]
        kind = type(default)
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
        elif kind is list and isinstance(value, list | tuple) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            out[name] = [float(v) for v in value]
        elif kind in (bool, str) and isinstance(value, kind):
            out[name] = value
        else:
            raise ParameterError(f"parameter {name} must be {kind.__name__} (like {default!r}), got {value!r}")
    return out


def _pose(values: dict, cam: str) -> RigidTransform:
    t = np.asarray(values[f"{cam}.translation"], np.float64)
    q = np.asarray(values[f"{cam}.rotation"], np.float64)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ParameterError(f"{cam}.translation must be 3 finite numbers (x y z), got {list(t)}")
    try:
        return RigidTransform.from_quaternion(q, t)
    except ValueError as exc:
        raise ParameterError(f"{cam}.rotation: {exc}") from exc


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ParameterError(message)


def validate(values: dict) -> RefinerParams:
    """Check parameter values (a name -> value dict) and build `RefinerParams`; raises ParameterError."""
    source = values["extrinsics_source"]
    _check(source in EXTRINSICS_SOURCES, f"extrinsics_source must be one of {EXTRINSICS_SOURCES}, got {source!r}")
    _check(values["layout"] in LAYOUTS, f"layout must be one of {sorted(LAYOUTS)}, got {values['layout']!r}")
    for name in ("reference_frame", "cam0.frame_id", "cam1.frame_id"):
        _check(not values[name].startswith("/"), f"{name} must not start with '/' (got {values[name]!r})")
    poses = (_pose(values, "cam0"), _pose(values, "cam1"))
    if source == "parameters":
        baseline = np.linalg.norm(poses[1].t - poses[0].t)
        _check(baseline > 1e-3, f"cam0 and cam1 are {baseline:.4f} m apart: set cam0/cam1.translation and "
                                "rotation to the cameras' poses (extrinsics_source=parameters)")
    if not values["reference_frame"]:
        identity = np.allclose(poses[0].t, 0) and np.allclose(poses[0].R, np.eye(3))
        _check(identity, "reference_frame is empty (= camera 0's frame), so cam0.translation/rotation must be the "
                         "identity; set reference_frame to the frame those poses are given in")
    _check(0.0 <= values["min_confidence"] <= 1.0, "min_confidence must be in [0, 1]")
    _check(2 <= values["min_valid_joints"] <= 17, "min_valid_joints must be in [2, 17]")
    _check(values["sync_slop"] >= 0.0, "sync_slop must be >= 0 s")
    _check(values["queue_size"] >= 1, "queue_size must be >= 1")
    _check(values["input_depth"] >= 1, "input_depth must be >= 1")
    _check(values["max_stamp_age"] >= 0.0, "max_stamp_age must be >= 0 s (0 disables the check)")
    _check(0.0 < values["association_gate"] <= 1.0, "association_gate must be in (0, 1] (a fraction of the "
                                                    "person's size in the image)")
    _check(1 <= values["max_people"] <= 200, "max_people must be in [1, 200]")
    _check(values["track_max_distance"] > 0.0, "track_max_distance must be > 0 m")
    _check(values["track_max_missed"] >= 0, "track_max_missed must be >= 0")
    _check(values["marker_lifetime"] >= 0.0, "marker_lifetime must be >= 0 s (0 = forever)")
    _check(values["diagnostics_period"] > 0.0, "diagnostics_period must be > 0 s")
    _check(values["warn_throttle"] >= 0.0, "warn_throttle must be >= 0 s")
    naming = TfNaming(values["tf_prefix"], values["tf_root_format"], values["tf_joint_format"])
    try:
        naming.validate()
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    device = values["device"].strip().lower()
    _check(device == "auto" or device == "cpu" or device.startswith(("cuda", "tensorrt")),
           f"device must be auto, cpu, cuda, cuda:N, tensorrt or tensorrt:N, got {values['device']!r}")
    runtime = values["runtime"].strip().lower()
    _check(runtime in RUNTIMES, f"runtime must be one of {RUNTIMES}, got {values['runtime']!r}")
    _check(not (device.startswith("tensorrt") and runtime == "torch"),
           f"device {values['device']!r} needs runtime onnxruntime (torch runs on cpu or cuda)")
    _check(values["cpu_threads"] >= 0, "cpu_threads must be >= 0 (0 = torch's default)")
    _check(values["guard_min_px"] >= 0.0, "guard_min_px must be >= 0 px")
    _check(values["guard_agree_fraction"] >= 0.0, "guard_agree_fraction must be >= 0")
    _check(values["guard_factor"] >= 1.0, "guard_factor must be >= 1")
    _check(values["guard_free_above"] >= 0.0, "guard_free_above must be >= 0 m")
    guard = EvidenceGuard(min_px=values["guard_min_px"], agree_fraction=values["guard_agree_fraction"],
                          factor=values["guard_factor"], free_above_m=values["guard_free_above"],
                          enabled=bool(values["guard"]))
    return RefinerParams(
        reference_frame=values["reference_frame"], extrinsics_source=source,
        frame_ids=(values["cam0.frame_id"], values["cam1.frame_id"]), reference_from_cams=poses, device=device,
        runtime=runtime, cpu_threads=int(values["cpu_threads"]),
        checkpoint=values["checkpoint"], refine=bool(values["refine"]), layout=values["layout"], guard=guard,
        min_confidence=float(values["min_confidence"]), min_valid_joints=int(values["min_valid_joints"]),
        sync_slop=float(values["sync_slop"]), queue_size=int(values["queue_size"]),
        input_depth=int(values["input_depth"]),
        max_stamp_age=float(values["max_stamp_age"]), association_gate=float(values["association_gate"]),
        max_people=int(values["max_people"]),
        track_max_distance=float(values["track_max_distance"]), track_max_missed=int(values["track_max_missed"]),
        publish_coarse=bool(values["publish_coarse"]), publish_markers=bool(values["publish_markers"]),
        publish_tf=bool(values["publish_tf"]), tf_naming=naming, marker_lifetime=float(values["marker_lifetime"]),
        diagnostics_period=float(values["diagnostics_period"]), warn_throttle=float(values["warn_throttle"]),
    )


def read_parameters(node: Node) -> RefinerParams:
    """Declare, read and validate all parameters of `node`."""
    declare_parameters(node)
    return validate(coerce_types({name: node.get_parameter(name).value for name in PARAMETERS}))

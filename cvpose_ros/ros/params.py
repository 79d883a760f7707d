"""The refiner node's parameters: its table, their validation into `RefinerParams`, and how the node declares them.

The kit every node uses is in `cvpose_ros.param_spec` (`ParamSpec`, `coerce_types`, `ParameterError`: no rclpy)
and `cvpose_ros.ros.param_kit` (`LiveParameters`, `descriptor`); they are re-exported here.

`PARAMETERS` is the refiner node's table and the single source of truth: `config/refiner.yaml` and the tables in
README.md and docs/refiner_node.md list the same entries, and a test keeps them in sync.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.node import Node

from cvpose_ros.body.skeleton import LAYOUTS
from cvpose_ros.geometry.camera import RigidTransform
from cvpose_ros.model.backend import RUNTIMES
from cvpose_ros.param_spec import ParameterError, ParamSpec
from cvpose_ros.param_spec import coerce_types as coerce_spec_types
from cvpose_ros.refine.guard import EvidenceGuard
from cvpose_ros.ros.camera_list import MAX_CAMERAS
from cvpose_ros.ros.camera_list import NAMESPACE as _NAMESPACE
from cvpose_ros.ros.entry import EXECUTORS
from cvpose_ros.ros.frame_ids import FrameIdRules
from cvpose_ros.ros.param_kit import LiveParameters, declare, descriptor
from cvpose_ros.ros.tf import TfNaming

__all__ = ["PARAMETERS", "LiveParameters", "ParameterError", "ParamSpec", "RefinerParams", "camera_parameters",
           "coerce_types", "descriptor", "read_parameters", "refiner_parameters", "validate"]

EXTRINSICS_SOURCES = ("parameters", "camera_info", "tf")
CAMERA_FIELDS = ("frame_id", "translation", "rotation")  # camera i's parameters are cam<i>.<field>
NAMESPACE_FIELD = "{ns}"  # in tf_prefix / diagnostics_name: the node's namespace without the leading '/', plus '/'


P = ParamSpec
# The refiner node's parameters. restart=True: used to build subscriptions, the refiner or the calibration.
PARAMETERS: dict[str, ParamSpec] = {
    "cameras": P(["cam0", "cam1"], "Namespaces of the cameras (2-16): camera i subscribes <cameras[i]>/keypoints and "
                                   "<cameras[i]>/camera_info and is set by the parameters cam<i>.frame_id, "
                                   "cam<i>.translation and cam<i>.rotation (declared for every camera listed); "
                                   "camera 0 is the reference.", restart=True),
    "reference_frame": P("", "Frame of all outputs; empty = camera 0's optical frame.", restart=True),
    "extrinsics_source": P("parameters", "Where camera poses come from: parameters | camera_info | tf.",
                           restart=True),
    "cam0.frame_id": P("", "Camera 0 optical frame; empty = header.frame_id of its keypoints.", restart=True),
    "cam1.frame_id": P("", "Camera 1 optical frame; empty = header.frame_id of its keypoints.", restart=True),
    "cam0.translation": P([0.0, 0.0, 0.0], "Camera 0 position in reference_frame (x y z, metres).", restart=True),
    "cam0.rotation": P([0.0, 0.0, 0.0, 1.0], "Camera 0 orientation in reference_frame (quaternion x y z w).",
                       restart=True),
    "cam1.translation": P([0.0, 0.0, 0.0], "Camera 1 position in reference_frame (x y z, metres); must differ "
                                           "from camera 0 (baseline > 0) with extrinsics_source=parameters.",
                          restart=True),
    "cam1.rotation": P([0.0, 0.0, 0.0, 1.0], "Camera 1 orientation in reference_frame (quaternion x y z w).",
                       restart=True),
    "publish_camera_tf": P(True, "With extrinsics_source=parameters: publish reference_frame -> camera optical "
                                 "frames on /tf_static. A camera frame that already has another parent in TF (the "
                                 "robot's URDF) is never re-parented: it is left out with a warning naming the "
                                 "conflict.", restart=True),
    "tf_timeout": P(0.05, "extrinsics_source=tf: longest wait (s) for the camera transforms at a frame's stamp; "
                          "then the frame is skipped and counted (no_transform).", (0.0, 10.0)),
    "device": P("auto", "Device for refinement: auto (GPU when available: CUDA for torch; TensorRT, then CUDA, for "
                        "onnxruntime) | cpu | cuda | cuda:N | tensorrt | tensorrt:N (onnxruntime only).",
                restart=True),
    "runtime": P("auto", "Refinement runtime: auto (onnxruntime for an .onnx checkpoint, else torch) | torch | "
                         "onnxruntime (torch weights are exported to ONNX in memory at start-up).", restart=True),
    "executor": P("events", "rclpy executor the node spins on when started by its console entry point: events "
                            "(rclpy's EventsExecutor: middleware events queued in C++, the lower latency) | "
                            "single_threaded (rclpy's default SingleThreadedExecutor).", restart=True),
    "cpu_threads": P(1, "Intra-op threads of torch or ONNX Runtime when refining on the CPU; 0 = the runtime's "
                        "default (all cores). One thread gives the lowest latency for a few people on small or "
                        "shared CPUs.", (0, 1024), restart=True),
    "checkpoint": P("", "Refiner weights file (torch .pt, or .onnx from cvpose-export); it serves the keypoint "
                        "layout it records (h36m17 or coco17) instead of that layout's packaged default; empty = "
                        "the packaged weights of every layout.", restart=True),
    "refine": P(True, "Run CV-UGCN refinement; false publishes triangulation only on both topics.", restart=True),
    "layout": P("h36m17", "Keypoint layout when a message's own layout field is empty: h36m17 | coco17."),
    "guard": P(True, "Do no harm: a refined joint's correction is shortened (down to the triangulation) until it "
                     "passes its layout's rule: the evidence test where guard_confidence.<layout> > 0, else the pixel "
                     "rule (guard_agree_fraction, guard_min_px, guard_factor); corrections longer than "
                     "guard_free_above are kept."),
    "guard_agree_fraction": P(0.02, "Guard, pixel rule: a person's views agree when the median triangulation "
                                    "residual is at most this fraction of their height in the image.", (0.0, 1.0)),
    "guard_min_px": P(3.0, "Guard, pixel rule: smallest allowed mean reprojection error (px) of a refined joint.",
                      (0.0, 1000.0)),
    "guard_factor": P(2.0, "Guard, pixel rule: allowed reprojection error as a multiple of the triangulation's "
                           "residual.", (1.0, 1000.0)),
    "guard_free_above": P(0.15, "Guard: corrections longer than this (m) are kept (the refiner repairing a swap or "
                                "outlier that both views can show consistently); 0 = guard every correction.",
                          (0.0, 10.0)),
    "guard_fit_chi2": P(2.0, "Guard, three or more cameras: a refined joint may raise its confidence-weighted "
                             "squared reprojection residual over all the person's views by at most this many times "
                             "the person's noise variance (estimated from their N-view residuals; a true point "
                             "raises it by a chi-square variable with 3 degrees of freedom), else its correction is "
                             "shortened, for every person; 0 = off. Two cameras do not use it.", (0.0, 1000.0)),
    "guard_confidence.coco17": P(0.5, "Guard, evidence test for coco17 refinement: a joint passes while it lies "
                                      "inside this confidence region of the triangulation at the noise level of the "
                                      "person's own residuals (chi-square test); 0 = the pixel rule instead.",
                                 (0.0, 0.999)),
    "guard_confidence.h36m17": P(0.0, "Guard, evidence test for h36m17 refinement, as guard_confidence.coco17; 0 "
                                      "(default) = the pixel rule, which bounds the h36m17 weights' pull on keypoints "
                                      "mapped from another joint definition best.", (0.0, 0.999)),
    "min_confidence": P(0.1, "Keypoints below this confidence are treated as missing.", (0.0, 1.0)),
    "min_valid_joints": P(6, "A person with fewer usable joints in a view is dropped.", (2, 17)),
    "sync_slop": P(0.01, "Largest stamp difference (s) between the two cameras' keypoints to pair them.",
                   (0.0, 10.0)),
    "queue_size": P(10, "Messages kept per camera while waiting for the other camera.", (1, 10000)),
    "input_depth": P(2, "History depth of the input subscriptions: small keeps latency bounded when processing is "
                        "slower than the cameras; raise it for replays that must not drop frames.", (1, 10000),
                     restart=True),
    "max_stamp_age": P(1.0, "Skip keypoints older than this (s) against the node clock; 0 disables.",
                       (0.0, 86400.0)),
    "max_stamp_future": P(0.5, "Skip keypoints stamped more than this (s) ahead of the node clock (/clock with "
                               "use_sim_time); also the longest a bad stamp can block a camera.", (0.001, 3600.0),
                          restart=True),
    "max_range": P(30.0, "Drop people with a joint farther than this (m) from the nearer camera.", (0.1, 10000.0),
                   restart=True),
    "bone_check": P(True, "Check bone lengths against a human range (per keypoint layout): blank a limb or face "
                    "joint off its bone, drop a person whose torso is not human.",
                    restart=True),
    "association_gate": P(0.1, "Largest median two-view residual to match people across views, as a fraction of "
                               "the person's size in the image (0 < gate <= 1); a lone person in each view is "
                               "matched up to 0.35 unless geometry rules it out.", (0.0, 1.0)),
    "max_people": P(20, "Most people per view and frame; extra detections, least confident first, are dropped and "
                        "counted (problem_people_over_limit), so no message can stall the node.", (1, 200)),
    "track_max_distance": P(0.5, "Largest mean joint distance (m) to keep a person's id between frames.",
                            (0.01, 100.0)),
    "track_timeout": P(1.0, "Seconds (of stamp time) a person may be unseen before the id is released; ids only "
                            "grow and are never reused within a run.", (0.0, 86400.0)),
    "publish_coarse": P(True, "Also publish the triangulation on skeletons_coarse."),
    "publish_markers": P(True, "Publish skeleton_markers (visualization_msgs/MarkerArray)."),
    "publish_tf": P(True, "Publish a root and per-joint TF frame for every person on /tf."),
    "tf_prefix": P(NAMESPACE_FIELD, "Prefix of every person frame name; {ns} = the node's namespace + '/' (empty "
                                    "in the root namespace), so two namespaced instances never share a frame."),
    "tf_root_format": P("body_{id}", "Person root frame name ({id} = person id), REP 155 style."),
    "tf_joint_format": P("{joint}_{id}", "Joint frame name ({joint} = the joint name in the frame's layout, "
                                         "{id} = person id)."),
    "marker_lifetime": P(0.3, "Marker lifetime (s): people that left disappear after it; 0 = forever.",
                         (0.0, 86400.0)),
    "diagnostics_name": P(NAMESPACE_FIELD + "cvpose_refiner: pipeline",
                          "Name of the /diagnostics status; {ns} as in tf_prefix."),
    "diagnostics_period": P(1.0, "Period (s) of /diagnostics.", (0.01, 3600.0), restart=True),
    "warn_throttle": P(5.0, "Smallest interval (s) between two warnings of the same problem kind.",
                       (0.0, 86400.0)),
    "diagnostics_hold": P(5.0, "After a problem, /diagnostics stays WARN for this long (s) with the last problem's "
                               "message.", (0.0, 3600.0), restart=True),
    "camera_timeout": P(1.0, "A camera with no keypoints for this long (s) while the other's arrive is reported "
                             "silent (WARN, named) in /diagnostics.", (0.01, 3600.0), restart=True),
}
del P


def camera_parameters(count: int) -> dict[str, ParamSpec]:
    """The cam<i>.* parameters of cameras 2..count-1 (cam0 and cam1 are in PARAMETERS): cam1's, renumbered."""
    out = {}
    for index in range(2, max(2, min(int(count), MAX_CAMERAS))):
        for field_name in CAMERA_FIELDS:
            spec = PARAMETERS[f"cam1.{field_name}"]
            text = spec.description.replace("Camera 1", f"Camera {index}").replace("from camera 0", "from the others")
            out[f"cam{index}.{field_name}"] = spec._replace(description=text)
    return out


# An entry written as a plain (default, description) tuple is accepted as a live parameter without a range.
PARAMETERS = {name: spec if isinstance(spec, ParamSpec) else ParamSpec(*spec) for name, spec in PARAMETERS.items()}


def coerce_types(values: Mapping[str, Any], specs: Mapping[str, ParamSpec] = PARAMETERS) -> dict[str, Any]:
    """`cvpose_ros.param_spec.coerce_types` against the refiner's table unless `specs` is given."""
    return coerce_spec_types(values, specs)


@dataclass(frozen=True)
class RefinerParams:
    """Validated parameter values of the refiner node."""

    reference_frame: str
    extrinsics_source: str
    frame_ids: tuple[str, ...]                       # one per camera ("" = from the keypoints' header)
    reference_from_cams: tuple[RigidTransform, ...]  # one per camera
    publish_camera_tf: bool
    tf_timeout: float
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
    track_timeout: float
    publish_coarse: bool
    publish_markers: bool
    publish_tf: bool
    tf_naming: TfNaming
    marker_lifetime: float
    diagnostics_name: str
    diagnostics_period: float
    warn_throttle: float
    max_stamp_future: float
    max_range: float
    bone_check: bool
    diagnostics_hold: float
    camera_timeout: float
    cameras: tuple[str, ...] = ("cam0", "cam1")      # topic namespaces, camera 0 first
    executor: str = "events"                         # what `cvpose_ros.ros.entry.run_node` spins the node on


def _pose(values: dict, cam: str) -> RigidTransform:
    t = np.asarray(values[f"{cam}.translation"], np.float64)
    q = np.asarray(values[f"{cam}.rotation"], np.float64)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ParameterError(f"{cam}.translation must be 3 finite numbers (x y z), got {list(t)}")
    try:
        return RigidTransform.from_quaternion(q, t)
    except ValueError as exc:
        raise ParameterError(f"{cam}.rotation: {exc}") from exc


def _cameras(values: dict) -> tuple[str, ...]:
    """The `cameras` list, checked: 2..MAX_CAMERAS distinct topic namespaces, and cam<i>.* given for each."""
    cameras = tuple(values["cameras"])
    _check(2 <= len(cameras) <= MAX_CAMERAS, f"cameras must list 2 to {MAX_CAMERAS} camera namespaces, got "
                                             f"{len(cameras)}: {list(cameras)}")
    for name in cameras:
        _check(bool(_NAMESPACE.match(name)), f"cameras: {name!r} is not a topic namespace (letters, digits, _ and "
                                             "/ separators, not starting with a digit)")
    _check(len(set(cameras)) == len(cameras), f"cameras lists a namespace twice: {list(cameras)}")
    missing = [f"cam{i}.{f}" for i in range(len(cameras)) for f in CAMERA_FIELDS if f"cam{i}.{f}" not in values]
    _check(not missing, f"cameras cannot grow while the node runs (missing {', '.join(missing)})")
    return cameras


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ParameterError(message)


def namespace_prefix(namespace: str) -> str:
    """What `{ns}` expands to: '' for the root namespace, 'left/' for '/left', 'robot/left/' for '/robot/left'."""
    stripped = namespace.strip("/")
    return stripped + "/" if stripped else ""


def validate(values: dict, namespace: str = "/") -> RefinerParams:
    """Check parameter values (a name -> value dict, types coerced) and build `RefinerParams` for a node in
    `namespace`; raises ParameterError. Ranges are checked by `coerce_types` from the table."""
    source = values["extrinsics_source"]
    _check(source in EXTRINSICS_SOURCES, f"extrinsics_source must be one of {EXTRINSICS_SOURCES}, got {source!r}")
    _check(values["layout"] in LAYOUTS, f"layout must be one of {sorted(LAYOUTS)}, got {values['layout']!r}")
    ns = namespace_prefix(namespace)
    prefix = values["tf_prefix"].replace(NAMESPACE_FIELD, ns)
    rules = FrameIdRules(prefix, values["tf_root_format"], values["tf_joint_format"]) \
        if _formats_ok(values) else FrameIdRules(prefix)
    cameras = _cameras(values)
    count = len(cameras)
    _check(source != "camera_info" or count == 2, f"extrinsics_source=camera_info is a rectified stereo pair: it "
                                                   f"needs exactly 2 cameras, got {count}")
    frame_names = ["reference_frame"] + [f"cam{i}.frame_id" for i in range(count)]
    for name in frame_names:
        problem = rules.problem(values[name]) if values[name] else None
        _check(problem is None, f"{name}: {problem}")
    for i, j in itertools.combinations(range(count), 2):
        a, b = values[f"cam{i}.frame_id"], values[f"cam{j}.frame_id"]
        _check(not a or a != b, f"cam{i}.frame_id and cam{j}.frame_id are both {a!r}: each camera needs its own frame")
    poses = tuple(_pose(values, f"cam{i}") for i in range(count))
    if source == "parameters":
        for i, j in itertools.combinations(range(count), 2):
            baseline = np.linalg.norm(poses[j].t - poses[i].t)
            _check(baseline > 1e-3, f"cam{i} and cam{j} are {baseline:.4f} m apart: set cam{i}/cam{j}.translation "
                                    "and rotation to the cameras' poses (extrinsics_source=parameters)")
    if not values["reference_frame"]:
        identity = np.allclose(poses[0].t, 0) and np.allclose(poses[0].R, np.eye(3))
        _check(identity, "reference_frame is empty (= camera 0's frame), so cam0.translation/rotation must be the "
                         "identity; set reference_frame to the frame those poses are given in")
    _check(values["association_gate"] > 0.0, "association_gate must be in (0, 1] (a fraction of the person's size in "
                                             "the image)")
    naming = TfNaming(values["tf_prefix"].replace(NAMESPACE_FIELD, ns), values["tf_root_format"],
                      values["tf_joint_format"])
    try:
        naming.validate()
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    diagnostics_name = values["diagnostics_name"].replace(NAMESPACE_FIELD, ns)
    _check(bool(diagnostics_name.strip()), "diagnostics_name must not be empty")
    device = values["device"].strip().lower()
    _check(device == "auto" or device == "cpu" or device.startswith(("cuda", "tensorrt")),
           f"device must be auto, cpu, cuda, cuda:N, tensorrt or tensorrt:N, got {values['device']!r}")
    runtime = values["runtime"].strip().lower()
    _check(runtime in RUNTIMES, f"runtime must be one of {RUNTIMES}, got {values['runtime']!r}")
    _check(not (device.startswith("tensorrt") and runtime == "torch"),
           f"device {values['device']!r} needs runtime onnxruntime (torch runs on cpu or cuda)")
    executor = values["executor"].strip().lower()
    _check(executor in EXECUTORS, f"executor must be one of {', '.join(EXECUTORS)}, got {values['executor']!r}")
    _check(values["cpu_threads"] >= 0, "cpu_threads must be >= 0 (0 = torch's default)")
    _check(values["guard_min_px"] >= 0.0, "guard_min_px must be >= 0 px")
    _check(values["guard_agree_fraction"] >= 0.0, "guard_agree_fraction must be >= 0")
    _check(values["guard_factor"] >= 1.0, "guard_factor must be >= 1")
    _check(values["guard_free_above"] >= 0.0, "guard_free_above must be >= 0 m")
    _check(values["guard_fit_chi2"] >= 0.0, "guard_fit_chi2 must be >= 0 (0 = off)")
    guard = EvidenceGuard(min_px=values["guard_min_px"], agree_fraction=values["guard_agree_fraction"],
                          factor=values["guard_factor"], free_above_m=values["guard_free_above"],
                          fit_chi2=values["guard_fit_chi2"],
                          evidence_confidence=tuple((name, float(values[f"guard_confidence.{name}"]))
                                                    for name in LAYOUTS),
                          enabled=bool(values["guard"]))
    return RefinerParams(
        reference_frame=values["reference_frame"], extrinsics_source=source,
        frame_ids=tuple(values[f"cam{i}.frame_id"] for i in range(count)), reference_from_cams=poses,
        publish_camera_tf=bool(values["publish_camera_tf"]), tf_timeout=float(values["tf_timeout"]),
        device=device, runtime=runtime, cpu_threads=int(values["cpu_threads"]),
        checkpoint=values["checkpoint"], refine=bool(values["refine"]), layout=values["layout"], guard=guard,
        min_confidence=float(values["min_confidence"]), min_valid_joints=int(values["min_valid_joints"]),
        sync_slop=float(values["sync_slop"]), queue_size=int(values["queue_size"]),
        input_depth=int(values["input_depth"]),
        max_stamp_age=float(values["max_stamp_age"]), association_gate=float(values["association_gate"]),
        max_people=int(values["max_people"]),
        track_max_distance=float(values["track_max_distance"]), track_timeout=float(values["track_timeout"]),
        publish_coarse=bool(values["publish_coarse"]), publish_markers=bool(values["publish_markers"]),
        publish_tf=bool(values["publish_tf"]), tf_naming=naming, marker_lifetime=float(values["marker_lifetime"]),
        diagnostics_name=diagnostics_name, diagnostics_period=float(values["diagnostics_period"]),
        warn_throttle=float(values["warn_throttle"]), max_stamp_future=float(values["max_stamp_future"]),
        max_range=float(values["max_range"]), bone_check=bool(values["bone_check"]),
        diagnostics_hold=float(values["diagnostics_hold"]), camera_timeout=float(values["camera_timeout"]),
        cameras=cameras, executor=executor,
    )


def _formats_ok(values: dict) -> bool:
    """True when the TF name formats can be formatted (their own error is raised further down)."""
    try:
        TfNaming(values["tf_prefix"], values["tf_root_format"], values["tf_joint_format"]).validate()
    except ValueError:
        return False
    return True


def refiner_parameters(node: Node, apply: Callable[[RefinerParams, RefinerParams], None] | None = None,
                       ) -> LiveParameters[RefinerParams]:
    """Declare, read and validate the refiner node's parameters; later sets are validated and passed to `apply`.

    `cameras` is declared first: its length decides which cam<i>.* parameters exist (cam2.* and up)."""
    declare(node, "cameras", PARAMETERS["cameras"])
    value = node.get_parameter("cameras").value
    count = len(value) if isinstance(value, list | tuple) else 2
    specs = {**PARAMETERS, **camera_parameters(count)}
    return LiveParameters(node, specs, lambda values: validate(values, node.get_namespace()), apply)


def read_parameters(node: Node) -> RefinerParams:
    """Declare, read and validate the refiner parameters of `node` without live updates (tools and tests)."""
    return refiner_parameters(node).settings

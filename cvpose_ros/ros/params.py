"""Node parameters: one kit for declaring, validating and live-updating them, and the refiner node's table.

`ParamSpec` describes one parameter (default, description, numeric range, whether a change needs a restart);
`LiveParameters` declares a table of them on a node with full descriptors (so `ros2 param describe` shows the
range and read-only flag), validates the start-up values and every later `ros2 param set` with the same function,
refuses an invalid set with the reason, and hands each accepted change to the node to apply live.

`PARAMETERS` is the refiner node's table and the single source of truth: `config/refiner.yaml` and the tables in
README.md and docs/refiner_node.md list the same entries, and a test keeps them in sync.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from cvpose_ros.camera import RigidTransform
from cvpose_ros.frame_ids import FrameIdRules
from cvpose_ros.guard import EvidenceGuard
from cvpose_ros.model.backend import RUNTIMES
from cvpose_ros.ros.tf import TfNaming
from cvpose_ros.skeleton import LAYOUTS

EXTRINSICS_SOURCES = ("parameters", "camera_info", "tf")
MAX_CAMERAS = 16
CAMERA_FIELDS = ("frame_id", "translation", "rotation")  # camera i's parameters are cam<i>.<field>
RESTART_NOTE = " Read-only: a change needs a restart."
NAMESPACE_FIELD = "{ns}"  # in tf_prefix / diagnostics_name: the node's namespace without the leading '/', plus '/'


class ParamSpec(NamedTuple):
    """One parameter: default (its type is the parameter's type), description, inclusive numeric range, and
    `restart=True` when the node reads it only at start-up (declared read-only)."""

    default: Any
    description: str
    range: tuple[float, float] | None = None
    restart: bool = False


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
    "cpu_threads": P(1, "Intra-op threads of torch or ONNX Runtime when refining on the CPU; 0 = the runtime's "
                        "default (all cores). One thread gives the lowest latency for a few people on small or "
                        "shared CPUs.", (0, 1024), restart=True),
    "checkpoint": P("", "Refiner weights file (torch .pt, or .onnx from cvpose-export); it serves the keypoint "
                        "layout it records (h36m17 or coco17) instead of that layout's packaged default; empty = "
                        "the packaged weights of every layout.", restart=True),
    "refine": P(True, "Run CV-UGCN refinement; false publishes triangulation only on both topics.", restart=True),
    "layout": P("h36m17", "Keypoint layout when a message's own layout field is empty: h36m17 | coco17."),
    "guard": P(True, "Do no harm: for a person whose two views agree, shorten any refined joint's correction that "
                     "reprojects further from the keypoints than max(guard_min_px, guard_factor x its "
                     "triangulation residual); people whose views disagree (swaps, outliers) are refined freely."),
    "guard_agree_fraction": P(0.02, "Guard: a person's views agree when the median triangulation residual is at "
                                    "most this fraction of their height in the image.", (0.0, 1.0)),
    "guard_min_px": P(3.0, "Guard: smallest allowed mean reprojection error (px) of a refined joint.",
                      (0.0, 1000.0)),
    "guard_factor": P(2.0, "Guard: allowed reprojection error as a multiple of the triangulation's residual.",
                      (1.0, 1000.0)),
    "guard_free_above": P(0.15, "Guard: corrections longer than this (m) are kept (the refiner repairing a swap or "
                                "outlier that both views can show consistently); 0 = guard every correction.",
                          (0.0, 10.0)),
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
    "bone_check": P(True, "Drop people with a bone length outside a human range (per keypoint layout).",
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


class ParameterError(ValueError):
    """An invalid parameter value (at start-up: the node does not start; later: the set is refused)."""


def descriptor(name: str, spec: ParamSpec) -> ParameterDescriptor:
    """The descriptor `ros2 param describe` shows: description, read-only flag and numeric range.

    Typing is dynamic so that YAML like `sync_slop: 0` or `translation: [0, 0, 1]` is accepted; `coerce_types`
    then checks each value against its default's type with a clear message.
    """
    desc = ParameterDescriptor(name=name, description=spec.description + (RESTART_NOTE if spec.restart else ""),
                               read_only=spec.restart, dynamic_typing=True)
    if spec.range is not None and isinstance(spec.default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]),
                                                        to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        desc.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return desc


def coerce_types(values: Mapping[str, Any], specs: Mapping[str, ParamSpec] = PARAMETERS) -> dict[str, Any]:
    """Values converted to the type of their default (int -> float, int lists -> float lists) and checked against
    their range; ParameterError names the parameter when a value has the wrong type or is out of range."""
    out = {}
    for name, value in values.items():
        default = specs[name].default
        kind = type(default)
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
        elif kind is list and default and isinstance(default[0], str) and isinstance(value, list | tuple) and all(
                isinstance(v, str) for v in value):
            out[name] = [str(v) for v in value]
        elif kind is list and not (default and isinstance(default[0], str)) and isinstance(value, list | tuple) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            out[name] = [float(v) for v in value]
        elif kind in (bool, str) and isinstance(value, kind):
            out[name] = value
        else:
            raise ParameterError(f"parameter {name} must be {kind.__name__} (like {default!r}), got {value!r}")
        bounds = specs[name].range
        if bounds is not None and not (math.isfinite(out[name]) and bounds[0] <= out[name] <= bounds[1]):
            raise ParameterError(f"parameter {name} must be in [{bounds[0]}, {bounds[1]}], got {value!r}")
    return out


T = TypeVar("T")


class LiveParameters(Generic[T]):
    """A node's parameter table, declared with descriptors and kept valid for the node's whole life.

    `build` turns a complete name -> value dict (types already coerced) into the node's settings object or raises
    ParameterError; it runs at start-up and again on every set, on the values the set would produce. `apply`
    (optional) receives (old, new) settings after an accepted set, so the node switches live.
    """

    def __init__(self, node: Node, specs: Mapping[str, ParamSpec], build: Callable[[dict[str, Any]], T],
                 apply: Callable[[T, T], None] | None = None) -> None:
        self._node, self._specs, self._build, self._apply = node, dict(specs), build, apply
        for name, spec in self._specs.items():
            if node.has_parameter(name):  # declared ahead (refiner_parameters reads `cameras` first)
                continue
            try:
                node.declare_parameter(name, spec.default, descriptor(name, spec))
            except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
                bounds = f" must be in [{spec.range[0]}, {spec.range[1]}]" if spec.range else ""
                raise ParameterError(f"parameter {name}{bounds}: {exc.args[0]}") from exc
        self.values = coerce_types({name: node.get_parameter(name).value for name in self._specs}, self._specs)
        self.settings: T = build(self.values)
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, parameters: list) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in self._specs}
        if not changes:  # e.g. use_sim_time: rclpy's own
            return SetParametersResult(successful=True)
        try:
            values = {**self.values, **coerce_types(changes, self._specs)}
            settings = self._build(values)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        old, self.values, self.settings = self.settings, values, settings
        if self._apply is not None:
            self._apply(old, settings)
        self._node.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)


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


def _pose(values: dict, cam: str) -> RigidTransform:
    t = np.asarray(values[f"{cam}.translation"], np.float64)
    q = np.asarray(values[f"{cam}.rotation"], np.float64)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ParameterError(f"{cam}.translation must be 3 finite numbers (x y z), got {list(t)}")
    try:
        return RigidTransform.from_quaternion(q, t)
    except ValueError as exc:
        raise ParameterError(f"{cam}.rotation: {exc}") from exc


_NAMESPACE = re.compile(r"^/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


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
        cameras=cameras,
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
    spec = PARAMETERS["cameras"]
    try:
        node.declare_parameter("cameras", spec.default, descriptor("cameras", spec))
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
        raise ParameterError(f"parameter cameras: {exc.args[0]}") from exc
    value = node.get_parameter("cameras").value
    count = len(value) if isinstance(value, list | tuple) else 2
    specs = {**PARAMETERS, **camera_parameters(count)}
    return LiveParameters(node, specs, lambda values: validate(values, node.get_namespace()), apply)



def read_parameters(node: Node) -> RefinerParams:
    """Declare, read and validate the refiner parameters of `node` without live updates (tools and tests)."""
    return refiner_parameters(node).settings

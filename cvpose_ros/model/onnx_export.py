"""A torch checkpoint as one ONNX graph: coarse two-view poses in, refined poses out, checked against torch.

The graph is the whole inference step of `model.pipeline` (root centring, clamping, feature channels, CV-UGCN,
NaN at invalid joints, optional view fusion), not only the network, so ONNX Runtime needs no numpy re-implementation
of the feature code that could drift from training. Geometry stays float64 as in torch, the network float32.
Inputs (P = people, a dynamic axis; J joints):

    cam0, cam1          (P, J, 3) float64   coarse poses per camera (NaN allowed at invalid joints)
    reprojection_error  (P, 2, J) float64   DLT residual per view, pixels
    valid               (P, 2, J) bool      joint usable in that view
    R10, t10            (P, 3, 3), (P, 3) float64  cam1_from_cam0
    fuse                ()        bool      average the two refined views (as Refiner's fuse_views)

Outputs refined0, refined1 (P, J, 3) float64. The model's metadata_props carry the checkpoint's metadata (JSON
under 'cvpose.metadata'), its layout and feature spec (also as their own keys, readable by any ONNX tool) and the
check's measured differences ('cvpose.export_check').
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cvpose_ros.model.checkpoint import CheckpointError, LoadedCheckpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import fuse_where_valid, refine_views

OPSET = 17
INPUT_NAMES = ("cam0", "cam1", "reprojection_error", "valid", "R10", "t10", "fuse")
OUTPUT_NAMES = ("refined0", "refined1")
ONNX_FORMAT_VERSION = 1
TOLERANCE_M = 1e-4  # largest accepted difference between ONNX Runtime and torch (metres)


class RefineGraph(nn.Module):
    """The exported computation: `refine_views` then fusion selected by a boolean input."""

    def __init__(self, model: nn.Module, spec: FeatureSpec):
        super().__init__()
        self.model, self.spec = model, spec

    def forward(self, cam0, cam1, reprojection_error, valid, R10, t10, fuse):
        refined0, refined1, both = refine_views(self.model, cam0, cam1, reprojection_error, valid, spec=self.spec)
        fused0, fused1 = fuse_where_valid(refined0, refined1, both, R10, t10)
        return torch.where(fuse, fused0, refined0), torch.where(fuse, fused1, refined1)


@dataclass
class ExportResult:
    """The serialised model and the measured agreement with torch (max |onnx - torch| in metres per input set)."""

    model_bytes: bytes
    max_diff_m: dict[str, float]


def example_inputs(people: int, num_joints: int = 17, seed: int = 0) -> dict[str, np.ndarray]:
    """Random but plausible inputs: bodies 2-6 m in front of camera 0, a second camera 1-3 m away, some joints
    invalid in one view (NaN there), residuals 0-30 px. Used for tracing and for the random-input check."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    body = rng.normal(scale=0.3, size=(people, num_joints, 3)) + np.array([0.0, 0.0, 4.0]) \
        + rng.uniform(-1.0, 1.0, size=(people, 1, 3))
    R = Rotation.random(people, random_state=seed).as_matrix() if people else np.zeros((0, 3, 3))
    t = rng.uniform(-3.0, 3.0, size=(people, 3))
    cam0 = body + rng.normal(scale=0.02, size=body.shape)
    cam1 = np.einsum("pij,pkj->pki", R, body) + t[:, None] + rng.normal(scale=0.02, size=body.shape)
    valid = rng.random((people, 2, num_joints)) > 0.1
    cam0[~valid[:, 0]] = np.nan
    cam1[~valid[:, 1]] = np.nan
    err = rng.uniform(0.0, 30.0, size=(people, 2, num_joints))
    return {"cam0": cam0, "cam1": cam1, "reprojection_error": err, "valid": valid, "R10": R, "t10": t}


def realistic_inputs(layout: str, people: int = 5, seconds: float = 2.0) -> dict[str, np.ndarray]:
    """Inputs as the node builds them: a synthetic scene (walking bodies) seen by the demo rig with detector-like
    2D noise, triangulated by `triangulate_pair`, every frame's people stacked."""
    from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
    from cvpose_ros.geometry.triangulation import triangulate_pair

    rig = make_rig("demo")
    scene = generate_scene(people, seconds, 10.0, seed=1).in_layout(layout)
    views = project_scene(scene, rig, noise="detector")
    joints = scene.joints.shape[-2]
    kp0, kp1 = (v.keypoints.reshape(-1, joints, 2) for v in views)
    c0, c1 = (v.confidence.reshape(-1, joints) for v in views)
    cams = rig.cameras
    tri = triangulate_pair(cams[0].model, cams[1].model, rig.cam1_from_cam0, kp0, c0, kp1, c1)
    count = len(tri.cam0)
    return {"cam0": tri.cam0, "cam1": tri.cam1,
            "reprojection_error": np.repeat(tri.reprojection_error[:, None], 2, axis=1),
            "valid": np.repeat(tri.valid[:, None], 2, axis=1),
            "R10": np.broadcast_to(rig.cam1_from_cam0.R, (count, 3, 3)).copy(),
            "t10": np.broadcast_to(rig.cam1_from_cam0.t, (count, 3)).copy()}


def torch_reference(loaded: LoadedCheckpoint, inputs: dict[str, np.ndarray], fuse: bool) -> tuple[np.ndarray, ...]:
    """Refined poses of torch eager (CPU) for `inputs` (the reference the export is checked against)."""
    graph = RefineGraph(loaded.model.cpu().eval(), loaded.spec)
    with torch.inference_mode():
        args = [torch.tensor(inputs[name]) for name in INPUT_NAMES[:-1]]
        return tuple(out.numpy() for out in graph(*args, torch.tensor(fuse)))


def _feeds(inputs: dict[str, np.ndarray], fuse: bool) -> dict[str, np.ndarray]:
    feeds = {name: np.ascontiguousarray(inputs[name], dtype=np.bool_ if name == "valid" else np.float64)
             for name in INPUT_NAMES[:-1]}
    feeds["fuse"] = np.array(fuse)
    return feeds


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| over joints finite in both; inf when the NaN patterns differ."""
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    finite = np.isfinite(a)
    return float(np.abs(a[finite] - b[finite]).max()) if finite.any() else 0.0


def check_against_torch(model_bytes: bytes, loaded: LoadedCheckpoint, cases: dict[str, dict[str, np.ndarray]],
                        tolerance_m: float = TOLERANCE_M) -> dict[str, float]:
    """Run the ONNX model on ONNX Runtime (CPU) and torch on each case, fused and not; returns the max difference
    (m) per case; ValueError naming the case when one exceeds `tolerance_m` or the NaN pattern differs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    diffs: dict[str, float] = {}
    for name, inputs in cases.items():
        worst = 0.0
        for fuse in (True, False):
            expected = torch_reference(loaded, inputs, fuse)
            got = session.run(list(OUTPUT_NAMES), _feeds(inputs, fuse))
            worst = max(worst, *(max_difference(g, e) for g, e in zip(got, expected, strict=True)))
        diffs[name] = worst
        if not worst <= tolerance_m:
            raise ValueError(f"ONNX Runtime and torch differ by {worst:.3g} m on the {name} inputs "
                             f"(tolerance {tolerance_m:g} m)")
    return diffs


def export_onnx(loaded: LoadedCheckpoint, check: bool = True, tolerance_m: float = TOLERANCE_M) -> ExportResult:
    """Serialise `loaded` as an ONNX model with a dynamic people axis and the metadata described above; with
    `check`, compare it with torch on random inputs (batches 1, 5, 64) and on realistic triangulations."""
    import onnx

    model = loaded.model.cpu().eval()
    graph = RefineGraph(model, loaded.spec).eval()
    trace = example_inputs(3, model.layout.num_joints)
    args = tuple(torch.tensor(trace[name]) for name in INPUT_NAMES[:-1]) + (torch.tensor(True),)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated in favour of dynamo (needs onnxscript)
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, args, buffer, input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          dynamic_axes={name: {0: "people"} for name in (*INPUT_NAMES[:-1], *OUTPUT_NAMES)},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    diffs: dict[str, float] = {}
    if check:
        joints = model.layout.num_joints
        cases = {f"random batch {b}": example_inputs(b, joints, seed=b) for b in (1, 5, 64)}
        cases["realistic"] = realistic_inputs(model.layout.name)
        diffs = check_against_torch(proto.SerializeToString(), loaded, cases, tolerance_m)
    props = {
        "cvpose.format_version": str(ONNX_FORMAT_VERSION),
        "cvpose.layout": model.layout.name,
        "cvpose.features": json.dumps(loaded.spec.to_dict()),
        "cvpose.model": json.dumps(model.config.to_dict()),
        "cvpose.metadata": json.dumps(loaded.metadata),
        "cvpose.export_check": json.dumps({"max_diff_m": diffs, "tolerance_m": tolerance_m,
                                           "torch_version": torch.__version__, "opset": OPSET}),
    }
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.doc_string = "cvpose-export", "CV-UGCN refinement step of cvpose_ros"
    onnx.checker.check_model(proto)
    return ExportResult(proto.SerializeToString(), diffs)


def onnx_metadata_from_props(props: dict[str, str], path: str | Path) -> dict:
    """Checkpoint-style metadata ('layout', 'features', 'model', ...) from an exported model's metadata_props."""
    if "cvpose.metadata" not in props or "cvpose.format_version" not in props:
        raise CheckpointError(path, "ONNX model without cvpose metadata (not written by cvpose-export)")
    if props["cvpose.format_version"] != str(ONNX_FORMAT_VERSION):
        raise CheckpointError(path, f"cvpose ONNX format {props['cvpose.format_version']!r} is not supported "
                                    f"(this code reads {ONNX_FORMAT_VERSION})")
    try:
        metadata = json.loads(props["cvpose.metadata"])
        FeatureSpec.from_dict(dict(metadata["features"]))
        str(metadata["layout"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(path, f"bad cvpose metadata in the ONNX model: {exc}") from None
    return metadata


def read_onnx_metadata(path: str | Path) -> dict:
    """Metadata of an exported model file without building a session (CheckpointError when unusable)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file does not exist" if not path.exists() else "not a regular file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for foreign or truncated files
        raise CheckpointError(path, f"not a readable ONNX model: {type(exc).__name__}: "
                                    f"{(str(exc).splitlines() or [''])[0][:160]}") from None
    return onnx_metadata_from_props({p.key: p.value for p in proto.metadata_props}, path)

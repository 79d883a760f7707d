"""An exported refinement graph with int8 weights, for CPUs where float32 CV-UGCN is the frame's cost.

ONNX Runtime's dynamic quantisation stores the network's MatMul weights as int8, per output channel. Activations
are quantised per call, and the float64 geometry around the network is untouched. On CPUs with VNNI (AVX-512 or
AVX-VNNI) the network runs about 2x faster. The poses are no longer equal to torch's within 1e-4 m. The accuracy
check therefore compares both graphs with the ground truth of a synthetic scene seen through the detector-like
noise model, and refuses the model when int8 costs more than `max_mpjpe_increase_mm` of refined MPJPE. The
measured figures go into the model's metadata ('cvpose.quantization').
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvpose_ros.model.onnx_export import INPUT_NAMES, OUTPUT_NAMES

MAX_MPJPE_INCREASE_MM = 1.0  # default: int8 may cost at most this much refined MPJPE on the check scene


@dataclass
class QuantizationCheck:
    """Refined MPJPE (mm, camera 0, all finite joints) of the float and the int8 graph against the ground truth,
    and their largest pose difference (m)."""

    float_mpjpe_mm: float
    int8_mpjpe_mm: float
    triangulation_mpjpe_mm: float
    max_diff_m: float

    @property
    def increase_mm(self) -> float:
        return self.int8_mpjpe_mm - self.float_mpjpe_mm


def quantize_int8(model_bytes: bytes) -> bytes:
    """The int8 (dynamic, per-channel) version of an exported graph, its metadata_props kept."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = onnx.load_from_string(model_bytes)
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        float_path.write_bytes(model_bytes)
        logging.disable(logging.WARNING)  # the quantiser logs every float64 geometry tensor it leaves alone
        try:
            quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            logging.disable(logging.NOTSET)
        quantized = onnx.load(str(int8_path))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(source.metadata_props)
    quantized.producer_name, quantized.doc_string = source.producer_name, source.doc_string + " (int8 weights)"
    return quantized.SerializeToString()


def check_scene(layout: str, people: int = 5, seconds: float = 4.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Graph inputs from a synthetic walking scene (demo rig, detector-like 2D noise, `triangulate_pair`) and the
    ground truth (N, J, 3) in camera 0's frame. A different seed from the export check's scene."""
    from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
    from cvpose_ros.geometry.triangulation import triangulate_pair

    rig = make_rig("demo")
    scene = generate_scene(people, seconds, 10.0, seed=7).in_layout(layout)
    views = project_scene(scene, rig, noise="detector", seed=7)
    joints = scene.joints.shape[-2]
    kp0, kp1 = (v.keypoints.reshape(-1, joints, 2) for v in views)
    c0, c1 = (v.confidence.reshape(-1, joints) for v in views)
    tri = triangulate_pair(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0, kp0, c0, kp1, c1)
    count = len(tri.cam0)
    inputs = {"cam0": tri.cam0, "cam1": tri.cam1,
              "reprojection_error": np.repeat(tri.reprojection_error[:, None], 2, axis=1),
              "valid": np.repeat(tri.valid[:, None], 2, axis=1),
              "R10": np.broadcast_to(rig.cam1_from_cam0.R, (count, 3, 3)).copy(),
              "t10": np.broadcast_to(rig.cam1_from_cam0.t, (count, 3)).copy()}
    truth = rig.cameras[0].world_to_camera(scene.joints.reshape(-1, joints, 3))
    return inputs, truth


def _mpjpe_mm(poses: np.ndarray, truth: np.ndarray) -> float:
    error = np.linalg.norm(poses - truth, axis=-1)
    return float(np.nanmean(error) * 1000.0)


def check_quantized(float_bytes: bytes, int8_bytes: bytes, layout: str) -> QuantizationCheck:
    """Both graphs (ONNX Runtime, CPU, fused views) on `check_scene(layout)` against its ground truth."""
    import onnxruntime as ort

    inputs, truth = check_scene(layout)
    feeds = {name: np.ascontiguousarray(inputs[name], dtype=np.bool_ if name == "valid" else np.float64)
             for name in INPUT_NAMES[:-1]}
    feeds["fuse"] = np.array(True)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    refined = [ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(
        [OUTPUT_NAMES[0]], feeds)[0] for model in (float_bytes, int8_bytes)]
    return QuantizationCheck(float_mpjpe_mm=_mpjpe_mm(refined[0], truth), int8_mpjpe_mm=_mpjpe_mm(refined[1], truth),
                             triangulation_mpjpe_mm=_mpjpe_mm(inputs["cam0"], truth),
                             max_diff_m=float(np.nanmax(np.abs(refined[1] - refined[0]))))


def quantize_checked(float_bytes: bytes, layout: str,
                     max_mpjpe_increase_mm: float = MAX_MPJPE_INCREASE_MM) -> tuple[bytes, QuantizationCheck]:
    """`quantize_int8` plus the accuracy check; ValueError when int8 costs more than `max_mpjpe_increase_mm`. The
    check's figures are stored in the returned model's metadata."""
    import onnx

    int8_bytes = quantize_int8(float_bytes)
    check = check_quantized(float_bytes, int8_bytes, layout)
    if not check.increase_mm <= max_mpjpe_increase_mm:
        raise ValueError(f"int8 weights raise the refined MPJPE from {check.float_mpjpe_mm:.2f} to "
                         f"{check.int8_mpjpe_mm:.2f} mm on the check scene (allowed +{max_mpjpe_increase_mm:g} mm)")
    proto = onnx.load_from_string(int8_bytes)
    entry = proto.metadata_props.add()
    entry.key = "cvpose.quantization"
    entry.value = json.dumps({"weights": "int8 per channel (ONNX Runtime dynamic quantisation)",
                              "float_mpjpe_mm": round(check.float_mpjpe_mm, 3),
                              "int8_mpjpe_mm": round(check.int8_mpjpe_mm, 3),
                              "triangulation_mpjpe_mm": round(check.triangulation_mpjpe_mm, 3),
                              "max_diff_m": round(check.max_diff_m, 5)})
    return proto.SerializeToString(), check

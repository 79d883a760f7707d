"""ONNX export and the ONNX Runtime refiner backend: same poses as torch (<= 1e-4 m), same bad-input behaviour,
metadata in the model, clear errors for files and devices it cannot use, and the cvpose-export CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
from tiny_checkpoint import make_tiny_checkpoint  # noqa: E402

from cvpose_ros.geometry.camera import CameraModel, RigidTransform  # noqa: E402
from cvpose_ros.geometry.triangulation import triangulate_pair  # noqa: E402
from cvpose_ros.model.backend import resolve_runtime, weights_metadata  # noqa: E402
from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, CheckpointError, load_checkpoint  # noqa: E402
from cvpose_ros.model.export_cli import main as export_main  # noqa: E402
from cvpose_ros.model.onnx_export import export_onnx, max_difference  # noqa: E402
from cvpose_ros.model.onnx_runtime import parse_device, providers_for  # noqa: E402
from cvpose_ros.refine.refiner import LayoutRefiners, Refiner  # noqa: E402

TOL = 1e-4  # metres


def frame(people: int = 4, seed: int = 0):
    """Noisy triangulations of random bodies (one person with joints missing in a view), and the transform."""
    rng = np.random.default_rng(seed)
    K = np.array([[1000.0, 0, 500], [0, 1000.0, 500], [0, 0, 1]])
    cam = CameraModel(K, np.array([-0.05, 0.01, 0, 0, 0]), "plumb_bob", 1000, 1000)
    world_to_0 = RigidTransform.look_at([4.0, 0, 1.5], [0, 0, 1.0])
    world_to_1 = RigidTransform.look_at([0, 4.0, 1.5], [0, 0, 1.0])
    world = rng.normal(scale=0.25, size=(people, 17, 3)) + [0.0, 0.0, 1.0]
    kp0 = cam.project(world_to_0.apply(world)) + rng.normal(scale=3.0, size=(people, 17, 2))
    kp1 = cam.project(world_to_1.apply(world)) + rng.normal(scale=3.0, size=(people, 17, 2))
    kp0[-1, [2, 9]] = np.nan
    conf = np.ones((people, 17))
    transform = world_to_1.compose(world_to_0.inverse())
    return triangulate_pair(cam, cam, transform, kp0, conf, kp1, conf), transform


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny h36m17 checkpoint whose refinement visibly moves joints, and its cvpose-export ONNX file."""
    folder = tmp_path_factory.mktemp("onnx")
    pt = make_tiny_checkpoint(folder / "tiny.pt", zero_residual=False, residual_std=0.05)
    assert export_main([str(pt), "-o", str(folder / "tiny.onnx")]) == 0
    return pt, folder / "tiny.onnx"


@pytest.mark.parametrize("fuse", [True, False])
def test_both_runtimes_give_the_same_poses(weights, fuse):
    pt, onnx_path = weights
    by_torch = Refiner(pt, device="cpu", fuse_views=fuse)
    by_onnx = Refiner(onnx_path, device="cpu", fuse_views=fuse)
    assert (by_torch.backend.runtime, by_onnx.backend.runtime) == ("torch", "onnxruntime")
    assert by_onnx.model is None and by_onnx.spec == by_torch.spec and by_onnx.layout == "h36m17"
    tri, transform = frame()
    expected, got = by_torch.refine(tri, transform), by_onnx.refine(tri, transform)
    moved = np.nanmean(np.linalg.norm(expected[0] - tri.cam0, axis=-1))
    assert moved > 1e-3  # the network does something, so agreement means something
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == np.float64 and g.shape == e.shape
        assert np.array_equal(np.isnan(g), np.isnan(e))
        assert max_difference(g, e) <= TOL
    # per-person transforms and (P, 2, J) residual/validity take the same path on both
    people = len(tri.cam0)
    args = (tri.cam0, tri.cam1, np.stack([tri.reprojection_error] * 2, 1), np.stack([tri.valid] * 2, 1),
            np.broadcast_to(transform.R, (people, 3, 3)), np.broadcast_to(transform.t, (people, 3)))
    for e, g in zip(by_torch.refine_arrays(*args), by_onnx.refine_arrays(*args), strict=True):
        assert max_difference(g, e) <= TOL


def test_a_difference_is_detected(weights):
    """The comparison is not vacuous: other weights give poses that differ by far more than the tolerance."""
    pt, onnx_path = weights
    other = make_tiny_checkpoint(pt.parent / "other.pt", zero_residual=False, seed=3, residual_std=0.05)
    tri, transform = frame()
    a = Refiner(onnx_path, device="cpu").refine(tri, transform)[0]
    b = Refiner(other, device="cpu").refine(tri, transform)[0]
    assert max_difference(a, b) > 100 * TOL


def test_onnxruntime_runs_torch_weights_exported_in_memory(weights):
    pt, _ = weights
    refiner = Refiner(pt, device="auto", runtime="onnxruntime", num_threads=1)
    assert refiner.backend.runtime == "onnxruntime" and "onnxruntime CPU" in refiner.reason
    assert refiner.device == torch.device("cpu")
    tri, transform = frame(1)
    expected = Refiner(pt, device="cpu").refine(tri, transform)[0]
    assert max_difference(refiner.refine(tri, transform)[0], expected) <= TOL


def test_model_carries_dynamic_batch_layout_and_features(weights, tmp_path):
    pt, onnx_path = weights
    proto = onnx.load(str(onnx_path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["cvpose.layout"] == "h36m17"
    assert json.loads(props["cvpose.features"]) == load_checkpoint(pt).spec.to_dict()
    check = json.loads(props["cvpose.export_check"])
    assert set(check["max_diff_m"]) == {"random batch 1", "random batch 5", "random batch 64", "realistic"}
    assert max(check["max_diff_m"].values()) <= TOL
    assert all(i.type.tensor_type.shape.dim[0].dim_param == "people" for i in proto.graph.input[:-1])
    assert weights_metadata(onnx_path)["layout"] == "h36m17"
    # a coco17 export serves coco17 frames in LayoutRefiners, next to the packaged h36m17 weights
    coco_pt = make_tiny_checkpoint(tmp_path / "coco.pt", zero_residual=False, layout="coco17", residual_std=0.05)
    assert export_main([str(coco_pt), "-o", str(tmp_path / "coco.onnx")]) == 0
    refiners = LayoutRefiners([tmp_path / "coco.onnx"], device="cpu")
    assert refiners.for_layout("coco17").backend.runtime == "onnxruntime"
    assert refiners.for_layout("h36m17").backend.runtime == "torch"


def test_bad_input_is_rejected_the_same_way(weights):
    pt, onnx_path = weights
    tri, transform = frame(2)
    bad_cases = [
        ((tri.cam0, tri.cam1[:1], tri.reprojection_error, tri.valid, transform.R, transform.t), "poses must"),
        ((tri.cam0, tri.cam1, tri.reprojection_error[:, :5], tri.valid, transform.R, transform.t),
         "reprojection_error must"),
        ((tri.cam0, tri.cam1, tri.reprojection_error, tri.valid[:1], transform.R, transform.t), "valid must"),
        ((tri.cam0, tri.cam1, tri.reprojection_error, tri.valid, np.eye(4), transform.t), "R10 must"),
        ((tri.cam0, tri.cam1, tri.reprojection_error, tri.valid, transform.R, np.zeros((3, 2))), "t10 must"),
    ]
    for refiner in (Refiner(pt, device="cpu"), Refiner(onnx_path, device="cpu")):
        for args, message in bad_cases:
            with pytest.raises(ValueError, match=message):
                refiner.refine_arrays(*args)
        empty = np.zeros((0, 17, 3))
        out = refiner.refine_arrays(empty, empty, np.zeros((0, 17)), np.zeros((0, 17), bool), np.eye(3), np.zeros(3))
        assert out[0].shape == (0, 17, 3)
        all_nan = np.full((1, 17, 3), np.nan)  # nothing triangulated: all NaN out, no exception
        out = refiner.refine_arrays(all_nan, all_nan, np.zeros((1, 17)), np.zeros((1, 17), bool), np.eye(3),
                                    np.zeros(3))
        assert np.isnan(out[0]).all() and np.isnan(out[1]).all()


def test_unusable_files_and_choices_raise_clear_errors(weights, tmp_path):
    pt, onnx_path = weights
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="corrupt.onnx"):
        Refiner(corrupt, device="cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        Refiner(tmp_path / "absent.onnx", device="cpu")
    foreign = onnx.load(str(onnx_path))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(CheckpointError, match="not written by cvpose-export"):
        Refiner(tmp_path / "foreign.onnx", device="cpu")
    with pytest.raises(ValueError, match="runtime 'torch' cannot run"):
        Refiner(onnx_path, runtime="torch")
    with pytest.raises(ValueError, match="unknown runtime"):
        resolve_runtime("tflite", pt)
    with pytest.raises(CheckpointError, match="expected 'coco17'"):
        Refiner(onnx_path, device="cpu", layout="coco17")
    with pytest.raises(ValueError, match="unknown device"):
        Refiner(onnx_path, device="gpu")


def test_provider_choice_follows_the_device():
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    gpu0 = {"device_id": 0}
    assert providers_for("auto", everything) == [("TensorrtExecutionProvider", gpu0), ("CUDAExecutionProvider", gpu0),
                                                 "CPUExecutionProvider"]
    assert providers_for("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert providers_for("cpu", everything) == ["CPUExecutionProvider"]
    assert providers_for("cuda:1", everything) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert providers_for("tensorrt", everything)[0] == ("TensorrtExecutionProvider", gpu0)
    with pytest.raises(ValueError, match="CUDAExecutionProvider"):
        providers_for("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="TensorrtExecutionProvider"):
        providers_for("tensorrt:0", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert parse_device("TensorRT:2") == ("tensorrt", 2)
    for bad in ("cpu:0", "cuda:x", "vulkan"):
        with pytest.raises(ValueError, match="unknown device"):
            parse_device(bad)


def test_shipped_weights_export_within_tolerance():
    """The packaged weights of both layouts on random and realistic inputs: ONNX Runtime == torch (<= 1e-4 m)."""
    for layout, path in DEFAULT_CHECKPOINTS.items():
        if not path.exists():
            continue
        result = export_onnx(load_checkpoint(path))
        assert max(result.max_diff_m.values()) <= TOL, (layout, result.max_diff_m)


def test_export_cli_fails_with_one_line_and_writes_nothing(weights, tmp_path):
    pt, _ = weights
    out = tmp_path / "strict.onnx"
    # a tolerance no float32 network can meet: the check must fail, and nothing is written
    proc = subprocess.run([sys.executable, "-m", "cvpose_ros.model.export_cli", str(pt), "-o", str(out),
                           "--tolerance", "1e-15"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().startswith("cvpose-export: error:") and "differ by" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    assert export_main([str(bad), "-o", str(tmp_path / "x.onnx")]) == 2
    assert export_main([str(pt), "-o", str(tmp_path / "x.bin")]) == 2
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "x.bin").exists()


def test_int8_export_of_the_shipped_weights_keeps_their_accuracy(tmp_path):
    """`cvpose-export --int8`: the quantised graph loads as a refiner, says so, keeps missing joints missing, and
    costs at most the default 1 mm of refined MPJPE on the check scene (stored in the model)."""
    out = tmp_path / "coco17_int8.onnx"
    assert export_main(["--layout", "coco17", "--int8", "-o", str(out)]) == 0
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    check = json.loads(metadata["cvpose.quantization"])
    assert check["int8_mpjpe_mm"] - check["float_mpjpe_mm"] <= 1.0
    assert check["int8_mpjpe_mm"] < check["triangulation_mpjpe_mm"]  # still a refinement
    assert metadata["cvpose.layout"] == "coco17"
    int8 = Refiner(out, device="cpu")
    assert int8.backend.quantized and int8.backend.where.endswith("int8") and int8.layout == "coco17"
    tri, transform = frame()
    by_float, _ = Refiner(DEFAULT_CHECKPOINTS["coco17"], device="cpu").refine(tri, transform)
    by_int8, _ = int8.refine(tri, transform)
    assert np.array_equal(np.isnan(by_int8), np.isnan(by_float))
    assert 0 < np.nanmax(np.abs(by_int8 - by_float)) < 0.05  # quantised: close, not equal
    assert not Refiner(DEFAULT_CHECKPOINTS["coco17"], device="cpu", runtime="onnxruntime").backend.quantized


def test_int8_export_is_refused_when_it_costs_too_much(weights, tmp_path):
    from cvpose_ros.model.onnx_quantize import quantize_checked

    pt, _ = weights
    float_bytes = export_onnx(load_checkpoint(pt)).model_bytes
    with pytest.raises(ValueError, match="int8 weights raise the refined MPJPE"):
        quantize_checked(float_bytes, "h36m17", max_mpjpe_increase_mm=-1e9)
    out = tmp_path / "x.onnx"
    assert export_main([str(pt), "--int8", "--max-mpjpe-increase", "-1", "-o", str(out)]) == 2
    assert not out.exists()

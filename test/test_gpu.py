"""GPU paths, run where CUDA is present (skipped elsewhere, CI included): the refiner on CUDA gives the CPU's poses
(<= 1e-4 m), `device: auto` takes the GPU, ONNX Runtime's CUDA provider agrees with torch when the build has it,
`cvpose-train --device cuda` trains and writes a checkpoint that loads on the CPU, and torchrun asking for more
CUDA ranks than GPUs fails with one clear line (NCCL with two ranks needs two GPUs: checked when there are)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

from test_distributed_training import TINY_MODEL, _train_command  # noqa: E402
from test_refiner_onnx import TOL, frame  # noqa: E402
from test_training_data import write_h36m_files  # noqa: E402

from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, load_checkpoint  # noqa: E402
from cvpose_ros.refine.refiner import Refiner  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    """The environment for child processes: this checkout importable even where the package is not installed."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("layout", ["h36m17", "coco17"])
def test_packaged_weights_on_cuda_give_the_cpu_poses(layout):
    tri, transform = frame(people=6)
    on_cpu = Refiner(DEFAULT_CHECKPOINTS[layout], device="cpu")
    on_gpu = Refiner(DEFAULT_CHECKPOINTS[layout], device="cuda")
    assert on_gpu.device.type == "cuda"
    for by_cpu, by_gpu in zip(on_cpu.refine(tri, transform), on_gpu.refine(tri, transform), strict=True):
        assert np.array_equal(np.isnan(by_gpu), np.isnan(by_cpu))  # missing joints stay missing, nothing else
        assert np.isfinite(by_gpu[:-1]).all()
        assert np.nanmax(np.abs(by_gpu - by_cpu)) <= TOL
    # a batch of one goes through the same path
    one, _ = on_gpu.refine(frame(people=1, seed=3)[0], transform)
    assert one.shape == (1, 17, 3) and np.isfinite(one).sum() == 15 * 3


def test_auto_device_takes_the_gpu():
    assert Refiner(DEFAULT_CHECKPOINTS["h36m17"], device="auto").device.type == "cuda"


def test_onnxruntime_cuda_provider_gives_the_torch_poses(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime build has no CUDA provider ({ort.get_available_providers()})")
    from cvpose_ros.model.export_cli import main as export_main

    onnx_path = tmp_path / "h36m17.onnx"
    assert export_main([str(DEFAULT_CHECKPOINTS["h36m17"]), "-o", str(onnx_path)]) == 0
    tri, transform = frame(people=6)
    by_torch, _ = Refiner(DEFAULT_CHECKPOINTS["h36m17"], device="cuda").refine(tri, transform)
    by_onnx = Refiner(onnx_path, device="cuda")
    assert "CUDA" in by_onnx.backend.where
    assert np.nanmax(np.abs(by_onnx.refine(tri, transform)[0] - by_torch)) <= TOL


def _tiny_config(tmp_path: Path) -> Path:
    (tmp_path / "h36m").mkdir()
    path3d, path2d = write_h36m_files(tmp_path / "h36m", subjects=("S1", "S9"), frames=16)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"h36m_3d: {path3d}\nh36m_2d: {path2d}\nh36m_subjects: [S1]\nh36m_val_subjects: [S9]\n"
                      f"h36m_stride: 1\nsamples_per_epoch: 64\nbatch_size: 16\nw_supervised: 1.0\n")
    return config


def test_training_on_cuda_writes_a_checkpoint_that_loads_on_the_cpu(tmp_path):
    config, out = _tiny_config(tmp_path), tmp_path / "run"
    command = [sys.executable, *_train_command(), "--config", str(config), "--epochs", "2", "--out-dir", str(out),
               "--device", "cuda", "--progress", "off", *TINY_MODEL]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training on cuda" in proc.stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(np.isfinite(r["train"]["loss"]) for r in records)
    model = load_checkpoint(out / "last.pt").model
    assert all(p.device.type == "cpu" for p in model.parameters())


def _torchrun(tmp_path: Path, ranks: int) -> subprocess.CompletedProcess:
    config, out = _tiny_config(tmp_path), tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
               *_train_command(), "--config", str(config), "--epochs", "2", "--out-dir", str(out), "--device", "cuda",
               "--progress", "off", *TINY_MODEL]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env(), cwd=tmp_path)


def test_torchrun_with_more_cuda_ranks_than_gpus_fails_with_one_clear_line(tmp_path):
    ranks = torch.cuda.device_count() + 1
    proc = _torchrun(tmp_path, ranks)
    assert proc.returncode != 0
    assert f"only {torch.cuda.device_count()} CUDA device(s)" in proc.stderr + proc.stdout


def test_torchrun_two_nccl_ranks_train_one_model(tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip("NCCL with two ranks needs two GPUs (NCCL refuses two ranks on one device)")
    proc = _torchrun(tmp_path, 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("(world 2)") == 1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["world_size"] == 2 and r["rank_max_difference"] == 0.0 for r in records)


def test_n_camera_pipeline_on_cuda_gives_the_cpu_skeletons():
    """Four cameras (issue 14): every person refined on their best pair in one batch with one camera transform per
    person; CUDA and CPU agree (guard off: its discrete steps could turn a 1e-6 m difference into a different step)."""
    from test_nview import rig_setup, view_input

    from cvpose_ros.devtools.synthetic import corner_rig, generate_scene, project_scene
    from cvpose_ros.pipeline.frame_processor import SkeletonPipeline
    from cvpose_ros.refine.guard import EvidenceGuard
    from cvpose_ros.refine.refiner import LayoutRefiners

    rig = corner_rig(4)
    scene = generate_scene(4, 0.5, 30.0, seed=2)
    views = project_scene(scene, rig, "detector", seed=1)
    setup = rig_setup(rig)
    results = []
    for device in ("cpu", "cuda"):
        pipe = SkeletonPipeline(LayoutRefiners([], device), guard=EvidenceGuard(enabled=False))
        results.append([pipe.process_views(setup, [view_input(v, t) for v in views]).refined.joints
                        for t in range(scene.num_frames)])
    for by_cpu, by_gpu in zip(*results, strict=True):
        assert by_cpu.shape == by_gpu.shape and len(by_cpu) >= 3
        assert np.array_equal(np.isnan(by_gpu), np.isnan(by_cpu))
        assert np.nanmax(np.abs(by_gpu - by_cpu)) <= TOL

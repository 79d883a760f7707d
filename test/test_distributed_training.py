"""Distributed training really runs: `torchrun --nproc_per_node 2 cvpose-train` on the CPU (gloo), a few seconds of
work on tiny synthetic Human3.6M-format files; the ranks end with identical weights and only rank 0 writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_training_data import write_h36m_files

from cvpose_ros.model.checkpoint import load_checkpoint
from training.train import ConfigError, _distributed

TINY_MODEL = ["--view-channels", "8", "--joint-channels", "16", "--part-channels", "16", "--decoder-channels", "8"]


def _train_command() -> list[str]:
    """The installed console script when there is one (as a user runs it), else the module."""
    script = shutil.which("cvpose-train", path=str(Path(sys.executable).parent))
    return [script] if script else ["-m", "training.train"]


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_train_one_model(tmp_path):
    (tmp_path / "h36m").mkdir()
    path3d, path2d = write_h36m_files(tmp_path / "h36m", subjects=("S1", "S9"), frames=16)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"h36m_3d: {path3d}\nh36m_2d: {path2d}\nh36m_subjects: [S1]\nh36m_val_subjects: [S9]\n"
                      f"h36m_stride: 1\nsamples_per_epoch: 64\nbatch_size: 16\nw_supervised: 1.0\n")
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *_train_command(), "--config", str(config), "--epochs", "2", "--out-dir", str(out), "--device", "cpu",
               "--threads", "1", "--progress", "off", *TINY_MODEL]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("training on cpu (world 2)") == 1  # only rank 0 logs
    assert proc.stdout.count("epoch 2:") == 1
    # only rank 0 writes: one set of files, one metrics line per epoch
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "last_state.pt", "metrics.jsonl"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert record["world_size"] == 2 and record["samples"] == 64
        assert record["rank_max_difference"] == 0.0  # every weight and BatchNorm statistic equal on both ranks
        assert record["train"]["loss"] > 0
    # the checkpoint is a normal, loadable one that training changed from its start
    trained = load_checkpoint(out / "last.pt").model
    torch.manual_seed(0)
    assert any(not torch.equal(p, q) for p, q in zip(trained.state_dict().values(),
                                                     type(trained)(trained.config).state_dict().values(),
                                                     strict=True))


def test_cuda_asked_under_torchrun_without_cuda_is_a_clear_error(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        _distributed("cuda")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert _distributed("cuda") == (0, 1, None)  # single process: the device check happens elsewhere

"""cvpose-train and cvpose-eval end to end on tiny Human3.6M-format files (console scripts as subprocesses)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training_data import write_h36m_files

from cvpose_ros.body.skeleton import H36M17
from cvpose_ros.devtools.synthetic import generate_scene
from training.evaluate import main as eval_main
from training.train import TrainConfig, train
from training.train import main as train_main

BIN = Path(sys.executable).parent
TINY_MODEL = ["--view-channels", "8", "--joint-channels", "16", "--part-channels", "16", "--decoder-channels", "8"]


def _script(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    if found is None:
        pytest.skip(f"console script {name} is not installed in {BIN}")
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory):
    return write_h36m_files(tmp_path_factory.mktemp("h36m"), subjects=("S1", "S9"), frames=16)


@pytest.fixture(scope="module")
def trained(h36m_files, tmp_path_factory):
    """One tiny training run from a YAML config plus command-line overrides."""
    path3d, path2d = h36m_files
    out = tmp_path_factory.mktemp("run")
    config = out / "tiny.yaml"
    config.write_text(f"h36m_3d: {path3d}\nh36m_2d: {path2d}\nh36m_subjects: [S1]\nh36m_val_subjects: [S9]\n"
                      f"h36m_stride: 1\nsamples_per_epoch: 64\nbatch_size: 32\nepochs: 5\nw_supervised: 1.0\n")
    result = _run(_script("cvpose-train"), "--config", str(config), "--epochs", "1", "--out-dir", str(out / "o"),
                  "--threads", "1", *TINY_MODEL)
    assert result.returncode == 0, result.stderr
    return out / "o", config


def test_train_writes_checkpoints_and_metrics(trained):
    out, _ = trained
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # --epochs 1 on the command line overrides the YAML's 5
    record = json.loads(lines[0])
    assert record["epoch"] == 1 and record["samples"] == 64
    assert np.isfinite(record["train"]["loss"]) and record["train"]["supervised"] > 0
    val = record["val"]["h36m"]
    assert val["tri_mpjpe_mm"] < 2.0  # exact 2D triangulates to the ground truth


def test_resume_continues_the_run(trained):
    out, config = trained
    result = _run(_script("cvpose-train"), "--config", str(config), "--epochs", "2", "--out-dir", str(out),
                  "--threads", "1", "--resume", *TINY_MODEL)
    assert result.returncode == 0, result.stderr
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_eval_h36m_mode_json(trained, h36m_files, tmp_path):
    out, _ = trained
    path3d, path2d = h36m_files
    report_path = tmp_path / "eval.json"
    result = _run(_script("cvpose-eval"), "--data-3d", str(path3d), "--data-2d", str(path2d), "--subjects", "S9",
                  "--pairs", "0-1,2-3", "--checkpoint", str(out / "best.pt"), "--json", str(report_path))
    assert result.returncode == 0, result.stderr
    assert "per action" in result.stdout and "per pair" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["frames"] == 2 * 2 * 16  # 2 actions x 2 pairs x 16 frames
    assert report["triangulation"]["mpjpe_mm"] < 2.0 and report["triangulation"]["pmpjpe_mm"] < 2.0
    assert np.isfinite(report["refined"]["mpjpe_mm"]) and np.isfinite(report["refined"]["pmpjpe_mm"])
    assert set(report["per_pair"]) == {"0-1", "2-3"} and set(report["per_action"]) == {"Walking", "Sitting"}
    assert report["per_pair"]["0-1"]["frames"] == 32


def test_eval_motion_mode(trained, tmp_path):
    out, _ = trained
    scene = generate_scene(num_people=2, duration_s=3, fps=10, seed=4)
    np.savez(tmp_path / "m.npz", joint_names=np.array(H36M17.joint_names),
             **{f"s{p}": (scene.joints[:, p] * 1000).astype(np.float32) for p in range(2)})
    result = _run(_script("cvpose-eval"), "--motion", str(tmp_path / "m.npz"), "--rig", "wide,narrow", "--noise",
                  "clean,cpn_like", "--samples", "20", "--checkpoint", str(out / "best.pt"), "--json",
                  str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    assert set(report["per_setting"]) == {"wide/clean", "wide/cpn_like", "narrow/clean", "narrow/cpn_like"}
    assert report["per_setting"]["wide/clean"]["triangulation"]["mpjpe_mm"] < 1.0
    assert report["per_setting"]["wide/cpn_like"]["triangulation"]["mpjpe_mm"] > 5.0


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "zero"], "option epochs"),
    (["--procedural-sequences", "1", "--batch-size", "0"], "batch_size must be >= 1"),
    (["--motion", "does_not_exist.npz"], "file not found"),
    (["--procedural-sequences", "1", "--noise-mix", "clean=-1"], "noise_mix needs non-negative weights"),
    ([], "no training data"),
])
def test_bad_train_config_exits_with_one_line(tmp_path, capsys, argv, message):
    assert train_main(["--out-dir", str(tmp_path / "o"), *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("cvpose-train: error:")


def test_bad_yaml_and_bad_eval_input(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    result = _run(_script("cvpose-train"), "--config", str(bad))  # the installed console script, once
    assert result.returncode == 2 and "unknown option(s) ['epochz']" in result.stderr
    assert eval_main(["--data-3d", str(tmp_path / "missing.npz"), "--checkpoint", str(bad)]) == 2
    assert eval_main(["--motion", "a.npz", "--data-3d", "b.npz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("cvpose-eval: error:") for line in err)
    assert "exactly one of" in err[1]


def test_train_from_python_with_sources_and_init(trained, h36m_files, tmp_path):
    """The entry point for robot-bag fine-tuning: in-memory samples plus a starting checkpoint."""
    from training.data.h36m import load_h36m

    out, _ = trained
    samples = load_h36m(*h36m_files, subjects=("S1",)).samples
    config = TrainConfig(samples_per_epoch=32, batch_size=16, epochs=1, out_dir=str(tmp_path / "ft"), threads=1)
    best = train(config, sources=[samples], init=out / "best.pt")
    assert best.is_file()
    state = torch.load(best, map_location="cpu", weights_only=False)
    assert state["metadata"]["model"]["view_channels"] == 8  # the init checkpoint's architecture is kept

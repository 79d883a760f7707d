"""Training throughput of `cvpose-train` per device: samples/s of the same short run (procedural motion, the shipped
model width) on the CPU and on CUDA when present, and the ratio against the CPU measured by this script.

Each device runs one `cvpose-train` child with identical settings (2 epochs; the second epoch's samples/s is
reported, the first pays for start-up); the figures come from the run's metrics.jsonl.

    python bench/bench_training.py [--devices cpu cuda] [--samples 4000] [--batch-size 256] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = """procedural_sequences: 8
procedural_fraction: 1.0
samples_per_epoch: {samples}
val_samples: 200
batch_size: {batch}
rig_mix: {{h36m: 0.5, random: 0.5}}
noise_mix: {{cpn_like: 0.5, detector: 0.5}}
view_channels: 64
joint_channels: 128
part_channels: 256
decoder_channels: 128
use_reprojection_error: true
use_validity: true
w_supervised: 1.0
w_reprojection: 0.1
"""


def train_rate(device: str, samples: int, batch: int, folder: Path) -> dict:
    """samples/s of each epoch of a 2-epoch cvpose-train run on `device`."""
    config = folder / "bench.yaml"
    config.write_text(CONFIG.format(samples=samples, batch=batch))
    script = shutil.which("cvpose-train", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "training.train"]
    out = folder / f"run_{device}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([*command, "--config", str(config), "--epochs", "2", "--out-dir", str(out), "--device",
                           device, "--progress", "off"], capture_output=True, text=True, env=env, cwd=folder)
    if proc.returncode != 0:
        raise SystemExit(f"cvpose-train on {device} failed: {proc.stderr.strip().splitlines()[-1:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"device": device, "samples_per_s": [r["train"]["samples_per_s"] for r in records]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--samples", type=int, default=4000, help="samples per epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, torch "
          f"{torch.__version__}, GPU: {gpu}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            rows.append(train_rate(device, args.samples, args.batch_size, Path(tmp)))
            print(f"{device:>6}: {rows[-1]['samples_per_s'][-1]:8.0f} samples/s (epoch 1: "
                  f"{rows[-1]['samples_per_s'][0]:.0f})", flush=True)
    base = rows[0]["samples_per_s"][-1]
    for row in rows[1:]:
        row["vs_first"] = row["samples_per_s"][-1] / base
        print(f"{row['device']} vs {rows[0]['device']}: {row['vs_first']:.2f} x")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

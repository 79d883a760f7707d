"""The set-up is idempotent: a second run of scripts/bootstrap.sh on a ready venv installs and builds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def test_second_bootstrap_rebuilds_nothing() -> None:
    if not (VENV / ".cvpose_stamps").is_dir():
        pytest.skip("not running in a venv made by scripts/bootstrap.sh")
    stamps = {p.name: p.read_text() for p in (VENV / ".cvpose_stamps").iterdir()}
    build_dir = VENV / ".build" / "cvpose_ros_msgs"
    before = build_dir.stat().st_mtime_ns if build_dir.exists() else None
    env = dict(os.environ, CVPOSE_VENV=str(VENV))
    result = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.sh"), "--dev"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [line for line in result.stdout.splitlines() if line.startswith("[bootstrap]")]
    assert steps == [f"[bootstrap] environment ready: {VENV}"], steps
    assert {p.name: p.read_text() for p in (VENV / ".cvpose_stamps").iterdir()} == stamps
    if before is not None:
        assert build_dir.stat().st_mtime_ns == before

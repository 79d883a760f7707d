"""The path a ROS user takes: `colcon build --paths <repo> <repo>/msg` builds both packages into an install space
where `ros2 run` finds the executables and the launch/config files are installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


@pytest.mark.slow
def test_colcon_builds_both_packages(tmp_path: Path) -> None:
    colcon = shutil.which("colcon", path=str(VENV / "bin"))
    if colcon is None:
        pytest.skip("colcon is not installed (requirements-dev.txt installs it)")
    src = tmp_path / "src"
    # Copy the tracked tree only (no venv, no build outputs), as a clone would have it.
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    env = dict(os.environ, CMAKE_PREFIX_PATH=str(VENV), AMENT_PREFIX_PATH=str(VENV),
               PATH=f"{VENV / 'bin'}:{os.environ['PATH']}")
    result = subprocess.run(
        [colcon, "build", "--paths", str(src), str(src / "msg"),
         "--cmake-args", f"-DPython3_EXECUTABLE={VENV / 'bin' / 'python'}", "-DBUILD_TESTING=OFF"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    install = tmp_path / "install"
    for exe in ("refiner_node", "detector_node", "scene_publisher"):
        assert (install / "cvpose_ros" / "lib" / "cvpose_ros" / exe).is_file(), exe
    share = install / "cvpose_ros" / "share" / "cvpose_ros"
    assert (share / "package.xml").is_file()
    assert list((share / "launch").glob("*.launch.py")), "launch files are not installed"
    assert (share / "config" / "refiner.yaml").is_file()
    assert (share / "config" / "fastdds_images.xml").is_file(), "the DDS profile for images is not installed"
    marker = install / "cvpose_ros_msgs" / "share" / "ament_index" / "resource_index" / "packages" / "cvpose_ros_msgs"
    assert marker.is_file()
    # The generated Python messages import from the install space.
    probe = subprocess.run(
        ["bash", "-c", f"source {install}/setup.bash && cd {tmp_path} && "
         f"{VENV / 'bin' / 'python'} -c 'import cvpose_ros_msgs.msg as m, cvpose_ros_msgs; "
         "print(m.Skeleton3DArray.__name__, cvpose_ros_msgs.__file__)'"],
        env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert str(install) in probe.stdout

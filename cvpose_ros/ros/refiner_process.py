"""Run `refiner_node` in a child process with a parameter file, as a robot would (used by the demo).

The demo then exercises the node exactly as deployed: its console entry point, a YAML parameter file, its own
interpreter (and core), DDS between processes. The node's output goes to a log file next to the parameters.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml


class RefinerProcess:
    """`python -m cvpose_ros.ros.refiner_node --ros-args --params-file <folder>/refiner_params.yaml`."""

    def __init__(self, parameters: dict, folder: str | Path, torch_threads: int = 1) -> None:
        folder = Path(folder)
        self.params_file = folder / "refiner_params.yaml"
        self.log_file = folder / "refiner_node.log"
        self.params_file.write_text(yaml.safe_dump({"refiner_node": {"ros__parameters": parameters}}))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if torch_threads > 0:
            env["OMP_NUM_THREADS"] = str(torch_threads)  # torch's default intra-op thread count
        self._log = open(self.log_file, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cvpose_ros.ros.refiner_node", "--ros-args", "--params-file",
             str(self.params_file)], stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def failure(self) -> str:
        """The last line the node printed (why it exited)."""
        lines = [ln for ln in self.log_file.read_text().splitlines() if ln.strip()] if self.log_file.exists() else []
        return lines[-1] if lines else f"refiner_node exited with status {self.proc.returncode}"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ctrl-C the node (clean rclpy shutdown), kill it if it does not exit in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

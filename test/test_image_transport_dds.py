"""Issue 18: camera images across processes, through the real detector node, over real DDS (Fast DDS).

A camera process (`python -m cvpose_ros.ros.image_source`) publishes synthetic images and camera_info at 30 Hz; a
detector process (`python -m cvpose_ros.ros.detector_node`, a tiny ONNX model made here) receives them; this
process only listens to the detector's /diagnostics and keypoints (small messages). Both child processes start the
way a user starts them, so they adopt the package's DDS profile unless FASTDDS_DEFAULT_PROFILES_FILE is set:
setting it to a file without settings gives Fast DDS's defaults, the lossy set-up the issue measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("cvpose_ros_msgs.msg")
pytest.importorskip("onnxruntime")
from cvpose_ros_msgs.msg import Keypoints2D  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from cvpose_ros.detection.synthetic_models import simcc_probe_model  # noqa: E402
from cvpose_ros.ros.dds_profile import LEGACY_PROFILE_ENV, PROFILE_ENV, shipped_profile  # noqa: E402

pytestmark = pytest.mark.slow
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
FASTDDS_DEFAULTS = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com"><profiles>
  <participant profile_name="fastdds_defaults" is_default_profile="true"><rtps/></participant>
</profiles></dds>
"""


def child_env(profile: str | None) -> dict[str, str]:
    """The test's environment for a child: no profile variable (the package's applies) or the given file."""
    env = {k: v for k, v in os.environ.items() if k not in (PROFILE_ENV, LEGACY_PROFILE_ENV)}
    env["PYTHONUNBUFFERED"] = "1"
    if profile is not None:
        env[PROFILE_ENV] = profile
    return env


class Run:
    """One camera process and one detector process in namespace `ns`; this process records what comes back."""

    def __init__(self, tmp_path: Path, ns: str, env: dict[str, str], detector_params: dict[str, object]) -> None:
        self.ns = ns
        self.tmp_path = tmp_path
        self.env = env
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("image_transport_tester", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.statuses: list[tuple[float, DiagnosticStatus]] = []
        self.keypoints: list[Keypoints2D] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        self.node.create_subscription(Keypoints2D, f"/{ns}/keypoints", self.keypoints.append, RELIABLE)
        model = simcc_probe_model(tmp_path / "probe.onnx")
        params = {"backend": "onnx", "model_path": str(model), "diagnostics_period": 0.5, **detector_params}
        args = [a for name, value in params.items() for a in ("-p", f"{name}:={value}")]
        self.detector_log = open(tmp_path / f"{ns}_detector.log", "w")  # noqa: SIM115 - closed in close()
        self.detector = subprocess.Popen(
            [sys.executable, "-m", "cvpose_ros.ros.detector_node", "--ros-args", "-r", f"__ns:=/{ns}",
             "-r", "image:=image_raw", "-r", "image/compressed:=image_raw/compressed", *args],
            env=env, stdout=self.detector_log, stderr=subprocess.STDOUT)
        self.camera: subprocess.Popen | None = None
        self.camera_started = 0.0     # when the camera process started streaming (its first JSON line)
        self.camera_lines: list[str] = []

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f"/{self.ns}/detector"):
                self.statuses.append((time.monotonic(), status))

    def spin_until(self, condition, timeout_s: float, message: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{message}; detector log:\n{self.log_tail()}")
            self.executor.spin_once(timeout_sec=0.05)

    def log_tail(self) -> str:
        self.detector_log.flush()
        return (self.tmp_path / f"{self.ns}_detector.log").read_text()[-3000:]

    def start_camera(self, size: str, seconds: float, *extra: str) -> None:
        # the detector is up once it reports; then the camera waits for its subscription and streams
        self.spin_until(lambda: self.statuses, 90.0, "the detector never published /diagnostics")
        self.camera_started, self.camera_lines = 0.0, []
        self.camera = subprocess.Popen(
            [sys.executable, "-m", "cvpose_ros.ros.image_source", "--size", size, "--seconds", str(seconds),
             "--rate", "30", "--namespaces", self.ns, "--wait-subscribers", "1", "--wait-timeout", "60", *extra],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read_camera, daemon=True).start()
        self.spin_until(lambda: self.camera_started > 0 or self.camera.poll() is not None, 90.0,
                        "the camera never started streaming")
        assert self.camera_started > 0, "".join(self.camera_lines)

    def stream(self, size: str, *extra: str) -> tuple[int, int, float]:
        """Stream 3 s (90 images) and return (sent, received by the detector, when the stream started)."""
        before = int(self.values(self.statuses[-1][1])["frames_received"]) if self.statuses else 0
        self.start_camera(size, 3.0, *extra)
        sent = self.camera_summary()["sent_per_camera"]

        def received() -> int:
            return int(self.values(self.statuses[-1][1])["frames_received"]) - before

        # settled: a fresh report with at least 95%, or 3 s after the camera stopped
        settle = time.monotonic() + 3.0
        self.spin_until(lambda: (received() >= 0.95 * sent and time.monotonic() - self.statuses[-1][0] < 1.0)
                        or time.monotonic() > settle, 20.0, "no diagnostics from the detector")
        return sent, received(), self.camera_started

    def _read_camera(self) -> None:
        for line in self.camera.stdout:
            if line.startswith('{"streaming"'):
                self.camera_started = time.monotonic()
            self.camera_lines.append(line)

    def camera_summary(self, timeout_s: float = 120.0) -> dict:
        assert self.camera is not None
        self.spin_until(lambda: self.camera.poll() is not None, timeout_s, "the camera process did not finish")
        time.sleep(0.2)  # the reader thread takes the last line
        assert self.camera.returncode == 0, "".join(self.camera_lines)
        return json.loads(self.camera_lines[-1])

    def values(self, status: DiagnosticStatus) -> dict[str, str]:
        return {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        for proc in (self.camera, self.detector):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.detector_log.close()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture()
def runs():
    started: list[Run] = []
    yield started
    for run in started:
        run.close()


def test_the_profile_is_shipped_and_valid():
    path = shipped_profile()
    assert path is not None and path.name == "fastdds_images.xml"
    text = path.read_text()
    assert "<segment_size>33554432</segment_size>" in text and text.count("4194304") >= 4
    assert 'is_default_profile="true"' in text


@pytest.mark.parametrize(("size", "extra", "params"), [
    ("1280x720", (), {}),                                                           # sensor-data (best effort)
    ("1280x720", ("--reliability", "reliable"), {}),                                # a reliable driver
    ("1920x1080", ("--compressed",), {"use_compressed": True}),                     # JPEG
])
def test_images_arrive_with_the_shipped_profile(tmp_path, runs, size, extra, params):
    """>= 95% of the camera's images reach the detector and become keypoints; /diagnostics says OK.

    The detector's history depth is raised to 10 so that a test machine busy with other jobs, which can stall the
    detector's executor for a few frame periods, does not turn into reader-side drops: the transport is tested.
    (1920x1080 raw, best effort and reliable, is measured by bench/bench_images.py: on an oversubscribed 2-core CI
    machine a reliable KEEP_LAST writer drops unacknowledged 6 MB samples while the reader is starved.)"""
    params = {"queue_depth": 10, **params}
    ns = f"t18_ok_{os.getpid()}_{len(extra)}_{size}"
    run = Run(tmp_path, ns, child_env(None), params)
    runs.append(run)
    attempts = []
    for _ in range(2):  # a second stream only when an oversubscribed machine starved the first (see above)
        attempts.append(run.stream(size, *extra))
        if attempts[-1][1] >= 0.95 * attempts[-1][0]:
            break
    sent, received, started = attempts[-1]
    assert sent == 90 and received >= 0.95 * sent, \
        f"images lost with the profile: {attempts}; detector log:\n{run.log_tail()}"
    assert received <= sent
    values = run.values(run.statuses[-1][1])
    assert values["dds_profile"].endswith("fastdds_images.xml")

    def accounted() -> bool:
        """Every arrived image became keypoints or was replaced while the detector was busy (and counted)."""
        now = run.values(run.statuses[-1][1])
        published = int(now["frames_published"])
        return published + int(now["busy_dropped_total"]) == int(now["frames_received"]) \
            and len(run.keypoints) == published

    run.spin_until(accounted, 30.0, "arrived images unaccounted for")
    # while the good stream ran, the detector measured a received fraction near 1 against camera_info
    during = [run.values(s) for t, s in run.statuses if t > started + 1.5 and s.message != "no images received yet"]
    assert any(v.get("rate_source") == "camera_info" and float(v["received_fraction"]) >= 0.95 for v in during), [
        {k: v for k, v in d.items() if k in ("frames_received", "images_in_window", "images_expected",
                                             "received_fraction", "rate_source")} for d in during]


def test_lost_images_raise_a_warning_with_the_hint(tmp_path, runs):
    """Fast DDS's defaults (both processes) lose most 1280x720 images: WARN (or ERROR) within 5 s, with the hint.

    This is also the check that the shipped profile is what makes the test above pass."""
    defaults = tmp_path / "fastdds_defaults.xml"
    defaults.write_text(FASTDDS_DEFAULTS)
    ns = f"t18_lossy_{os.getpid()}"
    run = Run(tmp_path, ns, child_env(str(defaults)), {})
    runs.append(run)
    run.start_camera("1280x720", 6.0)

    def warned() -> bool:
        return any(s.level[0] >= DiagnosticStatus.WARN[0] and "fastdds_images.xml" in s.message
                   for t, s in run.statuses if t > run.camera_started)

    run.spin_until(lambda: warned() or run.camera.poll() is not None, 60.0, "camera never finished")
    assert warned(), [s.message for _, s in run.statuses]
    first_warning = min(t for t, s in run.statuses if t > run.camera_started and "fastdds_images.xml" in s.message)
    status = next(s for t, s in run.statuses if t == first_warning)
    values = run.values(status)
    assert values["dds_profile"] == str(defaults)  # the user's choice was kept
    assert float(values["received_fraction"]) < 0.9 or values["images_in_window"] == "0"
    summary = run.camera_summary()
    assert summary["dds_profile"] == str(defaults)
    # within 5 s of the camera starting to stream (it starts once it sees the detector's subscription)
    assert first_warning - run.camera_started < 5.0, f"warning after {first_warning - run.camera_started:.1f} s"

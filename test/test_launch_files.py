"""Issue 12: the launch files run for real where `launch`/`launch_ros` are installed (a ROS 2 install; there are
no wheels of them for the pip venv, so this module skips there).

The package is laid out as an ament prefix in a temporary folder (share/ with the launch and config files, lib/
with the console scripts), the launch file runs under `launch.LaunchService` in a child process, and the test
looks at the running graph over DDS: two namespaced rigs side by side, the camera-pose launch arguments, a live
parameter set, and pipeline.launch.py's `params_file`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("launch")
pytest.importorskip("launch_ros")
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.parameter import Parameter, parameter_value_to_python  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUNNER = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService()
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]),
    launch_arguments=[tuple(a.split(":=", 1)) for a in sys.argv[2:]]))
sys.exit(service.run())
"""
RIG_YAML = """/**:
  ros__parameters:
    refine: false
    cam1:
      translation: [{x}, 0.0, 0.0]
"""


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    """An ament prefix holding cvpose_ros: what colcon would install, made of links to this checkout."""
    root = tmp_path_factory.mktemp("ament_prefix")
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "cvpose_ros").write_text("")
    share = root / "share" / "cvpose_ros"
    share.mkdir()
    for folder in ("launch", "config"):
        (share / folder).symlink_to(REPO / folder)
    lib = root / "lib" / "cvpose_ros"
    lib.mkdir(parents=True)
    for script in ("refiner_node", "managed_refiner_node", "detector_node"):
        found = shutil.which(script, path=str(Path(sys.executable).parent))
        if found:
            (lib / script).symlink_to(found)
    return root


class Launched:
    """A launch file running in a child process, and a node of ours watching the graph."""

    def __init__(self, prefix: Path, launch_file: str, *arguments: str) -> None:
        env = {**os.environ, "AMENT_PREFIX_PATH": f"{prefix}{os.pathsep}{os.environ.get('AMENT_PREFIX_PATH', '')}"}
        self.process = subprocess.Popen([sys.executable, "-c", RUNNER, str(REPO / "launch" / launch_file),
                                         *arguments], env=env, start_new_session=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("launch_test_probe", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)

    def spin_until(self, condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise TimeoutError(f"{what}; launch output:\n{self.output()}")
            self.executor.spin_once(timeout_sec=0.05)

    def nodes(self) -> set[str]:
        return {ns.rstrip("/") + "/" + name for name, ns in self.node.get_node_names_and_namespaces()}

    def status_names(self) -> set[str]:
        return {s.name for m in self.diagnostics for s in m.status}

    def parameters(self, node: str, *names: str) -> list:
        client = AsyncParameterClient(self.node, node)
        self.spin_until(client.services_are_ready, 20.0, f"parameter services of {node}")
        future = client.get_parameters(list(names))
        self.spin_until(future.done, 10.0, "get_parameters")
        return [parameter_value_to_python(v) for v in future.result().values]

    def set_parameter(self, node: str, name: str, value):
        client = AsyncParameterClient(self.node, node)
        self.spin_until(client.services_are_ready, 20.0, f"parameter services of {node}")
        future = client.set_parameters([Parameter(name, value=value)])
        self.spin_until(future.done, 10.0, "set_parameters")
        return future.result().results[0]

    def output(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stdout.read()[-4000:]

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def test_two_rigs_run_side_by_side(prefix, tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(RIG_YAML.format(x=0.5))
    b.write_text(RIG_YAML.format(x=0.8))
    run = Launched(prefix, "two_rigs.launch.py", f"rig_a_params:={a}", f"rig_b_params:={b}")
    try:
        run.spin_until(lambda: {"/rig_a/refiner_node", "/rig_b/refiner_node"} <= run.nodes(), 60.0, "both nodes")
        run.spin_until(lambda: {"rig_a/cvpose_refiner: pipeline", "rig_b/cvpose_refiner: pipeline"}
                       <= run.status_names(), 20.0, "both diagnostics statuses")
        assert run.parameters("/rig_a/refiner_node", "cam1.translation") == [[0.5, 0.0, 0.0]]
        assert run.parameters("/rig_b/refiner_node", "cam1.translation") == [[0.8, 0.0, 0.0]]
    finally:
        run.close()


def test_camera_pose_arguments_name_and_live_parameters(prefix):
    run = Launched(prefix, "cvpose.launch.py", "namespace:=lab", "name:=skeletons3d",
                   'cam1_translation:=[0.6, 0.0, 0.1]', 'cam1_rotation:=[0.0, 0.0, 0.0, 1.0]')
    try:
        run.spin_until(lambda: "/lab/skeletons3d" in run.nodes(), 60.0, "the named node")
        assert run.parameters("/lab/skeletons3d", "cam1.translation") == [[0.6, 0.0, 0.1]]
        assert not run.set_parameter("/lab/skeletons3d", "min_confidence", 2.0).successful
        assert run.set_parameter("/lab/skeletons3d", "min_confidence", 0.4).successful
        assert run.parameters("/lab/skeletons3d", "min_confidence") == [0.4]
    finally:
        run.close()


def test_pipeline_params_file_reaches_the_refiner(prefix, tmp_path):
    params = tmp_path / "rig.yaml"
    params.write_text(RIG_YAML.format(x=0.7))
    run = Launched(prefix, "pipeline.launch.py", f"params_file:={params}", "namespace:=pipe")
    try:
        run.spin_until(lambda: "/pipe/refiner_node" in run.nodes(), 60.0, "the refiner of the pipeline")
        assert run.parameters("/pipe/refiner_node", "cam1.translation") == [[0.7, 0.0, 0.0]]
    finally:
        run.close()


THREE_CAMERAS_YAML = """/**:
  ros__parameters:
    refine: false
    cameras: [cam0, cam1, cam2]
    cam1:
      translation: [0.5, 0.0, 0.0]
    cam2:
      translation: [0.0, 0.5, 0.0]
"""


def test_the_cameras_argument_runs_the_refiner_with_every_camera(prefix, tmp_path):
    """Issue 14: `cameras` reaches the refiner: cam<i> topics remapped to the listed namespaces."""
    params = tmp_path / "three.yaml"
    params.write_text(THREE_CAMERAS_YAML)
    run = Launched(prefix, "cvpose.launch.py", "namespace:=three", f"params_file:={params}",
                   "cameras:=[left, right, /top]")
    try:
        run.spin_until(lambda: "/three/refiner_node" in run.nodes(), 60.0, "the three-camera node")
        assert run.parameters("/three/refiner_node", "cameras") == [["cam0", "cam1", "cam2"]]
        topics = ("/three/left/keypoints", "/three/right/camera_info", "/top/keypoints", "/top/camera_info")
        run.spin_until(lambda: all(run.node.count_subscribers(t) >= 1 for t in topics), 20.0,
                       f"subscriptions on {topics}")
    finally:
        run.close()


def test_managed_argument_starts_the_lifecycle_node(prefix):
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState

    run = Launched(prefix, "cvpose.launch.py", "namespace:=managed_lab", "managed:=true",
                   'cam1_translation:=[0.5, 0.0, 0.0]')
    try:
        run.spin_until(lambda: "/managed_lab/refiner_node" in run.nodes(), 60.0, "the managed node")
        client = run.node.create_client(GetState, "/managed_lab/refiner_node/get_state")
        run.spin_until(client.service_is_ready, 20.0, "get_state")
        future = client.call_async(GetState.Request())
        run.spin_until(future.done, 10.0, "get_state answer")
        assert future.result().current_state.id == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        run.close()

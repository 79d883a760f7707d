"""The console entry point's start-up: the heap built before the first message is frozen out of the collector."""

from __future__ import annotations

import gc

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402

from cvpose_ros.ros.entry import freeze_startup_heap, make_executor, run_node  # noqa: E402


@pytest.fixture(autouse=True)
def _unfreeze():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freeze_startup_heap_moves_live_objects_out_of_the_collector() -> None:
    assert gc.get_freeze_count() == 0
    frozen = freeze_startup_heap()
    assert frozen > 1000  # the interpreter, numpy, rclpy and this test's modules
    garbage = [[] for _ in range(1000)]
    # objects made afterwards stay collectable (the frozen count only shrinks, as frozen objects are freed)
    assert gc.get_freeze_count() <= frozen
    del garbage


class _ProbeNode(Node):
    """Records the frozen-object count from inside the spinning executor, then ends the spin as Ctrl-C would."""

    seen: list[int] = []

    def __init__(self) -> None:
        super().__init__("entry_probe")
        self.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        _ProbeNode.seen.append(gc.get_freeze_count())
        raise KeyboardInterrupt


def test_run_node_freezes_the_heap_before_spinning() -> None:
    _ProbeNode.seen.clear()
    assert run_node(_ProbeNode, "probe: ", (ValueError,), []) == 0
    assert _ProbeNode.seen and _ProbeNode.seen[0] > 1000


class _ExecutorProbe(Node):
    """Records the type of the executor spinning it (its `executor` parameter chooses), then ends the spin."""

    seen: list[str] = []

    def __init__(self, executor: str | None) -> None:
        super().__init__("executor_probe")
        if executor is not None:
            self.declare_parameter("executor", executor)
        self.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        _ExecutorProbe.seen.append(type(self.executor).__name__)
        raise KeyboardInterrupt


@pytest.mark.parametrize(("parameter", "expected"), [("events", "EventsExecutor"),
                                                     (" Single_Threaded", "SingleThreadedExecutor"),
                                                     (None, "SingleThreadedExecutor")])
def test_run_node_spins_on_the_executor_the_node_asks_for(parameter: str | None, expected: str) -> None:
    _ExecutorProbe.seen.clear()
    assert run_node(lambda: _ExecutorProbe(parameter), "probe: ", (ValueError,), []) == 0
    assert _ExecutorProbe.seen[:1] == [expected]


_SIGINT_CHILD = """
import sys
from rclpy.node import Node
from cvpose_ros.ros.entry import run_node

class Probe(Node):
    def __init__(self):
        super().__init__("sigint_probe")
        self.declare_parameter("executor", sys.argv[1])
        self.create_timer(0.05, lambda: print("spinning", flush=True))

sys.exit(run_node(Probe, "probe: ", (ValueError,), []))
"""


@pytest.mark.parametrize("executor", ["events", "single_threaded"])
def test_ctrl_c_ends_the_spin_with_status_zero(executor: str) -> None:
    """A regression seen with rclpy's EventsExecutor: its spin() kept running after Ctrl-C shut rclpy down."""
    import select
    import signal
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", _SIGINT_CHILD, executor], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60.0)  # the timer's first line, or fail (no hang)
        assert ready and child.stdout.readline().strip() == "spinning", "the probe node never spun"
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=15) == 0
    finally:
        child.kill()
        child.wait()


def test_make_executor_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="executor must be one of events, single_threaded, got 'multi'"):
        make_executor("multi")


def test_run_node_start_up_error_is_one_line_and_a_status(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> Node:
        raise ValueError("cam1.rotation must have 4 values")

    assert run_node(broken, "probe: cannot start: ", (ValueError,), [], error_status=3) == 3
    assert capsys.readouterr().err.strip() == "probe: cannot start: cam1.rotation must have 4 values"
    assert gc.get_freeze_count() == 0  # nothing frozen when the node never started

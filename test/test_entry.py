"""The console entry point's start-up: the heap built before the first message is frozen out of the collector."""

from __future__ import annotations

import gc

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402

from cvpose_ros.ros.entry import freeze_startup_heap, run_node  # noqa: E402


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


def test_run_node_start_up_error_is_one_line_and_a_status(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> Node:
        raise ValueError("cam1.rotation must have 4 values")

    assert run_node(broken, "probe: cannot start: ", (ValueError,), [], error_status=3) == 3
    assert capsys.readouterr().err.strip() == "probe: cannot start: cam1.rotation must have 4 values"
    assert gc.get_freeze_count() == 0  # nothing frozen when the node never started

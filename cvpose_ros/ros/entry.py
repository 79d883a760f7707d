"""One way to run a node from a console script: start-up errors become one line on stderr and an exit status,
Ctrl-C and external shutdown end it quietly, and the node and context are always cleaned up. The node spins on
the executor its `executor` parameter names (`make_executor`; rclpy's default without one). The package's Fast DDS
profile for camera images is adopted first unless the user chose one (cvpose_ros.ros.dds_profile), and the heap
built at start-up is frozen (`freeze_startup_heap`) before the first message."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from cvpose_ros.ros.dds_profile import use_default_profile


def run_node(make_node: Callable[[], Node], error_prefix: str,
             startup_errors: tuple[type[BaseException], ...], args: list[str] | None = None,
             error_status: int = 1) -> int:
    """Adopt the package's DDS profile (unless the user set one), initialise rclpy, build the node with `make_node`
    and spin it until shutdown; returns the exit status."""
    use_default_profile()  # before rclpy.init: Fast DDS reads the profile when the first participant is created
    rclpy.init(args=args)
    try:
        node = make_node()
    except startup_errors as exc:
        print(f"{error_prefix}{exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return error_status
    executor = make_executor(node_executor(node))
    executor.add_node(node)
    freeze_startup_heap()
    try:
        # spin_once in a loop rather than spin(): rclpy's EventsExecutor.spin() does not return when Ctrl-C shuts
        # the context down (Kilted); spin_once raises ExternalShutdownException then, on either executor.
        while rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def node_executor(node: Node) -> str:
    """The executor kind a node asks for in its (validated) `executor` parameter; "single_threaded" without one."""
    if not node.has_parameter("executor"):
        return "single_threaded"
    return str(node.get_parameter("executor").value).strip().lower()


EXECUTORS = ("events", "single_threaded")
SPIN_TIMEOUT_S = 0.5  # longest wait of one spin_once: how soon a shutdown is noticed


def make_executor(kind: str, context: rclpy.Context | None = None):
    """The executor a node spins on: "events" = rclpy's EventsExecutor (middleware events feed a queue in C++;
    no wait set rebuilt in Python for every callback), "single_threaded" = rclpy's default SingleThreadedExecutor.
    ValueError for any other name."""
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    if kind == "single_threaded":
        from rclpy.executors import SingleThreadedExecutor

        return SingleThreadedExecutor(context=context)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive after start-up (modules, torch, the network, the node) out of
    the garbage collector's view (`gc.freeze`); returns how many were frozen.

    Python's full (generation 2) collections otherwise walk all of them: about 200k objects with torch, rclpy and
    ONNX Runtime loaded, 180-200 ms per collection on the team's 2-core machine, five of them in 3,600 frames of
    `bench/bench_frame_path.py`. Such a pause lands on whichever frame triggers it. Frozen objects are never
    collected, which is right for what a node builds once and keeps until exit.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

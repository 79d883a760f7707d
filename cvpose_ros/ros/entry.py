"""One way to run a node from a console script: start-up errors become one line on stderr and an exit status,
Ctrl-C and external shutdown end it quietly, and the node and context are always cleaned up. The package's Fast DDS
profile for camera images is adopted first unless the user chose one (cvpose_ros.ros.dds_profile)."""

from __future__ import annotations

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
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0

"""A small in-process ROS graph for tools (demo, bag evaluation): a private context whose nodes spin on one
single-threaded executor in a background thread, and one `close()` that tears everything down in order.

Single-threaded on purpose: with a multi-threaded executor and torch in one process, the same replay took from
4 s to over 2 minutes on an idle 2-core machine; single-threaded took 5 s every time (docs/demo_and_bags.md).
"""

from __future__ import annotations

import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class BackgroundGraph:
    """Nodes of one private context, spun in a background thread once `start()` is called."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, args=[])
        self._nodes: list[Node] = []
        self._executor: SingleThreadedExecutor | None = None
        self._spinner: threading.Thread | None = None

    def add(self, node: Node) -> Node:
        """Register `node` (created with `context=self.context`); returns it."""
        self._nodes.append(node)
        if self._executor is not None:
            self._executor.add_node(node)
        return node

    def start(self) -> None:
        """Spin every registered node in a daemon thread."""
        self._executor = SingleThreadedExecutor(context=self.context)
        for node in self._nodes:
            self._executor.add_node(node)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()

    def close(self) -> None:
        """Stop spinning, close nodes that own files (recorders), destroy every node and shut the context down."""
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=2.0)
        if self._spinner is not None:
            self._spinner.join(timeout=2.0)
        for node in self._nodes:
            close = getattr(node, "close", None)
            if callable(close):
                close()
        for node in self._nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)

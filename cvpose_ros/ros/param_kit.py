"""The parameter kit of every node: declare a `ParamSpec` table with full descriptors and keep it valid for life.

`LiveParameters` declares the table (so `ros2 param describe` shows each range and read-only flag), validates the
start-up values and every later `ros2 param set` with the same function, refuses an invalid set with the reason,
and hands each accepted change to the node to apply live. Read-only (restart) parameters are refused by rclpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from cvpose_ros.param_spec import ParameterError, ParamSpec, coerce_types

RESTART_NOTE = " Read-only: a change needs a restart."
T = TypeVar("T")


def descriptor(name: str, spec: ParamSpec) -> ParameterDescriptor:
    """The descriptor `ros2 param describe` shows: description, read-only flag and numeric range.

    Typing is dynamic so that YAML like `sync_slop: 0` or `translation: [0, 0, 1]` is accepted; `coerce_types`
    then checks each value against its default's type with a clear message.
    """
    desc = ParameterDescriptor(name=name, description=spec.description + (RESTART_NOTE if spec.restart else ""),
                               read_only=spec.restart, dynamic_typing=True)
    if spec.range is not None and isinstance(spec.default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]),
                                                        to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        desc.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return desc


def declare(node: Node, name: str, spec: ParamSpec) -> None:
    """Declare one parameter with its descriptor; a start-up value rclpy refuses (out of the declared range, say)
    becomes a ParameterError naming the parameter and its bounds."""
    try:
        node.declare_parameter(name, spec.default, descriptor(name, spec))
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
        bounds = f" must be in [{spec.range[0]}, {spec.range[1]}]" if spec.range else ""
        raise ParameterError(f"parameter {name}{bounds}: {exc.args[0]}") from exc


class LiveParameters(Generic[T]):
    """A node's parameter table, declared with descriptors and kept valid for the node's whole life.

    `build` turns a complete name -> value dict (types already coerced) into the node's settings object or raises
    ParameterError; it runs at start-up and again on every set, on the values the set would produce. `apply`
    (optional) receives (old, new) settings after an accepted set, so the node switches live.
    """

    def __init__(self, node: Node, specs: Mapping[str, ParamSpec], build: Callable[[dict[str, Any]], T],
                 apply: Callable[[T, T], None] | None = None) -> None:
        self._node, self._specs, self._build, self._apply = node, dict(specs), build, apply
        for name, spec in self._specs.items():
            if not node.has_parameter(name):  # else declared ahead (refiner_parameters reads `cameras` first)
                declare(node, name, spec)
        self.values = coerce_types({name: node.get_parameter(name).value for name in self._specs}, self._specs)
        self.settings: T = build(self.values)
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, parameters: list) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in self._specs}
        if not changes:  # e.g. use_sim_time: rclpy's own
            return SetParametersResult(successful=True)
        try:
            values = {**self.values, **coerce_types(changes, self._specs)}
            settings = self._build(values)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        old, self.values, self.settings = self.settings, values, settings
        if self._apply is not None:
            self._apply(old, settings)
        self._node.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

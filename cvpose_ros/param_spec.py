"""Node parameter tables without rclpy: one `ParamSpec` per parameter and the type and range check of values.

Every node of the package describes its parameters as a dict name -> `ParamSpec` (default, description, inclusive
numeric range, whether a change needs a restart). `cvpose_ros.ros.param_kit.LiveParameters` declares such a table
on a node; `coerce_types` is the check it applies at start-up and on every `ros2 param set`, importable (and
tested) without ROS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple


class ParamSpec(NamedTuple):
    """One parameter: default (its type is the parameter's type), description, inclusive numeric range, and
    `restart=True` when the node reads it only at start-up (declared read-only)."""

    default: Any
    description: str
    range: tuple[float, float] | None = None
    restart: bool = False


class ParameterError(ValueError):
    """An invalid parameter value (at start-up: the node does not start; later: the set is refused)."""


def _numbers(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                   for v in value)


def coerce_types(values: Mapping[str, Any], specs: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Values converted to the type of their default (int -> float; number lists -> float lists, or int lists when
    the default holds ints) and checked against their range; ParameterError names the parameter when a value has
    the wrong type or is out of range."""
    out = {}
    for name, value in values.items():
        default = specs[name].default
        kind = type(default)
        strings = kind is list and bool(default) and isinstance(default[0], str)
        integers = kind is list and bool(default) and all(isinstance(v, int) and not isinstance(v, bool)
                                                          for v in default)
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
        elif strings and isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[name] = [str(v) for v in value]
        elif integers and _numbers(value) and all(float(v).is_integer() for v in value):
            out[name] = [int(v) for v in value]
        elif kind is list and not strings and not integers and _numbers(value):
            out[name] = [float(v) for v in value]
        elif kind in (bool, str) and isinstance(value, kind):
            out[name] = value
        else:
            raise ParameterError(f"parameter {name} must be {kind.__name__} (like {default!r}), got {value!r}")
        bounds = specs[name].range
        if bounds is not None and not (math.isfinite(out[name]) and bounds[0] <= out[name] <= bounds[1]):
            raise ParameterError(f"parameter {name} must be in [{bounds[0]}, {bounds[1]}], got {value!r}")
    return out

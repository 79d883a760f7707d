"""Strict dict -> dataclass conversion for settings stored in checkpoints and config files: a key the dataclass
does not know is an error (a newer format this code cannot honour), never silently dropped."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def unknown_fields(cls: type, keys: Any) -> list[str]:
    """Sorted keys that are not fields of the dataclass `cls`."""
    return sorted(set(keys) - {f.name for f in fields(cls)})


def strict_from_dict(cls: type[T], values: dict, what: str) -> T:
    """`cls(**values)`; raises ValueError naming the unknown `what` (e.g. "model hyper-parameters") first."""
    unknown = unknown_fields(cls, values)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}")
    return cls(**values)

"""Which camera delivers only part of its keypoint messages: a per-camera count of arrivals over a sliding window.

A camera that stops altogether is caught by the node's `camera_timeout`. A camera that still sends, but fewer
messages than the others, is not: images lost in transport (no DDS profile for large images), a detector that
cannot keep up, or a driver running at a lower rate. Every such loss costs synchronised frames while no single gap
is long enough to look silent. This names the camera, and the refiner's /diagnostics shows it as WARN.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class PartialCamera:
    """A camera with fewer arrivals than the busiest camera over the window."""

    camera: int
    count: int
    best_camera: int
    best_count: int
    window_s: float

    def describe(self, names: list[str] | None = None) -> str:
        name = (lambda c: names[c]) if names else (lambda c: f"cam{c}")
        return (f"{name(self.camera)} partial: {self.count} keypoint messages in the last {self.window_s:g} s "
                f"against {self.best_count} from {name(self.best_camera)} (lost upstream: image transport, the "
                "detector or the driver; see docs/image_transport.md)")


class ArrivalRates:
    """Arrival times of each camera's keypoints over the last `window_s` seconds.

    A camera is partial when the busiest camera had at least `min_messages` in the window and this one had some,
    but fewer than `min_fraction` of the busiest one's count (a camera with none is silent, not partial). Only
    cameras that have been sending for a whole window are judged (one that just started is not partial).
    """

    def __init__(self, num_cameras: int, window_s: float = 2.0, min_fraction: float = 0.8,
                 min_messages: int = 10) -> None:
        if num_cameras < 1 or not window_s > 0 or not 0 < min_fraction <= 1 or min_messages < 1:
            raise ValueError(f"bad arrival-rate settings: {num_cameras} cameras, window {window_s} s, fraction "
                             f"{min_fraction}, {min_messages} messages")
        self.window_s, self.min_fraction, self.min_messages = float(window_s), float(min_fraction), int(min_messages)
        self._times: list[deque[float]] = [deque() for _ in range(num_cameras)]
        self._first: list[float | None] = [None] * num_cameras

    def note(self, camera: int, now_s: float) -> None:
        """Camera `camera` delivered a message at monotonic time `now_s`."""
        self._times[camera].append(float(now_s))
        if self._first[camera] is None:
            self._first[camera] = float(now_s)
        self._forget(self._times[camera], now_s)

    def counts(self, now_s: float) -> list[int]:
        """Messages per camera within the window ending at `now_s`."""
        for times in self._times:
            self._forget(times, now_s)
        return [len(times) for times in self._times]

    def partial(self, now_s: float) -> PartialCamera | None:
        """The camera with the lowest share of the busiest camera's arrivals, when that share is too low."""
        counts = self.counts(now_s)
        judged = [c for c, first in enumerate(self._first) if first is not None and first <= now_s - self.window_s]
        if not judged:
            return None
        best = max(judged, key=counts.__getitem__)
        if counts[best] < self.min_messages:
            return None
        sending = [c for c in judged if 0 < counts[c] < self.min_fraction * counts[best]]
        if not sending:
            return None
        worst = min(sending, key=counts.__getitem__)
        return PartialCamera(worst, counts[worst], best, counts[best], self.window_s)

    def _forget(self, times: deque[float], now_s: float) -> None:
        while times and times[0] < now_s - self.window_s:
            times.popleft()

"""How many of a camera's images reach the detector, and how many of those it had time to process.

The camera's rate comes from, in order: the `expected_rate` the user declared, its camera_info messages (small,
so they arrive even when the transport drops the large images; used when their stamps are the images' stamps, as
a driver publishes them), or the spacing of the image stamps themselves
(the smallest gap between the window's stamps: a lower bound on the loss when most images are lost). Counts are
over a sliding window of arrival times, so the report follows the current state. Plain Python (no rclpy): the
node feeds it and renders the report on /diagnostics.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # the levels of diagnostic_msgs/DiagnosticStatus
TRANSPORT_HINT = ("large images need the same DDS profile in the camera driver and in this node "
                  "(FASTDDS_DEFAULT_PROFILES_FILE=<share>/cvpose_ros/config/fastdds_images.xml, "
                  "docs/image_transport.md), matching QoS (image_reliability), or use_compressed")
BUSY_HINT = ("the detector is slower than the camera: it keeps the newest image; use a faster model or device, "
             "or a lower camera rate")


@dataclass
class InputReport:
    """Level (OK/WARN/ERROR), one-line message, the kind of problem (ok, waiting, transport, busy) and the figures
    behind it."""

    level: int
    message: str
    kind: str = "ok"
    values: dict[str, str] = field(default_factory=dict)


class InputMonitor:
    """Counts arrivals of images, camera_info and images dropped while the detector was busy (see module doc).

    window_s: sliding window of the counts (s). expected_rate: the camera's rate (Hz), 0 = measure it.
    min_fraction: WARN when fewer than this fraction of the camera's images arrive, or of the arrived images are
    processed. min_expected: the report judges loss only once at least this many images were expected.
    grace_s: images of the last grace_s may still be in flight (a large image arrives after its camera_info), so
    the expected count leaves them out.
    """

    def __init__(self, window_s: float = 5.0, expected_rate: float = 0.0, min_fraction: float = 0.9,
                 min_expected: int = 10, grace_s: float = 0.5) -> None:
        if window_s <= grace_s or grace_s < 0 or expected_rate < 0 or not 0.0 <= min_fraction <= 1.0 \
                or min_expected < 1:
            raise ValueError("window_s > grace_s >= 0, expected_rate >= 0, 0 <= min_fraction <= 1, min_expected >= 1")
        self.window_s = window_s
        self.grace_s = grace_s
        self.expected_rate = expected_rate
        self.min_fraction = min_fraction
        self.min_expected = min_expected
        self._images: deque[tuple[float, int]] = deque()   # (arrival s, stamp ns)
        self._infos: deque[tuple[float, int]] = deque()
        self._busy: deque[float] = deque()
        self._first_event_s: float | None = None          # first image or camera_info
        self.images_total = 0
        self.infos_total = 0
        self.busy_total = 0

    # -- events ----------------------------------------------------------------------------------------------------
    def image_arrived(self, stamp_ns: int, now_s: float) -> None:
        self.images_total += 1
        self._images.append((now_s, int(stamp_ns)))
        self._started(now_s)
        self._trim(now_s)

    def info_arrived(self, stamp_ns: int, now_s: float) -> None:
        self.infos_total += 1
        self._infos.append((now_s, int(stamp_ns)))
        self._started(now_s)
        self._trim(now_s)

    def dropped_busy(self, now_s: float, n: int = 1) -> None:
        """`n` arrived images were replaced by newer ones before the detector could take them."""
        self.busy_total += n
        self._busy.extend([now_s] * n)
        self._trim(now_s)

    def _started(self, now_s: float) -> None:
        if self._first_event_s is None:
            self._first_event_s = now_s

    def _trim(self, now_s: float) -> None:
        start = now_s - self.window_s
        for queue in (self._images, self._infos):
            while queue and queue[0][0] < start:
                queue.popleft()
        while self._busy and self._busy[0] < start:
            self._busy.popleft()

    # -- report ----------------------------------------------------------------------------------------------------
    def _expected(self, now_s: float) -> tuple[int, float, str, float]:
        """(images received, images the camera sent, where that figure comes from, camera rate Hz), over the
        window; sent and rate are nan when unknown."""
        received = len(self._images)
        if self.expected_rate > 0:
            first = now_s if self._first_event_s is None else self._first_event_s
            covered = min(self.window_s, max(0.0, now_s - self.grace_s - first))
            return received, self.expected_rate * covered, "expected_rate", self.expected_rate
        image_stamps = {stamp for _, stamp in self._images}
        info_stamps = {stamp for _, stamp in self._infos}
        # camera_info is the camera's rate when it comes with the images (same stamps, as drivers publish it), not
        # from a separate publisher at its own rate (e.g. cvpose-camera-info)
        if info_stamps and (not image_stamps or image_stamps & info_stamps):
            infos = sorted({stamp for arrival, stamp in self._infos if arrival <= now_s - self.grace_s})
            if len(infos) < 2:  # camera_info is coming: wait for it rather than guess from the stamps
                return received, float("nan"), "camera_info", float("nan")
            # the images of those camera_info messages; later ones may still be in flight
            matched = len(image_stamps.intersection(infos))
            hz = (len(infos) - 1) / max(1e-9, (infos[-1] - infos[0]) * 1e-9)
            return matched, float(len(infos)), "camera_info", hz
        stamps = sorted({stamp for _, stamp in self._images})
        gaps = np.diff(np.asarray(stamps, np.int64))
        if gaps.size >= 1:
            period_ns = int(gaps.min())  # consecutive frames, when any two arrived in a row: the camera's period
            return received, (stamps[-1] - stamps[0]) / period_ns + 1.0, "image stamps", 1e9 / period_ns
        return received, float("nan"), "unknown", float("nan")

    def report(self, now_s: float) -> InputReport:
        """The window's figures and a verdict: ERROR when camera_info arrives but no image does, WARN when most
        images are lost in transport or dropped because the detector is busy (each named separately)."""
        self._trim(now_s)
        busy = len(self._busy)
        received, expected, source, camera_hz = self._expected(now_s)
        known = expected == expected and expected >= self.min_expected  # not nan, and enough to judge
        fraction = min(1.0, received / expected) if known else float("nan")
        arrived = len(self._images)
        processed = (arrived - busy) / arrived if arrived else float("nan")
        values = {"images_in_window": str(arrived), "images_expected": f"{expected:.0f}" if known else "unknown",
                  "received_fraction": f"{fraction:.3f}" if known else "unknown", "rate_source": source,
                  "camera_rate_hz": f"{camera_hz:.1f}" if camera_hz == camera_hz else "unknown",
                  "received_rate_hz": f"{arrived / self.window_s:.1f}",
                  "busy_dropped_in_window": str(busy), "busy_dropped_total": str(self.busy_total),
                  "processed_fraction": f"{processed:.3f}" if arrived else "unknown",
                  "images_total": str(self.images_total), "camera_info_total": str(self.infos_total)}
        if known and arrived == 0:
            return InputReport(ERROR, f"no image arrives although the camera sends {camera_hz:.0f} Hz "
                                      f"(rate from {source}): {TRANSPORT_HINT}", "transport", values)
        if self.images_total == 0:
            return InputReport(WARN, "no images received yet", "waiting", values)
        if known and fraction < self.min_fraction:
            return InputReport(WARN, f"only {100 * fraction:.0f}% of the camera's images arrive ({received} of "
                                     f"{expected:.0f} in {self.window_s:.0f} s, rate from {source}): {TRANSPORT_HINT}",
                               "transport", values)
        if arrived >= self.min_expected and processed < self.min_fraction:
            return InputReport(WARN, f"busy: {busy} of {arrived} arrived images dropped in {self.window_s:.0f} s "
                                     f"({100 * (1 - processed):.0f}%): {BUSY_HINT}", "busy", values)
        return InputReport(OK, "ok", "ok", values)

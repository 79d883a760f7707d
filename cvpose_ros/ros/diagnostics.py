"""Counters and timings of the refiner node, published as one diagnostic_msgs/DiagnosticArray status.

Counters are cumulative since start-up (so a monitor sees every problem that ever happened). The status level and
message say what is wrong now, most serious first:

- ERROR while a camera has no usable camera_info (named, with the reason) or the extrinsics fail;
- WARN while a camera's keypoints stopped (`camera_timeout`) and another's still arrive: the silent camera is
  named, with the frames received and the last stamp of each camera (with three or more cameras the node goes on
  with the others, `live_cameras`);
- WARN while a camera delivers keypoints but clearly fewer than the busiest camera over the last 2 s (fewer than
  80 %; `cvpose_ros.pipeline.arrival_rates`): the partial camera is named with both counts (images or detections lost
  upstream cost synchronised frames without any gap long enough to look silent);
- WARN for `hold_s` seconds after any problem, with that problem's message (so a burst of bad input is visible for
  longer than one report period);
- OK otherwise.
"""

from __future__ import annotations

import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from cvpose_ros.pipeline.arrival_rates import ArrivalRates
from cvpose_ros.pipeline.view_input import Problem
from cvpose_ros.ros.conversions import ns_to_stamp

STATUS_NAME = "cvpose_refiner: pipeline"


class NodeDiagnostics:
    """Accumulates what the node did and renders it as a DiagnosticArray."""

    def __init__(self, hardware_id: str, timing_window: int = 300, name: str = STATUS_NAME, hold_s: float = 5.0,
                 camera_timeout_s: float = 1.0, cameras: int = 2) -> None:
        self.hardware_id = hardware_id
        self.name = name  # the status name; a namespaced node's carries its namespace
        self.hold_s = float(hold_s)
        self.camera_timeout_s = float(camera_timeout_s)
        self.cameras = int(cameras)
        self.last_stamp_ns: list[int | None] = [None] * cameras   # header stamp of each camera's latest keypoints
        self._last_arrival: list[float | None] = [None] * cameras  # monotonic time of each camera's latest keypoints
        self.started_s = time.monotonic()                          # cameras that never sent count from here
        self.camera_info_error: list[str | None] = ["no camera_info received yet"] * cameras  # None = usable
        self.extrinsics_error: str | None = None               # set while the last frame's extrinsics failed
        self._last_problem: tuple[float, str] | None = None    # (monotonic time, message)
        self.problems: Counter = Counter({p: 0 for p in Problem})
        self.frames_in = [0] * cameras
        self.camera_info_in = [0] * cameras
        self.pairs = 0
        self.frames_published = 0
        self.people = 0
        self.refinement_state = "unknown"
        self.layout_refinement: dict[str, bool] = {}   # layout -> has weights
        self.last_layout = ""
        self.unrefined_frames: Counter = Counter()      # layout -> frames triangulated only (no weights)
        self.guarded_joints = 0                         # refined joints shortened by the do-no-harm guard
        self.swap_repairs = 0                           # person-views whose left/right labels matching repaired
        self.dropped_joints = 0                         # joints dropped: the two views disagree far beyond the rest
        self._times_ms: deque[float] = deque(maxlen=timing_window)
        self.arrivals = ArrivalRates(self.cameras)

    def count(self, problem: Problem, n: int = 1) -> None:
        self.problems[problem] += int(n)

    def report(self, problem: Problem, message: str, n: int = 1, now_s: float | None = None) -> None:
        """Count a problem and remember its message: the status stays WARN with it for `hold_s` seconds."""
        self.count(problem, n)
        self._last_problem = (time.monotonic() if now_s is None else now_s, f"[{problem.value}] {message}")

    def keypoints_in(self, camera: int, stamp_ns: int, now_s: float | None = None) -> None:
        """A keypoints message of `camera` arrived (stamped `stamp_ns`)."""
        self.frames_in[camera] += 1
        self.last_stamp_ns[camera] = int(stamp_ns)
        self._last_arrival[camera] = time.monotonic() if now_s is None else now_s
        self.arrivals.note(camera, self._last_arrival[camera])

    def add_counts(self, problems: Counter) -> None:
        for problem, n in problems.items():
            self.count(problem, n)

    def frame_done(self, people: int, processing_ms: float) -> None:
        self.frames_published += 1
        self.people = int(people)
        self._times_ms.append(float(processing_ms))

    def layout_frame(self, layout: str, refined: bool, guarded_joints: int) -> None:
        """Record a published frame's keypoint layout, whether it was refined and how many joints were guarded."""
        self.last_layout = layout
        self.guarded_joints += int(guarded_joints)
        if not refined and self.layout_refinement:
            self.unrefined_frames[layout] += 1

    def matching_frame(self, swap_repairs: int, dropped_joints: int) -> None:
        """Record what cross-view matching repaired in a published frame (detector errors, not input faults)."""
        self.swap_repairs += int(swap_repairs)
        self.dropped_joints += int(dropped_joints)

    def _recent(self, now_s: float) -> list[bool]:
        return [t is not None and now_s - t <= self.camera_timeout_s for t in self._last_arrival]

    def silent_cameras(self, now_s: float) -> list[int]:
        """Cameras whose keypoints stopped (or never came) while another camera's still arrive."""
        recent = self._recent(now_s)
        return [c for c, r in enumerate(recent) if not r] if any(recent) else []

    def silent_camera(self, now_s: float) -> tuple[int, str] | None:
        """(first silent camera, description naming every silent one) or None (see `silent_cameras`)."""
        quiet = self.silent_cameras(now_s)
        if not quiet:
            return None
        talking = ", ".join(f"cam{c}" for c in range(self.cameras) if c not in quiet)
        parts = []
        for camera in quiet:
            last = self._last_arrival[camera]
            since = "no keypoints received yet" if last is None else f"no keypoints for {now_s - last:.1f} s"
            parts.append(f"cam{camera} silent: {since}")
        return quiet[0], f"{'; '.join(parts)} while {talking} publish{'es' if ',' not in talking else ''}"

    def live_cameras(self, now_s: float) -> set[int]:
        """Cameras that sent keypoints within `camera_timeout` (a camera that never sent counts as live for
        `camera_timeout` after start-up, so the first frames wait for it)."""
        started = [self.started_s if t is None else t for t in self._last_arrival]
        return {c for c, t in enumerate(started) if now_s - t <= self.camera_timeout_s}

    def _stamp_text(self, camera: int) -> str:
        stamp = self.last_stamp_ns[camera]
        return "none" if stamp is None else f"{stamp / 1e9:.6f}"

    def to_msg(self, stamp_ns: int, now_s: float | None = None) -> DiagnosticArray:
        """The current state as one DiagnosticStatus (level and message: see the module docstring)."""
        now_s = time.monotonic() if now_s is None else now_s
        silent = self.silent_camera(now_s)
        partial = self.arrivals.partial(now_s)
        missing = [f"cam{c}: {err}" for c, err in enumerate(self.camera_info_error) if err is not None]
        if missing or self.extrinsics_error:
            level, message = DiagnosticStatus.ERROR, "; ".join(missing or [f"extrinsics: {self.extrinsics_error}"])
        elif silent is not None:
            cams = range(self.cameras)
            level, message = DiagnosticStatus.WARN, (
                f"{silent[1]} (frames in: {', '.join(f'cam{c} {self.frames_in[c]}' for c in cams)}; last stamps: "
                f"{', '.join(f'cam{c} {self._stamp_text(c)}' for c in cams)})")
        elif partial is not None:
            level, message = DiagnosticStatus.WARN, partial.describe()
        elif self._last_problem is not None and now_s - self._last_problem[0] <= self.hold_s:
            level, message = DiagnosticStatus.WARN, (f"problem {now_s - self._last_problem[0]:.1f} s ago: "
                                                     f"{self._last_problem[1]}")
        elif self.last_layout and not self.layout_refinement.get(self.last_layout, True):
            level, message = DiagnosticStatus.OK, (f"running; {self.last_layout} keypoints are triangulated only "
                                                   f"(no {self.last_layout} weights)")
        else:
            level, message = DiagnosticStatus.OK, f"running, refinement {self.refinement_state}"
        times = np.asarray(self._times_ms)
        cams = range(self.cameras)
        values = {
            **{f"frames_in_cam{c}": self.frames_in[c] for c in cams},
            **{f"last_stamp_cam{c}": self._stamp_text(c) for c in cams},
            "silent_camera": "" if silent is None else ",".join(f"cam{c}" for c in self.silent_cameras(now_s)),
            "partial_camera": "" if partial is None else f"cam{partial.camera}",
            **{f"arrivals_2s_cam{c}": n for c, n in zip(cams, self.arrivals.counts(now_s), strict=True)},
            **{f"camera_info_in_cam{c}": self.camera_info_in[c] for c in cams},
            **{f"camera_info_cam{c}": self.camera_info_error[c] or "ok" for c in cams},
            "last_problem": "" if self._last_problem is None else self._last_problem[1],
            "synced_pairs": self.pairs,
            "frames_published": self.frames_published, "people": self.people,
            "processing_ms_mean": f"{times.mean():.2f}" if times.size else "nan",
            "processing_ms_max": f"{times.max():.2f}" if times.size else "nan",
            "refinement": self.refinement_state,
            "layout": self.last_layout,
            **{f"refinement_{layout}": "on" if on else "off (no weights: triangulation only)"
               for layout, on in self.layout_refinement.items()},
            **{f"unrefined_frames_{layout}": n for layout, n in self.unrefined_frames.items()},
            "guarded_joints": self.guarded_joints,
            "swap_repairs": self.swap_repairs,
            "dropped_joints": self.dropped_joints,
            "sync_drops": self.problems[Problem.SYNC_DROP],
            **{f"problem_{p.value}": n for p, n in self.problems.items()},
        }
        status = DiagnosticStatus(level=level, name=self.name, message=message, hardware_id=self.hardware_id,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = ns_to_stamp(stamp_ns)
        return msg


def diagnostics_values(msg: DiagnosticArray, name: str = STATUS_NAME) -> dict[str, str]:
    """Key/values of the status called `name` (empty when absent); for tests and monitors."""
    for status in msg.status:
        if status.name == name:
            return {kv.key: kv.value for kv in status.values}
    return {}

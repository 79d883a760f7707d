"""Counters and timings of the refiner node, published as one diagnostic_msgs/DiagnosticArray status.

Counters are cumulative since start-up (so a monitor sees every problem that ever happened); the status level
reflects the last period: OK, WARN when frames were skipped or people dropped since the previous report, ERROR
while no usable camera calibration is available.
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from cvpose_ros.ros.conversions import ns_to_stamp
from cvpose_ros.view_input import Problem

STATUS_NAME = "cvpose_refiner: pipeline"


class NodeDiagnostics:
    """Accumulates what the node did and renders it as a DiagnosticArray."""

    def __init__(self, hardware_id: str, timing_window: int = 300, name: str = STATUS_NAME) -> None:
        self.hardware_id = hardware_id
        self.name = name  # the status name; a namespaced node's carries its namespace
        self.problems: Counter = Counter({p: 0 for p in Problem})
        self.frames_in = [0, 0]
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
        self.calibration_ok = False
        self._times_ms: deque[float] = deque(maxlen=timing_window)
        self._problems_at_last_report = sum(self.problems.values())

    def count(self, problem: Problem, n: int = 1) -> None:
        self.problems[problem] += int(n)

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

    def to_msg(self, stamp_ns: int) -> DiagnosticArray:
        """The current state; also resets the 'since last report' window of the status level."""
        total_problems = sum(self.problems.values())
        new_problems = total_problems - self._problems_at_last_report
        self._problems_at_last_report = total_problems
        if not self.calibration_ok:
            level, message = DiagnosticStatus.ERROR, "no valid camera_info/extrinsics for both cameras yet"
        elif new_problems:
            level, message = DiagnosticStatus.WARN, f"{new_problems} input problems since the last report"
        elif self.last_layout and not self.layout_refinement.get(self.last_layout, True):
            level, message = DiagnosticStatus.OK, (f"running; {self.last_layout} keypoints are triangulated only "
                                                   f"(no {self.last_layout} weights)")
        else:
            level, message = DiagnosticStatus.OK, f"running, refinement {self.refinement_state}"
        times = np.asarray(self._times_ms)
        values = {
            "frames_in_cam0": self.frames_in[0], "frames_in_cam1": self.frames_in[1], "synced_pairs": self.pairs,
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

"""Seeded fuzz of the refiner node over DDS (issue 11): about 2,500 hostile and good messages, every kind of
`cvpose_ros.ros.fuzz` included (future stamps too). The node must not crash or catch an exception of its own, and
no output may carry inf, NaN where NaN is not allowed, a joint beyond max_range or a bad TF parent; good frames
are answered, and no camera is locked out much longer than max_stamp_future. The 10,000-message version with
timings is `bench/bench_fuzz.py`."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
from cvpose_ros.ros.fuzz import CAMERA_INFO_KINDS, KEYPOINT_KINDS, run_fuzz  # noqa: E402

MAX_STAMP_FUTURE = 0.5


def test_seeded_fuzz_over_dds():
    report = run_fuzz(2500, seed=11, crowd_max=300, parameters={
        "refine": False, "max_stamp_future": MAX_STAMP_FUTURE, "warn_throttle": 30.0})
    assert report.messages >= 2500
    assert set(KEYPOINT_KINDS) | set(CAMERA_INFO_KINDS) <= set(report.kinds), "a hostile kind was never sent"
    assert report.crashes == 0 and report.processing_errors == 0, report.problems
    assert report.nonfinite_outputs == 0 and report.joints_beyond_range == 0 and report.bad_tf_frames == 0
    assert report.outputs > 0 and report.answered_good_frames >= 0.7 * report.good_frames
    # a stamp within max_stamp_future blocks its camera by design, for at most that long
    assert 0.0 < report.longest_lockout_s <= MAX_STAMP_FUTURE
    for kind in ("future_stamp", "invalid_calibration", "invalid_frame_id", "implausible_person", "stale_stamp",
                 "bad_array_sizes", "nan_keypoints", "unknown_layout", "out_of_order"):
        assert report.problems.get(kind, 0) > 0, kind

"""Issue 12 #7: with extrinsics_source=tf the camera poses are looked up at the frame's own stamp, waiting at most
`tf_timeout`; a frame whose transforms do not come in time is skipped as `no_transform`.

tf2_ros is not installable in the pip venv, so the buffer here is a small stand-in with tf2's lookup contract:
`lookup_transform(target, source, time, timeout)`, where time 0 means "the latest transform" and an unknown time
raises after the timeout.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
from refiner_harness import camera_info_msg  # noqa: E402

from cvpose_ros.devtools.synthetic import make_rig  # noqa: E402
from cvpose_ros.geometry.camera import RigidTransform  # noqa: E402
from cvpose_ros.pipeline.view_input import FrameError, Problem  # noqa: E402
from cvpose_ros.ros.extrinsics import CalibrationCache  # noqa: E402
from cvpose_ros.ros.params import PARAMETERS, coerce_types, validate  # noqa: E402
from cvpose_ros.ros.tf import _transform  # noqa: E402

RIG = make_rig("demo")
S = 1_000_000_000


class StampedBuffer:
    """Poses of frames in `map` at given stamps (a robot driving along x at 1 m/s); records every lookup."""

    def __init__(self, stamps_ns: list[int]) -> None:
        self.stamps = stamps_ns
        self.calls: list[tuple[str, str, int, int]] = []

    def pose(self, child: str, stamp_ns: int) -> RigidTransform:
        offset = RIG.cam1_from_cam0.inverse() if child == "cam1_optical_frame" else RigidTransform.identity()
        return RigidTransform(offset.R, offset.t + [stamp_ns / S, 0.0, 0.0])

    def lookup_transform(self, target, source, time, timeout):
        stamp, wait = time.nanoseconds, timeout.nanoseconds
        self.calls.append((target, source, stamp, wait))
        if stamp == 0:
            stamp = self.stamps[-1]  # tf2: time 0 = latest available
        if stamp not in self.stamps:
            raise RuntimeError(f"extrapolation: no data at {stamp} after waiting {wait} ns")
        pose = self.pose(source, stamp)
        from rclpy.time import Time

        return _transform(Time(nanoseconds=stamp).to_msg(), target, source, pose.t, pose.quaternion())


def tf_params(**overrides):
    values = {name: spec.default for name, spec in PARAMETERS.items()}
    values.update({"extrinsics_source": "tf", "reference_frame": "map", **overrides})
    return validate(coerce_types(values))


def calibrated(buffer: StampedBuffer) -> CalibrationCache:
    cache = CalibrationCache(tf_params(), buffer)
    for cam in (0, 1):
        assert cache.update(cam, camera_info_msg(RIG, cam)) is None
    return cache


def test_lookups_use_the_frame_stamp_not_the_latest_transform():
    buffer = StampedBuffer([1 * S, 2 * S, 3 * S])
    cache = calibrated(buffer)
    setup = cache.setup(("cam0_optical_frame", "cam1_optical_frame"), "map", 2 * S, timeout_s=0.05)
    # At t = 2 s the robot was at x = 2 m; the latest transform (3 s) would put everything 1 m off.
    np.testing.assert_allclose(setup.reference_from_cam0.t, [2.0, 0.0, 0.0])
    np.testing.assert_allclose(setup.cam1_from_cam0.t, RIG.cam1_from_cam0.t, atol=1e-9)
    assert {(stamp, wait) for _, _, stamp, wait in buffer.calls} == {(2 * S, 50_000_000)}


def test_a_stamp_tf_does_not_have_is_skipped_as_no_transform():
    cache = calibrated(StampedBuffer([1 * S]))
    with pytest.raises(FrameError) as err:
        cache.setup(("cam0_optical_frame", "cam1_optical_frame"), "map", 5 * S, timeout_s=0.02)
    assert err.value.problem is Problem.NO_TRANSFORM and "within 0.02 s" in str(err.value)

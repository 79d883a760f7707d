"""The refiner's /diagnostics status on its own (no node): what is wrong now, most serious first."""

from __future__ import annotations

import pytest

pytest.importorskip("diagnostic_msgs")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from cvpose_ros.pipeline.view_input import Problem  # noqa: E402
from cvpose_ros.ros.diagnostics import NodeDiagnostics, diagnostics_values  # noqa: E402


def status(diag: NodeDiagnostics, now_s: float) -> tuple[int, str, dict]:
    msg = diag.to_msg(0, now_s=now_s)
    return msg.status[0].level, msg.status[0].message, diagnostics_values(msg)


def calibrated() -> NodeDiagnostics:
    diag = NodeDiagnostics("test", hold_s=5.0, camera_timeout_s=1.0)
    diag.camera_info_error = [None, None]
    return diag


def test_missing_camera_info_is_an_error_naming_the_camera():
    diag = NodeDiagnostics("test")
    diag.camera_info_error[0] = None
    level, message, values = status(diag, 0.0)
    assert level == DiagnosticStatus.ERROR and message.startswith("cam1:") and "cam0" not in message
    assert values["camera_info_cam0"] == "ok" and "no camera_info" in values["camera_info_cam1"]


def test_the_silent_camera_is_named_with_frames_and_stamps():
    diag = calibrated()
    for k in range(10):
        diag.keypoints_in(0, 1_000_000_000 + k, now_s=100.0 + 0.1 * k)
    level, message, values = status(diag, 101.0)
    assert level == DiagnosticStatus.WARN and "cam1 silent: no keypoints received yet" in message
    assert values["silent_camera"] == "cam1" and values["frames_in_cam0"] == "10"
    assert values["last_stamp_cam0"] == "1.000000" and values["last_stamp_cam1"] == "none"
    diag.keypoints_in(1, 2_000_000_000, now_s=101.0)
    assert status(diag, 101.5)[0] == DiagnosticStatus.OK  # both recent
    diag.keypoints_in(1, 2_100_000_000, now_s=103.0)
    level, message, _ = status(diag, 103.2)
    assert "cam0 silent: no keypoints for 2.3 s" in message
    assert status(diag, 200.0)[0] == DiagnosticStatus.OK  # both stopped: nobody to compare with


def test_warn_is_held_for_the_window_with_the_last_message():
    diag = calibrated()
    diag.report(Problem.UNKNOWN_LAYOUT, "frame 1.0 skipped: unknown layout 'body25'", now_s=10.0)
    diag.report(Problem.INVALID_FRAME_ID, "frame 2.0 skipped: cam0 frame id 'body_0' ...", now_s=11.0)
    for now in (11.0, 13.0, 15.9):
        level, message, values = status(diag, now)
        assert level == DiagnosticStatus.WARN and "[invalid_frame_id]" in message
    assert values["problem_unknown_layout"] == "1" and "[invalid_frame_id]" in values["last_problem"]
    assert status(diag, 16.1)[0] == DiagnosticStatus.OK


def test_three_cameras_name_every_silent_one_and_the_live_ones():
    diag = NodeDiagnostics("test", camera_timeout_s=1.0, cameras=3)
    diag.camera_info_error = [None] * 3
    diag.started_s = 100.0
    assert diag.live_cameras(100.5) == {0, 1, 2}  # nobody sent yet: all wait for camera_timeout
    for k in range(5):
        diag.keypoints_in(0, 1_000_000_000 + k, now_s=101.0 + 0.1 * k)
        diag.keypoints_in(1, 1_000_000_000 + k, now_s=101.0 + 0.1 * k)
    assert diag.live_cameras(101.5) == {0, 1}  # camera 2 never sent, over a second after start-up
    level, message, values = status(diag, 101.5)
    assert level == DiagnosticStatus.WARN
    assert "cam2 silent: no keypoints received yet while cam0, cam1 publish" in message
    assert "frames in: cam0 5, cam1 5, cam2 0" in message
    assert values["silent_camera"] == "cam2" and values["frames_in_cam2"] == "0"
    diag.keypoints_in(2, 2_000_000_000, now_s=101.6)
    assert status(diag, 101.7)[0] == DiagnosticStatus.OK and diag.live_cameras(101.7) == {0, 1, 2}
    level, message, values = status(diag, 102.55)  # cameras 0 and 1 stopped at 101.4, camera 2 sent at 101.6
    assert values["silent_camera"] == "cam0,cam1" and "cam0 silent" in message and "cam1 silent" in message


def test_a_partial_camera_is_named_with_both_counts():
    """Issue 18: a camera that keeps sending, but only half its keypoints (never quiet for camera_timeout), is WARN
    and named; once it catches up the status is OK again."""
    diag = calibrated()
    for k in range(90):  # 3 s: cam0 at 30 Hz, cam1 at 15 Hz
        diag.keypoints_in(0, k, now_s=100.0 + k / 30)
        if k % 2 == 0:
            diag.keypoints_in(1, k, now_s=100.0 + k / 30)
    level, message, values = status(diag, 103.0)
    assert level == DiagnosticStatus.WARN and message.startswith("cam1 partial: ") and "from cam0" in message
    assert values["partial_camera"] == "cam1" and values["silent_camera"] == ""
    assert int(values["arrivals_2s_cam0"]) == pytest.approx(2 * int(values["arrivals_2s_cam1"]), abs=2)
    for k in range(90, 180):  # both at 30 Hz again
        for camera in (0, 1):
            diag.keypoints_in(camera, k, now_s=100.0 + k / 30)
    level, _, values = status(diag, 106.0)
    assert level == DiagnosticStatus.OK and values["partial_camera"] == ""

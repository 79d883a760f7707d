"""Issue 18: the detector's input accounting without ROS: received fraction against camera_info, a declared rate
or the image stamps; busy drops apart from transport loss; the one-item mailbox; the DDS profile choice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cvpose_ros.detection.input_monitor import ERROR, OK, WARN, InputMonitor
from cvpose_ros.detection.latest_slot import LatestSlot
from cvpose_ros.ros import dds_profile

PERIOD_NS = 33_333_333


def feed(monitor: InputMonitor, frames: int, keep, start_s: float = 0.0, info: bool = True, lag_s: float = 0.08,
         busy_every: int = 0) -> float:
    """Camera at 30 Hz: camera_info at t, the image `lag_s` later when `keep(i)`; returns the time after the last."""
    t = start_s
    for i in range(frames):
        t = start_s + i / 30.0
        stamp = 1_000_000_000 + i * PERIOD_NS
        if info:
            monitor.info_arrived(stamp, t)
        if keep(i):
            monitor.image_arrived(stamp, t + lag_s)
            if busy_every and i % busy_every == 0:
                monitor.dropped_busy(t + lag_s)
    return t + lag_s


def test_everything_arrives_is_ok_even_with_images_in_flight():
    monitor = InputMonitor()
    now = feed(monitor, 150, lambda i: True, lag_s=0.3)
    report = monitor.report(now)
    assert report.level == OK and report.kind == "ok", report.message
    assert report.values["rate_source"] == "camera_info" and float(report.values["received_fraction"]) == 1.0
    assert float(report.values["camera_rate_hz"]) == pytest.approx(30.0, abs=0.1)
    # early, before min_expected images were expected: no verdict on loss yet
    early = InputMonitor()
    report = early.report(feed(early, 5, lambda i: True, lag_s=0.3))
    assert report.level == OK and report.values["received_fraction"] == "unknown"


@pytest.mark.parametrize(("keep_one_in", "expected_fraction"), [(2, 0.5), (10, 0.1), (75, 2 / 150)])
def test_transport_loss_against_camera_info_warns_with_the_hint(keep_one_in, expected_fraction):
    monitor = InputMonitor()
    now = feed(monitor, 150, lambda i: i % keep_one_in == 0)
    report = monitor.report(now)
    assert report.level == WARN and report.kind == "transport"
    assert float(report.values["received_fraction"]) == pytest.approx(expected_fraction, abs=0.02)
    assert "fastdds_images.xml" in report.message and "use_compressed" in report.message
    assert "camera_info" in report.message


def test_no_image_while_camera_info_arrives_is_an_error_and_recovers():
    monitor = InputMonitor()
    now = feed(monitor, 60, lambda i: False)
    report = monitor.report(now)
    assert report.level == ERROR and report.kind == "transport" and "30 Hz" in report.message
    # the link comes back: after a full window the verdict is OK again
    now = feed(monitor, 200, lambda i: True, start_s=now + 0.1)
    assert monitor.report(now).level == OK


def test_nothing_at_all_is_waiting():
    report = InputMonitor().report(3.0)
    assert report.level == WARN and report.kind == "waiting" and report.message == "no images received yet"


def test_declared_rate_and_stamp_spacing_without_camera_info():
    declared = InputMonitor(expected_rate=30.0)
    now = feed(declared, 150, lambda i: i % 3 == 0, info=False)
    report = declared.report(now)
    assert report.values["rate_source"] == "expected_rate" and report.level == WARN
    assert float(report.values["received_fraction"]) == pytest.approx(1 / 3, abs=0.05)
    # stamps only: 2 of every 3 arrive, so consecutive frames show the camera's period
    stamps = InputMonitor()
    report = stamps.report(feed(stamps, 150, lambda i: i % 3 != 0, info=False))
    assert report.values["rate_source"] == "image stamps" and report.level == WARN
    assert float(report.values["camera_rate_hz"]) == pytest.approx(30.0, abs=0.1)
    assert float(report.values["received_fraction"]) == pytest.approx(2 / 3, abs=0.02)


def test_busy_drops_are_reported_apart_from_transport_loss():
    monitor = InputMonitor()
    now = feed(monitor, 150, lambda i: True, busy_every=2)  # every image arrives, half are replaced unprocessed
    report = monitor.report(now)
    assert report.level == WARN and report.kind == "busy" and "slower than the camera" in report.message
    assert float(report.values["received_fraction"]) == 1.0
    assert float(report.values["processed_fraction"]) == pytest.approx(0.5, abs=0.01)
    assert report.values["busy_dropped_total"] == "75"


def test_monitor_rejects_bad_settings():
    with pytest.raises(ValueError):
        InputMonitor(min_fraction=1.5)
    with pytest.raises(ValueError):
        InputMonitor(window_s=0.2, grace_s=0.5)


def test_latest_slot_keeps_the_newest_and_counts_replacements():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False and slot.put(2) is True  # 1 was never taken: a busy drop
    assert slot.take() == 2 and slot.take(timeout=0.01) is None
    got = []
    consumer = threading.Thread(target=lambda: got.append(slot.take(timeout=5.0)))
    consumer.start()
    slot.put(3)
    consumer.join(5.0)
    assert got == [3]
    closer = threading.Thread(target=lambda: got.append(slot.take()))
    closer.start()
    slot.close()
    closer.join(5.0)
    assert got == [3, None] and not closer.is_alive() and slot.put(4) is False and slot.take() is None


def test_profile_is_used_only_when_the_user_chose_none(tmp_path: Path):
    shipped = dds_profile.shipped_profile()
    assert shipped is not None and shipped.is_file()
    env: dict[str, str] = {}
    assert dds_profile.use_default_profile(env, cwd=tmp_path) == str(shipped)
    assert env == {dds_profile.PROFILE_ENV: str(shipped)}
    for name in (dds_profile.PROFILE_ENV, dds_profile.LEGACY_PROFILE_ENV):
        own = {name: "/robot/my_profile.xml"}
        assert dds_profile.use_default_profile(own, cwd=tmp_path) is None
        assert own == {name: "/robot/my_profile.xml"}  # never overridden
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    env = {}
    assert dds_profile.use_default_profile(env, cwd=tmp_path) is None and env == {}  # Fast DDS loads that one
    assert dds_profile.profile_to_set("/x.xml", {dds_profile.PROFILE_ENV: "/own.xml"}) == "/x.xml"  # launch arg


def test_the_path_printer_gives_the_one_line_for_a_camera_driver():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "cvpose_ros.ros.dds_profile"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert Path(out) == dds_profile.shipped_profile()


def test_no_guess_from_stamps_while_camera_info_is_arriving():
    """At the start of a stream camera_info is still within the grace period; a publisher catching up sends
    images with close stamps. Neither may turn into a loss verdict (a false WARN seen on a loaded machine)."""
    monitor = InputMonitor()
    for i in range(12):  # 12 images in 0.2 s, stamps 1 ms apart, their camera_info just arrived
        monitor.info_arrived(i * 1_000_000, 0.01 * i)
        monitor.image_arrived(i * 1_000_000, 0.01 * i + 0.005)
    report = monitor.report(0.2)
    assert report.level == OK and report.values["rate_source"] == "camera_info"
    assert report.values["received_fraction"] == "unknown"


def test_stamp_spacing_follows_the_window():
    """A camera that slows from 30 to 10 Hz is not reported as losing images once the window holds 10 Hz only."""
    monitor = InputMonitor()
    now = feed(monitor, 60, lambda i: True, info=False)
    stamp0 = 1_000_000_000 + 60 * PERIOD_NS
    for i in range(60):
        now += 0.1
        monitor.image_arrived(stamp0 + i * 100_000_000, now)
    report = monitor.report(now)
    assert report.level == OK and float(report.values["camera_rate_hz"]) == pytest.approx(10.0, abs=0.1)


def test_camera_info_from_a_separate_publisher_is_not_the_cameras_rate():
    """cvpose-camera-info publishes at 5 Hz with its own stamps: the images' own spacing is the reference."""
    monitor = InputMonitor()
    now = 0.0
    for i in range(150):
        now = i / 30.0
        if i % 6 == 0:
            monitor.info_arrived(7 + i * PERIOD_NS, now)  # its own clock reading: never an image's stamp
        if i % 2 == 0 or i % 9 == 0:  # about 56% of the images arrive, with some consecutive pairs
            monitor.image_arrived(1_000_000_000 + i * PERIOD_NS, now + 0.05)
    report = monitor.report(now + 0.05)
    assert report.values["rate_source"] == "image stamps" and report.level == WARN
    assert float(report.values["camera_rate_hz"]) == pytest.approx(30.0, abs=0.1)
    assert float(report.values["received_fraction"]) == pytest.approx(0.56, abs=0.03)

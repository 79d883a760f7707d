"""ArrivalRates: a camera sending part of its keypoints is named; silent, balanced and idle rigs are not."""

import pytest

from cvpose_ros.pipeline.arrival_rates import ArrivalRates


def _feed(rates: ArrivalRates, hz: list[float], seconds: float, start: float = 0.0) -> float:
    """Each camera sends at its rate for `seconds`; returns the end time."""
    events = sorted((start + k / f, c) for c, f in enumerate(hz) if f > 0 for k in range(int(seconds * f)))
    for t, c in events:
        rates.note(c, t)
    return start + seconds


def test_a_camera_at_half_rate_is_named_with_both_counts():
    rates = ArrivalRates(2)
    now = _feed(rates, [30.0, 15.0], 3.0)
    partial = rates.partial(now)
    assert partial is not None and (partial.camera, partial.best_camera) == (1, 0)
    assert partial.best_count == pytest.approx(60, abs=1) and partial.count == pytest.approx(30, abs=1)
    assert partial.describe().startswith("cam1 partial: ") and "from cam0" in partial.describe()
    assert partial.describe(["left", "right"]).startswith("right partial")


def test_balanced_silent_and_idle_cameras_are_not_partial():
    rates = ArrivalRates(3)
    assert rates.partial(_feed(rates, [30.0, 29.0, 30.0], 3.0)) is None  # small jitter
    silent = ArrivalRates(2)
    assert silent.partial(_feed(silent, [30.0, 0.0], 3.0)) is None  # none at all: the silent-camera check's case
    idle = ArrivalRates(2, min_messages=10)
    assert idle.partial(_feed(idle, [3.0, 1.0], 2.0)) is None  # too few messages to judge
    late = ArrivalRates(2, window_s=2.0)
    now = _feed(late, [30.0, 0.0], 3.0)
    late.note(1, now)
    assert late.partial(now + 0.5) is None  # cam1 just started: not judged until it has sent for a window


def test_the_window_forgets_old_losses():
    rates = ArrivalRates(2, window_s=2.0)
    now = _feed(rates, [30.0, 10.0], 3.0)
    assert rates.partial(now).camera == 1
    now = _feed(rates, [30.0, 30.0], 3.0, start=now)
    assert rates.partial(now) is None and rates.counts(now) == [60, 60]


def test_bad_settings_are_refused():
    for kwargs in ({"num_cameras": 0}, {"num_cameras": 2, "window_s": 0}, {"num_cameras": 2, "min_fraction": 1.5},
                   {"num_cameras": 2, "min_messages": 0}):
        with pytest.raises(ValueError, match="bad arrival-rate settings"):
            ArrivalRates(**kwargs)

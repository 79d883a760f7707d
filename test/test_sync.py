"""Approximate-time pairing of the two keypoint streams (no rclpy)."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.pipeline.sync import ApproximateTimeSync, SyncEvent

MS = 1_000_000


def test_exact_and_within_slop_pairs():
    sync = ApproximateTimeSync(slop_s=0.005, queue_size=5)
    assert sync.push(0, 100 * MS, "a0") == (None, [SyncEvent.QUEUED])
    pair, _ = sync.push(1, 100 * MS, "a1")
    assert (pair.stamp_ns, pair.cam0.payload, pair.cam1.payload) == (100 * MS, "a0", "a1")
    sync.push(1, 133 * MS, "b1")
    pair, _ = sync.push(0, 137 * MS, "b0")  # 4 ms apart
    assert pair.stamp_ns == 137 * MS and pair.cam1.payload == "b1"
    assert sync.pending() == (0, 0) and sync.stats.pairs == 2


def test_beyond_slop_does_not_pair():
    sync = ApproximateTimeSync(slop_s=0.005, queue_size=5)
    sync.push(0, 100 * MS, "a0")
    pair, events = sync.push(1, 106 * MS, "a1")
    assert pair is None and events == [SyncEvent.QUEUED]
    assert sync.pending() == (1, 1)


def test_nearest_candidate_wins_and_older_ones_are_dropped():
    sync = ApproximateTimeSync(slop_s=0.010, queue_size=10)
    for stamp in (90, 96, 103):
        sync.push(1, stamp * MS, stamp)
    pair, events = sync.push(0, 101 * MS, "x")
    assert pair.cam1.payload == 103  # |101-103| < |101-96|
    assert events.count(SyncEvent.DROPPED) == 2 and sync.stats.dropped == 2
    assert sync.pending() == (0, 0)


def test_queue_is_bounded():
    sync = ApproximateTimeSync(slop_s=0.001, queue_size=3)
    events = [e for t in range(10) for e in sync.push(0, t * 100 * MS, t)[1]]
    assert events.count(SyncEvent.DROPPED) == 7
    assert sync.pending() == (3, 0)
    pair, _ = sync.push(1, 900 * MS, "late")
    assert pair.cam0.payload == 9


def test_out_of_order_and_duplicates_are_rejected():
    sync = ApproximateTimeSync(slop_s=0.002, queue_size=5)
    sync.push(0, 200 * MS, "a")
    assert sync.push(0, 200 * MS, "dup") == (None, [SyncEvent.OUT_OF_ORDER])
    assert sync.push(0, 150 * MS, "old") == (None, [SyncEvent.OUT_OF_ORDER])
    sync.push(1, 200 * MS, "b")  # pairs
    assert sync.push(1, 100 * MS, "older than the pair") == (None, [SyncEvent.OUT_OF_ORDER])
    assert sync.stats.out_of_order == 3
    sync.reset()
    assert sync.push(0, 100 * MS, "after reset")[1] == [SyncEvent.QUEUED]


def test_jittered_lossy_streams_give_ordered_pairs_within_slop():
    rng = np.random.default_rng(0)
    slop = 0.004
    sync = ApproximateTimeSync(slop_s=slop, queue_size=4)
    frames = np.arange(300) * 33 * MS
    arrivals = []
    for cam in (0, 1):
        keep = rng.random(frames.size) > 0.1  # each camera loses 10% of its frames
        stamps = frames[keep] + rng.integers(-1 * MS, 1 * MS, keep.sum())
        arrivals += [(s + rng.integers(0, 5 * MS), cam, s) for s in stamps]  # transport delay reorders cameras
    pairs = []
    for _, cam, stamp in sorted(arrivals):
        pair, _ = sync.push(cam, int(stamp), int(stamp))
        if pair is not None:
            pairs.append(pair)
    stamps0 = np.array([p.cam0.stamp_ns for p in pairs])
    gaps = np.abs(stamps0 - np.array([p.cam1.stamp_ns for p in pairs]))
    assert (gaps <= slop * 1e9).all() and (np.diff(stamps0) > 0).all()
    assert len(pairs) >= 0.75 * frames.size  # about 0.9 * 0.9 of the frames exist in both streams


@pytest.mark.parametrize("slop,queue", [(-0.1, 5), (float("nan"), 5), (0.01, 0)])
def test_invalid_settings_raise(slop, queue):
    with pytest.raises(ValueError):
        ApproximateTimeSync(slop, queue)


def test_camera_index_is_checked():
    with pytest.raises(ValueError, match="camera index"):
        ApproximateTimeSync(0.01, 2).push(2, 0, None)


# ---------------------------------------------------------------------------------------------------------------
# Future stamps (issue 11): one message must not move "latest" into the future
S = 1_000_000_000


def test_far_future_stamp_is_rejected_and_changes_nothing():
    sync = ApproximateTimeSync(slop_s=0.01, queue_size=5, max_future_s=0.5)
    now = 1000 * S
    assert sync.push(0, (2**31 - 1) * S, "poison", now_ns=now) == (None, [SyncEvent.FUTURE])
    assert sync.stats.future == 1 and sync.pending() == (0, 0)
    sync.push(0, now, "a0", now_ns=now)  # the next good frame of the same camera still pairs
    pair, _ = sync.push(1, now, "a1", now_ns=now)
    assert pair is not None and pair.cam0.payload == "a0" and sync.stats.out_of_order == 0


def test_a_stamp_within_max_future_blocks_the_camera_at_most_that_long():
    sync = ApproximateTimeSync(slop_s=0.01, queue_size=5, max_future_s=0.5)
    now = 1000 * S
    assert sync.push(0, now + 3 * S, "3 s ahead", now_ns=now)[1] == [SyncEvent.FUTURE]
    assert sync.push(0, now + S // 2, "0.5 s ahead", now_ns=now)[1] == [SyncEvent.QUEUED]  # accepted: the limit
    assert sync.push(0, now + S // 10, "behind it", now_ns=now + S // 10)[1] == [SyncEvent.OUT_OF_ORDER]
    assert sync.blocked_by == ("cam0's previous message", now + S // 2)  # names the message at fault
    assert sync.push(0, now + S // 2 + 1, "after the limit", now_ns=now + S // 2 + 1)[1] == [SyncEvent.QUEUED]


def test_without_a_clock_nothing_is_future():
    sync = ApproximateTimeSync(slop_s=0.01, queue_size=5, max_future_s=0.5)
    assert sync.push(0, (2**31 - 1) * S, "x")[1] == [SyncEvent.QUEUED]  # bag tools pass no now_ns


def test_out_of_order_names_the_blocking_stamp_and_misses_measure_the_offset():
    sync = ApproximateTimeSync(slop_s=0.010, queue_size=5)
    sync.push(0, 100 * MS, "a0")
    sync.push(1, 101 * MS, "a1")
    assert sync.push(1, 85 * MS, "old")[1] == [SyncEvent.OUT_OF_ORDER]
    assert sync.blocked_by == ("cam1's previous message", 101 * MS)
    assert sync.push(0, 90 * MS, "old")[1] == [SyncEvent.OUT_OF_ORDER]
    assert sync.blocked_by == ("cam0's previous message", 100 * MS)
    sync.push(0, 133 * MS, "b0")
    assert sync.nearest_miss_ns is None  # nothing queued for camera 1
    sync.push(1, 160 * MS, "b1")
    assert sync.nearest_miss_ns == 27 * MS  # the cameras are 27 ms apart: beyond the 10 ms slop

"""Approximate-time pairing of two keypoint streams (camera 0 and camera 1).

Plain Python (no rclpy) so it is tested on its own and reused by bag tools. The policy is greedy and
latency-first: a message is paired as soon as the other camera's queue holds a message within `slop` of its stamp
(the nearest one wins); everything older than a formed pair can no longer be paired and is dropped. Each queue is
bounded (`queue_size`, oldest dropped first). Messages older than the last one of their camera (out of order) or
older than the last emitted pair are rejected, so outputs are strictly increasing in time.

Given the current time (`now_ns`), a message stamped more than `max_future_s` ahead of it is rejected before it
touches any state: otherwise one bad stamp (e.g. `sec = 2**31 - 1`) would become the camera's "latest" and every
later, correct message would be out of order. The worst lock-out a camera can suffer is thus `max_future_s`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

NS_PER_S = 1_000_000_000


class SyncEvent(StrEnum):
    """Why a message did not (yet) produce a pair; the node counts these in /diagnostics."""

    QUEUED = "queued"              # waiting for the other camera
    OUT_OF_ORDER = "out_of_order"  # stamp not newer than this camera's previous one or the last pair
    DROPPED = "sync_drop"          # pushed out of a full queue or skipped over by a newer pair
    FUTURE = "future_stamp"        # stamped further ahead of the current time than max_future_s


@dataclass
class StampedItem:
    """One message of one camera: its stamp in nanoseconds and an opaque payload."""

    stamp_ns: int
    payload: Any


@dataclass
class SyncedPair:
    """Two messages whose stamps agree within the slop; `stamp_ns` is camera 0's stamp (the output stamp)."""

    stamp_ns: int
    cam0: StampedItem
    cam1: StampedItem


@dataclass
class SyncStats:
    """Running counters of the synchroniser."""

    pairs: int = 0
    dropped: int = 0
    out_of_order: int = 0
    future: int = 0


class ApproximateTimeSync:
    """Pairs messages of two cameras whose stamps differ by at most `slop_s` seconds.

    After each push, `blocked_by` names what made a message out of order (the stamp it had to beat) and
    `nearest_miss_ns` holds how far the nearest message of the other camera was from a message that found no
    partner (None when the other queue was empty): the measured offset between the cameras, for the drop warning.
    """

    def __init__(self, slop_s: float, queue_size: int, max_future_s: float | None = None) -> None:
        if not slop_s >= 0.0:
            raise ValueError(f"sync slop must be >= 0 seconds, got {slop_s}")
        if queue_size < 1:
            raise ValueError(f"sync queue_size must be >= 1, got {queue_size}")
        if max_future_s is not None and not max_future_s >= 0.0:
            raise ValueError(f"max_future_s must be >= 0 seconds, got {max_future_s}")
        self.slop_ns = int(round(slop_s * NS_PER_S))
        self.queue_size = int(queue_size)
        self.max_future_ns = None if max_future_s is None else int(round(max_future_s * NS_PER_S))
        self._queues: tuple[deque[StampedItem], deque[StampedItem]] = (deque(), deque())
        self._last_stamp: list[int | None] = [None, None]
        self._last_pair_stamp: int | None = None
        self.stats = SyncStats()
        self.blocked_by: tuple[str, int] | None = None
        self.nearest_miss_ns: int | None = None

    def push(self, camera: int, stamp_ns: int, payload: Any,
             now_ns: int | None = None) -> tuple[SyncedPair | None, list[SyncEvent]]:
        """Add a message of `camera` (0 or 1). Returns the pair it completes (or None) and the events it caused.

        With `now_ns` (the clock the stamps refer to) and `max_future_s`, a message stamped beyond
        `now_ns + max_future_s` is rejected as FUTURE and changes nothing.
        """
        if camera not in (0, 1):
            raise ValueError(f"camera index must be 0 or 1, got {camera}")
        self.blocked_by, self.nearest_miss_ns = None, None
        if now_ns is not None and self.max_future_ns is not None and stamp_ns > now_ns + self.max_future_ns:
            self.stats.future += 1
            return None, [SyncEvent.FUTURE]
        events: list[SyncEvent] = []
        last = self._last_stamp[camera]
        if last is not None and stamp_ns <= last:
            self.blocked_by = (f"cam{camera}'s previous message", last)
        elif self._last_pair_stamp is not None and stamp_ns <= self._last_pair_stamp - self.slop_ns:
            self.blocked_by = ("the last pair", self._last_pair_stamp)
        if self.blocked_by is not None:
            self.stats.out_of_order += 1
            return None, [SyncEvent.OUT_OF_ORDER]
        self._last_stamp[camera] = stamp_ns
        item = StampedItem(stamp_ns, payload)
        other = self._queues[1 - camera]
        match = self._nearest(other, stamp_ns)
        if match is None:
            if other:
                self.nearest_miss_ns = min(abs(c.stamp_ns - stamp_ns) for c in other)
            own = self._queues[camera]
            own.append(item)
            while len(own) > self.queue_size:
                own.popleft()
                events.append(self._drop())
            events.append(SyncEvent.QUEUED)
            return None, events
        # Everything in the other queue up to the match, and everything queued for this camera, is older than the
        # pair and can never pair with a newer message in a way that keeps outputs ordered.
        while other and other[0] is not match:
            other.popleft()
            events.append(self._drop())
        other.popleft()
        own = self._queues[camera]
        while own:
            own.popleft()
            events.append(self._drop())
        cam0, cam1 = (item, match) if camera == 0 else (match, item)
        pair = SyncedPair(cam0.stamp_ns, cam0, cam1)
        self._last_pair_stamp = max(cam0.stamp_ns, cam1.stamp_ns)
        self.stats.pairs += 1
        return pair, events

    def pending(self) -> tuple[int, int]:
        """Number of messages waiting in each camera's queue."""
        return len(self._queues[0]), len(self._queues[1])

    def reset(self) -> None:
        """Forget queued messages and stamp history (e.g. after the clock jumped back in a replay)."""
        for q in self._queues:
            q.clear()
        self._last_stamp = [None, None]
        self._last_pair_stamp = None

    def _nearest(self, queue: deque[StampedItem], stamp_ns: int) -> StampedItem | None:
        """The queued item closest in time to `stamp_ns` if it lies within the slop."""
        best: StampedItem | None = None
        best_dt = self.slop_ns + 1
        for candidate in queue:
            dt = abs(candidate.stamp_ns - stamp_ns)
            if dt < best_dt:
                best, best_dt = candidate, dt
        return best

    def _drop(self) -> SyncEvent:
        self.stats.dropped += 1
        return SyncEvent.DROPPED

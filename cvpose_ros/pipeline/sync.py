"""Approximate-time grouping of N keypoint streams (camera 0, camera 1, ...; two by default).

Plain Python (no rclpy) so it is tested on its own and reused by bag tools. The policy is greedy and
latency-first: a message completes a frame as soon as every other required camera's queue holds a message within
`slop` of its stamp (the nearest one of each wins); everything older than a formed frame can no longer be used and
is dropped. With two cameras a frame is a pair. A camera can be left out of the required set (`set_required`: the
node does so for a camera that went silent in a rig of three or more), its slot in the frame is then None. Each queue is
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
    """One message per camera whose stamps agree within the slop (None for a camera not required); `stamp_ns` is
    the stamp of the first camera present (camera 0's normally: the output stamp)."""

    stamp_ns: int
    items: tuple[StampedItem | None, ...]

    @property
    def cam0(self) -> StampedItem | None:
        return self.items[0]

    @property
    def cam1(self) -> StampedItem | None:
        return self.items[1]



@dataclass
class SyncStats:
    """Running counters of the synchroniser."""

    pairs: int = 0
    dropped: int = 0
    out_of_order: int = 0
    future: int = 0


class ApproximateTimeSync:
    """Groups messages of `cameras` cameras (2: pairs) whose stamps differ from the completing message's by at
    most `slop_s` seconds.

    After each push, `blocked_by` names what made a message out of order (the stamp it had to beat) and
    `nearest_miss_ns` holds how far the nearest message of a camera that had none within the slop was from a
    message that completed no frame (None when its queue was empty): the measured offset between the cameras, for
    the drop warning.
    """

    def __init__(self, slop_s: float, queue_size: int, max_future_s: float | None = None, cameras: int = 2) -> None:
        if not slop_s >= 0.0:
            raise ValueError(f"sync slop must be >= 0 seconds, got {slop_s}")
        if queue_size < 1:
            raise ValueError(f"sync queue_size must be >= 1, got {queue_size}")
        if max_future_s is not None and not max_future_s >= 0.0:
            raise ValueError(f"max_future_s must be >= 0 seconds, got {max_future_s}")
        if cameras < 2:
            raise ValueError(f"sync needs at least 2 cameras, got {cameras}")
        self.cameras = int(cameras)
        self.slop_ns = int(round(slop_s * NS_PER_S))
        self.queue_size = int(queue_size)
        self.max_future_ns = None if max_future_s is None else int(round(max_future_s * NS_PER_S))
        self._queues: tuple[deque[StampedItem], ...] = tuple(deque() for _ in range(self.cameras))
        self._last_stamp: list[int | None] = [None] * self.cameras
        self.required: frozenset[int] = frozenset(range(self.cameras))
        self._last_pair_stamp: int | None = None
        self.stats = SyncStats()
        self.blocked_by: tuple[str, int] | None = None
        self.nearest_miss_ns: int | None = None

    def push(self, camera: int, stamp_ns: int, payload: Any,
             now_ns: int | None = None) -> tuple[SyncedPair | None, list[SyncEvent]]:
        """Add a message of `camera` (0..cameras-1). Returns the frame it completes (or None) and the events it
        caused. A message of a camera outside the required set is queued but completes nothing itself.

        With `now_ns` (the clock the stamps refer to) and `max_future_s`, a message stamped beyond
        `now_ns + max_future_s` is rejected as FUTURE and changes nothing.
        """
        if not 0 <= camera < self.cameras:
            raise ValueError(f"camera index must be 0..{self.cameras - 1}, got {camera}")
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
        own = self._queues[camera]
        others = [c for c in sorted(self.required) if c != camera]
        matches = {c: self._nearest(self._queues[c], stamp_ns) for c in others}
        missing = [c for c in others if matches[c] is None]
        if camera not in self.required or missing:
            misses = [min(abs(q.stamp_ns - stamp_ns) for q in self._queues[c]) for c in missing if self._queues[c]]
            if misses:
                self.nearest_miss_ns = max(misses)
            own.append(item)
            while len(own) > self.queue_size:
                own.popleft()
                events.append(self._drop())
            events.append(SyncEvent.QUEUED)
            return None, events
        # Everything in another queue up to its match, and everything queued for this camera, is older than the
        # frame and can never join a newer message in a way that keeps outputs ordered.
        for c in others:
            queue, match = self._queues[c], matches[c]
            while queue and queue[0] is not match:
                queue.popleft()
                events.append(self._drop())
            queue.popleft()
        while own:
            own.popleft()
            events.append(self._drop())
        matches[camera] = item
        items = tuple(matches.get(c) for c in range(self.cameras))
        stamps = [i.stamp_ns for i in items if i is not None]
        pair = SyncedPair(stamps[0], items)
        self._last_pair_stamp = max(stamps)
        self.stats.pairs += 1
        return pair, events

    def set_required(self, cameras: set[int] | frozenset[int]) -> None:
        """Cameras a frame must contain (at least two). A camera left out keeps its bounded queue; its old messages
        are dropped once it is required again and a newer frame completes."""
        required = frozenset(int(c) for c in cameras)
        if len(required) < 2 or not required <= set(range(self.cameras)):
            raise ValueError(f"a frame needs at least 2 of cameras 0..{self.cameras - 1}, got {sorted(required)}")
        self.required = required

    def pending(self) -> tuple[int, ...]:
        """Number of messages waiting in each camera's queue."""
        return tuple(len(q) for q in self._queues)

    def reset(self) -> None:
        """Forget queued messages and stamp history (e.g. after the clock jumped back in a replay)."""
        for q in self._queues:
            q.clear()
        self._last_stamp = [None] * self.cameras
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

"""A one-item mailbox between the thread that receives images and the thread that runs the detector.

Receiving never waits for detection, so every image the transport delivers is seen (and counted); when the
detector is slower than the camera, a newer image replaces the waiting one and the replacement is counted as a
busy drop, which the node reports apart from images lost in transport.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item: `put` replaces a waiting item (returns True then), `take` waits for one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store `item`; True when it replaced one the consumer had not taken (a busy drop)."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self._condition.notify()
        return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The waiting item (emptying the slot), waiting up to `timeout` s; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the consumer for good; later `take` calls return None."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

"""Keyed timers for the coordinators (:mod:`~odradek.broker.coordinators.runtime`): one pending
callback per key.

The group coordinator, for instance, arms a timer per member (session expiry), per group (join
phase, sync phase) and one for the cleanup of empty groups. Scheduling a key that is already armed replaces the
earlier callback, which is how a heartbeat "pushes back" a member's expiry. Two implementations
share this interface:

* :class:`LoopTimer` runs callbacks on the asyncio event loop that owns the broker
  (``loop.call_later``); the loop is looked up when the first timer is armed, so the coordinator
  can be built before the loop runs.
* :class:`ManualTimer` keeps the deadlines in a heap against a clock the test moves with
  :meth:`ManualTimer.advance`; no sleeps, no loop.

Ownership: each is owned by one :class:`~odradek.broker.coordinators.runtime.CoordinatorRuntime`
and used from its thread (the event loop) only.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Callable, Hashable


class LoopTimer:
    """Timers on the running asyncio loop; ``now_ms`` is the wall clock.

    Timers armed while no loop runs (a broker opened, and its groups replayed, before serving)
    wait in ``_deferred`` with their deadline and are handed to the loop by the next call made
    from it."""

    def __init__(self) -> None:
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}
        self._deferred: dict[Hashable, tuple[int, Callable[[], None]]] = {}

    def now_ms(self) -> int:
        # Wall-clock, as Kafka's time.milliseconds(): it stamps commits and group records that
        # outlive the process (retention compares them with a later clock). Delays do not use
        # it: the loop's own monotonic clock runs them.
        return time.time_ns() // 1_000_000

    def schedule(self, key: Hashable, delay_ms: int, callback: Callable[[], None]) -> None:
        self.cancel(key)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._deferred[key] = (self.now_ms() + max(delay_ms, 0), callback)
            return
        if self._deferred:
            deferred, self._deferred = self._deferred, {}
            for deferred_key, (deadline, deferred_callback) in deferred.items():
                self._handles[deferred_key] = loop.call_later(max(deadline - self.now_ms(), 0) / 1000, self._fire,
                                                              deferred_key, deferred_callback)
        self._handles[key] = loop.call_later(max(delay_ms, 0) / 1000, self._fire, key, callback)

    def _fire(self, key: Hashable, callback: Callable[[], None]) -> None:
        self._handles.pop(key, None)
        callback()

    def cancel(self, key: Hashable) -> None:
        self._deferred.pop(key, None)
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def is_scheduled(self, key: Hashable) -> bool:
        return key in self._handles or key in self._deferred

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self._deferred.clear()


class ManualTimer:
    """Timers against a clock that only moves when the test calls :meth:`advance`."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._heap: list[tuple[int, int, Hashable]] = []
        self._armed: dict[Hashable, tuple[int, Callable[[], None]]] = {}  # key -> (sequence, callback)
        self._sequence = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def schedule(self, key: Hashable, delay_ms: int, callback: Callable[[], None]) -> None:
        sequence = next(self._sequence)
        self._armed[key] = (sequence, callback)
        heapq.heappush(self._heap, (self._now + max(delay_ms, 0), sequence, key))

    def cancel(self, key: Hashable) -> None:
        self._armed.pop(key, None)

    def is_scheduled(self, key: Hashable) -> bool:
        return key in self._armed

    def cancel_all(self) -> None:
        self._armed.clear()
        self._heap.clear()

    def deadline(self, key: Hashable) -> int | None:
        """When ``key`` fires (absolute ms), or None if it is not armed."""
        armed = self._armed.get(key)
        if armed is None:
            return None
        for deadline, sequence, _heap_key in self._heap:
            if sequence == armed[0]:
                return deadline
        return None  # pragma: no cover - every armed key has a heap entry

    def advance(self, ms: int = 0) -> None:
        """Move the clock by ``ms`` and fire, in deadline order, every timer due by then
        (including timers that the fired callbacks arm within the window)."""
        target = self._now + ms
        while self._heap and self._heap[0][0] <= target:
            deadline, sequence, key = heapq.heappop(self._heap)
            armed = self._armed.get(key)
            if armed is None or armed[0] != sequence:
                continue  # cancelled or replaced by a later schedule
            del self._armed[key]
            self._now = max(self._now, deadline)
            armed[1]()
        self._now = target

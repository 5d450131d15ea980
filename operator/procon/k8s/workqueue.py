"""A work queue of connection keys with priorities, served by a bounded set of workers.

The shape of client-go's workqueue (and controller-runtime's priority queue), for asyncio:

- a key (namespace, name) is queued at most once; queuing it again only raises its priority;
- one key is never handed to two workers at once: a key queued while a worker has it is
  remembered as dirty and handed out again after that worker is done;
- keys become ready in priority order, first in first out within a priority: a change
  (a spec edit, a new connection, a Secret change or deletion) before a retry, a retry
  before a periodic drift check, so a wave of drift checks never delays a new connection;
- a key may be scheduled for later (a retry after its backoff, the next drift check): at
  most one schedule per key, the earlier and more urgent one wins.

Per key it keeps only the key itself in the structure that currently holds it; a key
forgotten (its connection gone) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

Key = tuple[str, str]  # (namespace, name)


class Priority(IntEnum):
    """Why a key is queued; lower is served first."""

    CHANGE = 0  # spec change, new connection, Secret change or deletion
    RETRY = 1  # after a transient failure's backoff
    DRIFT = 2  # the periodic drift check


class WorkQueue:
    """Keys waiting to be reconciled, now or at a set time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: tuple[deque[Key], ...] = tuple(deque() for _ in Priority)
        self._queued: dict[Key, Priority] = {}  # ready keys and the priority they wait at
        self._active: set[Key] = set()  # handed to a worker, not done yet
        self._dirty: dict[Key, Priority] = {}  # queued again while active
        self._scheduled: dict[Key, tuple[float, Priority]] = {}
        self._timers: list[tuple[float, int, Key]] = []  # heap; entries not in _scheduled are stale
        self._sequence = itertools.count()
        self._changed = asyncio.Event()  # something became ready, or a schedule moved earlier

    # --- adding -------------------------------------------------------------------

    def add(self, key: Key, priority: Priority) -> None:
        """Queue ``key`` now (or, if a worker has it, once that worker is done)."""
        self._scheduled.pop(key, None)  # queued now: the run schedules its own next one
        if key in self._active:
            self._dirty[key] = min(priority, self._dirty.get(key, priority))
            return
        waiting = self._queued.get(key)
        if waiting is not None and waiting <= priority:
            return
        self._queued[key] = priority
        self._ready[priority].append(key)  # an entry at the old, lower priority is skipped when met
        self._changed.set()

    def add_after(self, key: Key, delay: float, priority: Priority) -> None:
        """Queue ``key`` after ``delay`` seconds, unless it is queued or scheduled sooner already."""
        if delay <= 0:
            self.add(key, priority)
            return
        if key in self._queued or key in self._dirty:
            return  # it runs sooner anyway, and schedules its next run when it does
        due = self._clock() + delay
        current = self._scheduled.get(key)
        if current is not None and current[0] <= due:
            return
        self._scheduled[key] = (due, priority)
        heapq.heappush(self._timers, (due, next(self._sequence), key))
        self._changed.set()

    def forget(self, key: Key) -> None:
        """The connection is gone: drop the key everywhere but from a worker that has it."""
        self._queued.pop(key, None)
        self._dirty.pop(key, None)
        self._scheduled.pop(key, None)

    # --- serving ------------------------------------------------------------------

    async def get(self) -> Key:
        """The next ready key, most urgent first; the caller must call :meth:`done` with it."""
        while True:
            self._release_due()
            key = self._pop_ready()
            if key is not None:
                self._active.add(key)
                return key
            self._changed.clear()
            timeout = self._next_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def done(self, key: Key) -> None:
        """A worker finished ``key``: if it was queued meanwhile, it is ready again."""
        self._active.discard(key)
        priority = self._dirty.pop(key, None)
        if priority is not None:
            self.add(key, priority)
        # Always: a worker may be waiting for this very key, or for one queued while held.
        self._changed.set()

    def is_known(self, key: Key) -> bool:
        """Whether the key is queued, scheduled or being worked on."""
        return key in self._queued or key in self._scheduled or key in self._active or key in self._dirty

    def is_active(self, key: Key) -> bool:
        return key in self._active

    def state_entries(self) -> dict[str, int]:
        """Sizes of the per-key stores: each goes back to 0 when the connections go."""
        return {
            "queued": len(self._queued),
            "active": len(self._active),
            "dirty": len(self._dirty),
            "scheduled": len(self._scheduled),
        }

    def ready_count(self) -> int:
        """How many keys are ready now (schedules that came due included)."""
        self._release_due()
        return len(self._queued)

    # --- internals ----------------------------------------------------------------

    def _pop_ready(self) -> Key | None:
        for priority, ready in zip(Priority, self._ready, strict=True):
            skipped: list[Key] = []
            found: Key | None = None
            while ready:
                key = ready.popleft()
                if self._queued.get(key) != priority:
                    continue  # stale: forgotten, or raised to a more urgent priority
                if key in self._active:
                    skipped.append(key)  # held by hold(); stays queued behind it
                    continue
                del self._queued[key]
                found = key
                break
            ready.extendleft(reversed(skipped))
            if found is not None:
                return found
        return None

    def _release_due(self) -> None:
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            due, _, key = heapq.heappop(self._timers)
            scheduled = self._scheduled.get(key)
            if scheduled is None or scheduled[0] != due:
                continue  # stale entry
            del self._scheduled[key]
            self.add(key, scheduled[1])
        # Stale entries pile up only as fast as keys are rescheduled; drop them when they dominate.
        if len(self._timers) > 2 * len(self._scheduled) + 64:
            self._timers = [(d, s, k) for d, s, k in self._timers if self._scheduled.get(k, (None,))[0] == d]
            heapq.heapify(self._timers)

    def _next_due(self) -> float | None:
        while self._timers:
            due, _, key = self._timers[0]
            scheduled = self._scheduled.get(key)
            if scheduled is not None and scheduled[0] == due:
                return max(0.0, due - self._clock())
            heapq.heappop(self._timers)
        return None

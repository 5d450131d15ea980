"""Is the watch on ProcessorConnections still alive?

A healthy watch can be silent for hours in a quiet cluster, so "time since
the last event" cannot tell a dead watch from a calm one. What can: the
reconcile loops read every connection at least once a drift interval, and a
read that finds a version the watch never delivered, for long, means the
watch has stopped (a known kopf failure, docs/design/operator-conventions.md,
"Watches that go silent"). This class keeps that bookkeeping; the liveness probe asks it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Key = tuple[str, str]  # (namespace, name)


class UnwatchedChanges:
    """Changes a read has seen and the watch has not delivered yet, with since when."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._delivered: dict[Key, str] = {}
        self._unseen_since: dict[Key, float] = {}

    def delivered(self, key: Key, resource_version: str) -> None:
        """The watch delivered this version: whatever a read saw before is accounted for."""
        self._delivered[key] = resource_version
        self._unseen_since.pop(key, None)

    def read(self, key: Key, resource_version: str) -> None:
        """A read found this version; if the watch has not delivered it, start (or keep) the clock."""
        if self._delivered.get(key) != resource_version:
            self._unseen_since.setdefault(key, self._clock())

    def forget(self, key: Key) -> None:
        self._delivered.pop(key, None)
        self._unseen_since.pop(key, None)

    def state_entries(self) -> dict[str, int]:
        return {"watch_delivered": len(self._delivered), "watch_unseen": len(self._unseen_since)}

    def longest(self) -> float:
        """Seconds the oldest undelivered change has waited (0 when the watch is up to date)."""
        if not self._unseen_since:
            return 0.0
        return self._clock() - min(self._unseen_since.values())

"""Stripe's idempotency layer: saved answers keyed by ``Idempotency-Key`` within a scope.

Stripe saves the status and body of the first request with a key once execution
has begun (5xx included) and replays them for a retry with the same parameters;
a retry with other parameters is a 400 ``idempotency_error``, one that arrives
while the first is still executing a 409. Validation failures and conflicts are
not saved, and keys are pruned after 24 hours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

RETENTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SavedResponse:
    status: int
    body: dict[str, Any]
    request_id: str


class Outcome(StrEnum):
    EXECUTE = "execute"  # first use (or the first use was not saved): run the request
    REPLAY = "replay"  # same request again: answer with the saved response
    IN_FLIGHT = "in_flight"  # the first request is still executing
    MISMATCH = "mismatch"  # the key was used with other parameters


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    saved: SavedResponse | None = None


@dataclass
class _Entry:
    fingerprint: str
    created: float
    response: SavedResponse | None = None  # None while the first request executes


class IdempotencyStore:
    """Thread-safe; ``scope`` separates accounts and modes, so equal keys in two scopes never meet."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[Hashable, str], _Entry] = {}

    def begin(self, scope: Hashable, key: str, fingerprint: str) -> Decision:
        """Decide what to do with a request carrying ``key``; EXECUTE marks the key as in flight."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            entry = self._entries.get((scope, key))
            if entry is None:
                self._entries[(scope, key)] = _Entry(fingerprint, now)
                return Decision(Outcome.EXECUTE)
            # ASSUMPTION: a request arriving while the first executes gets the 409 whatever its parameters.
            if entry.response is None:
                return Decision(Outcome.IN_FLIGHT)
            if entry.fingerprint != fingerprint:
                return Decision(Outcome.MISMATCH)
            return Decision(Outcome.REPLAY, entry.response)

    def save(self, scope: Hashable, key: str, response: SavedResponse) -> None:
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None:
                entry.response = response

    def abandon(self, scope: Hashable, key: str) -> None:
        """Forget an in-flight key whose request ended without a savable answer."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and entry.response is None:
                del self._entries[(scope, key)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def keys(self, account_id: str) -> list[str]:
        """The keys used by requests acting on ``account_id``, oldest first (for tests)."""
        with self._lock:
            ordered = sorted(self._entries.items(), key=lambda item: item[1].created)
            return [key for (scope, key), _ in ordered if isinstance(scope, tuple) and account_id in scope]

    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for entry in self._entries.values() if entry.response is None)

    def _prune(self, now: float) -> None:
        # Entries are kept in the order they began, which is the order of their ``created`` while
        # the clock runs forward: the expired ones are at the front, and a look at every entry on
        # every request made each request cost the emulator more as a fleet grew. (Should the
        # wall clock step back, pruning stops early for a while: answers are kept longer.)
        expired = []
        for k, e in self._entries.items():
            if now - e.created < RETENTION_SECONDS:
                break
            if e.response is not None:  # one still executing is kept, however old
                expired.append(k)
        for k in expired:
            del self._entries[k]

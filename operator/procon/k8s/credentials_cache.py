"""The credentials Secrets the watch delivered, so a reconcile reads its key without a request.

Connections commonly share a credentials Secret (one key per processor account, many
connections per account), and every reconcile used to read it with a LIST of its own. kopf's
watch of credentials Secrets already delivers each of them, filtered by the opt-in label on the
API server (procon.reconcile.credentials_access), so the latest version it delivered is kept
here, for the Secrets a connection known to this process references, and reads are served
from it. A Secret not kept (none of its connections read yet, or it arrived before them) is
read as before, with one LIST for all the reconciles that miss it at the same time, and kept
from that read unless an event for it came while the read was in flight (the event is then the
newer view, or the deletion).

Staleness: the cache is the watch's view. A change after the last event is the next event, and
that event refreshes the entry before it queues the connections (procon.k8s.handlers), so the
reconcile it queues reads that version. A deletion, or the removal of the opt-in label (which a
label-selected watch reports as a deletion), drops the entry, and the next read finds out what
became of the Secret as before. A watch can miss a deletion only when its resume point has
expired and it lists afresh (a listing shows what is there, not what vanished): entries older
than ``max_age`` are therefore read afresh.

Nothing here is ever logged or shown: the key material sits in
:class:`procon.reconcile.ports.CredentialsSecret`, whose repr leaves its data out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from procon.reconcile.ports import CredentialsSecret

Key = tuple[str, str]  # (namespace, Secret name)
# How long an entry is served without an event or a read confirming it.
MAX_AGE = 600.0


@dataclass(frozen=True, slots=True)
class _Entry:
    secret: CredentialsSecret
    at: float  # when the watch (or a read) delivered it, on the cache's clock


class _Read:
    """One read in flight for a key, shared by whoever misses the key meanwhile."""

    __slots__ = ("readers", "spoiled", "task")

    def __init__(self) -> None:
        self.spoiled = False  # an event for the key came meanwhile: its view wins
        self.readers = 0  # reconciles waiting for it: the last to give up cancels it
        self.task: asyncio.Future[CredentialsSecret | None] | None = None


class CredentialsCache:
    """(namespace, name) -> the opted-in credentials Secret as last delivered, for referenced Secrets."""

    def __init__(
        self,
        referenced: Callable[[Key], bool],
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Whether a connection known to this process references the Secret: nothing else is kept.
        self._referenced = referenced
        self._max_age = max_age
        self._clock = clock
        self._entries: dict[Key, _Entry] = {}
        self._reads: dict[Key, _Read] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> CredentialsSecret | None:
        """The Secret as last delivered, or None when not kept (or kept too long)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry.at >= self._max_age:
            del self._entries[key]
            return None
        return entry.secret

    def delivered(self, key: Key, secret: CredentialsSecret | None) -> None:
        """The watch delivered ``key``: this opted-in version, or None (deleted, or no longer opted in)."""
        read = self._reads.get(key)
        if read is not None:
            read.spoiled = True
        if secret is None or not secret.opted_in or not self._referenced(key):
            self._entries.pop(key, None)
            return
        self._entries[key] = _Entry(secret, self._clock())

    def drop(self, key: Key) -> None:
        """No known connection references the Secret any more."""
        self._entries.pop(key, None)

    async def read(
        self, key: Key, fetch: Callable[[], Awaitable[CredentialsSecret | None]]
    ) -> CredentialsSecret | None:
        """Read ``key`` with ``fetch`` (one read at a time per key: a miss meanwhile shares it)
        and keep what it found, unless the watch said something about the key meanwhile."""
        read = self._reads.get(key)
        if read is None:
            read = self._reads[key] = _Read()
            read.task = asyncio.ensure_future(self._fill(key, read, fetch))
            # Read by nobody when every reader was cancelled: not an error worth a log line.
            read.task.add_done_callback(lambda task: task.cancelled() or task.exception())
        assert read.task is not None
        read.readers += 1
        try:
            return await asyncio.shield(read.task)
        finally:
            read.readers -= 1
            if not read.readers and not read.task.done():
                # Nobody waits for it (every reconcile gave up: a request that never ends): the
                # next miss asks afresh instead of joining it for ever.
                read.task.cancel()

    async def _fill(
        self, key: Key, read: _Read, fetch: Callable[[], Awaitable[CredentialsSecret | None]]
    ) -> CredentialsSecret | None:
        try:
            secret = await fetch()
        finally:
            if self._reads.get(key) is read:
                del self._reads[key]
        if (
            secret is not None
            and secret.opted_in
            and not read.spoiled
            and key not in self._entries
            and self._referenced(key)
        ):
            self._entries[key] = _Entry(secret, self._clock())
        return secret

    def state_entries(self) -> dict[str, int]:
        return {"cached_credentials": len(self._entries), "credentials_reads": len(self._reads)}

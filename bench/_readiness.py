"""When a fleet became Ready, read from the connections themselves after the fact.

A watch tells when the bench *saw* the last connection turn Ready; an API server under load
closes a watcher that falls behind, and the events in flight are lost until the next list, so
that moment can be late by seconds. The connections carry the moment themselves:

- the Ready condition's ``lastTransitionTime``, which the operator stamps in the pass that turns
  Ready True, just before it writes the status (``procon.reconcile.conditions.build`` keeps the
  old stamp unless the status flips);
- the ``time`` of the status subresource's ``managedFields`` entry, which the API server sets
  when it stores a status write that changes a field.

Both are RFC 3339 with whole seconds, truncated, on the same machine clock as the bench. The
Ready write lands after the operator's stamp (one API round trip later) and no later than the
connection's last status write. So, for a connection whose Ready write is the last status write
(as after a first pass), it landed in ``[lastTransitionTime, status write time + 1 s)``.

The rule: a connection was Ready at the latest at ``max(lastTransitionTime, status write time)
+ 1 s``; the fleet at the latest of those; the figure is that minus the apply's end, rounded up
to 0.1 s. It is never early (a later status write only moves it later) and at most about 1 s
late (the truncation), whatever the watch saw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# Whole seconds: lastTransitionTime and managedFields times are truncated to the second.
STAMP_RESOLUTION_SECONDS = 1.0
FIELD_SEPARATOR = "\t"
# One line per connection, tab-separated: name, generation, observedGeneration, Ready status,
# Ready lastTransitionTime, then the times of the status subresource's managedFields entries.
LISTING_TEMPLATE = (
    '{range .items[*]}{.metadata.name}{"\\t"}{.metadata.generation}{"\\t"}'
    '{.status.observedGeneration}{"\\t"}{.status.conditions[?(@.type=="Ready")].status}{"\\t"}'
    '{.status.conditions[?(@.type=="Ready")].lastTransitionTime}{"\\t"}'
    '{.metadata.managedFields[?(@.subresource=="status")].time}{"\\n"}{end}'
)


@dataclass(frozen=True)
class ListedConnection:
    """One connection as listed, the fields that say whether and since when it is Ready."""

    name: str
    generation: str
    observed_generation: str
    ready: str
    ready_since: str  # the Ready condition's lastTransitionTime, "" if none
    status_written: tuple[str, ...]  # managedFields times of status writes

    @property
    def ready_at_generation(self) -> bool:
        return self.ready == "True" and self.observed_generation == self.generation


def parse_listing(text: str) -> list[ListedConnection]:
    """The lines printed by ``kubectl get pconn -o jsonpath=LISTING_TEMPLATE``."""
    listed = []
    for line in text.splitlines():
        fields = line.split(FIELD_SEPARATOR)
        if not fields[0]:
            continue
        fields += [""] * (6 - len(fields))
        name, generation, observed, ready, since, written = fields[:6]
        listed.append(ListedConnection(name, generation, observed, ready, since, tuple(written.split())))
    return listed


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def ready_by(connection: ListedConnection) -> float | None:
    """The latest moment (epoch seconds) the connection can have turned Ready; None unless it is
    Ready at its generation with a transition time."""
    if not connection.ready_at_generation or not connection.ready_since:
        return None
    stamps = [_epoch(connection.ready_since), *(_epoch(t) for t in connection.status_written)]
    return max(stamps) + STAMP_RESOLUTION_SECONDS


def ready_after_apply(connections: Iterable[ListedConnection], applied_at: float) -> float | None:
    """Seconds from the apply's end (``applied_at``, epoch seconds) to every connection Ready,
    rounded up to 0.1 s, never early (see the module's docstring); None unless all are Ready."""
    moments = [ready_by(c) for c in connections]
    if not moments or any(m is None for m in moments):
        return None
    last = max(m for m in moments if m is not None)
    return max(0.0, math.ceil(round((last - applied_at) * 10, 6)) / 10)


class ReadyBook:
    """Which connections are Ready at their generation, from watch events and lists arriving in
    any order. Each note carries the object's resourceVersion and an older one never replaces a
    newer one: a list answered before a watch event but read after it is old news.

    resourceVersion is opaque to clients in general; here (one API server, etcd) it is etcd's
    revision, which grows with every write, so comparing the numbers orders the states.
    """

    def __init__(self) -> None:
        self._ready: dict[str, tuple[int, bool]] = {}  # name: (resourceVersion, Ready)
        # Kept as notes come: the bench asks five times a second, and summing 10,000 entries each
        # time cost CPU the operator and the API server under measurement compete for.
        self._ready_count = 0

    def note(self, name: str, version: str, generation: str, observed: str, ready: str) -> bool:
        """Record one object's state; False (and nothing changed) if a newer one is known."""
        rv = int(version) if version.isdigit() else 0
        known = self._ready.get(name)
        if known is not None and known[0] > rv:
            return False
        now_ready = observed == generation and ready == "True"
        self._ready_count += now_ready - (known[1] if known is not None else False)
        self._ready[name] = (rv, now_ready)
        return True

    def forget(self, name: str) -> None:
        known = self._ready.pop(name, None)
        if known is not None:
            self._ready_count -= known[1]

    def counts(self) -> tuple[int, int]:
        """(Ready, seen)."""
        return self._ready_count, len(self._ready)

"""Prometheus metrics, on their own port (``PROCON_METRICS_PORT``), to authorized scrapers only
(:mod:`procon.k8s.metrics_server`).

kopf exports none, so procon keeps its own, named after External Secrets'
(docs/design/operator-conventions.md, "Metrics"): reconciles by result and
duration, processor API calls by processor, operation and status code,
connections by condition (each one's, and counts by reason), and the time since
the last watch event.

Label values never carry key material: operations are request templates
(``GET /v1/webhook_endpoints/{id}``), and namespaces and names are the
connection's own.
"""

from __future__ import annotations

import contextvars
import re
import sys
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "procon_reconcile",
    "Reconciles of ProcessorConnections, by how they ended.",
    ["processor", "result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "procon_reconcile_duration_seconds",
    "How long a reconcile took, processor calls and Kubernetes writes included.",
    ["processor"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
API_CALLS = Counter(
    "procon_processor_api_calls",
    "Calls to a processor's API, by operation and HTTP status code ('error' when no answer came).",
    ["processor", "operation", "status_code"],
    registry=REGISTRY,
)
STATE_ENTRIES = Gauge(
    "procon_connection_state_entries",
    "Entries the operator keeps in memory about connections, by store. Each goes with its "
    "connection: a figure that grows while connections come and go is a leak.",
    ["store"],
    registry=REGISTRY,
)
_last_watch_event = time.monotonic()
SECONDS_SINCE_WATCH_EVENT = Gauge(
    "procon_seconds_since_last_watch_event",
    "Seconds since the operator last received a watch event for a connection or a Secret.",
    registry=REGISTRY,
)
SECONDS_SINCE_WATCH_EVENT.set_function(lambda: time.monotonic() - _last_watch_event)

SECRET_EVENTS = Counter(
    "procon_secret_watch_events",
    "Secret watch events the operator received, by watch: credentials (Secrets labelled "
    "procon.dev/credentials=true) or signing (procon's own, labelled app.kubernetes.io/managed-by=procon). "
    "No other Secret reaches the operator.",
    ["watch"],
    registry=REGISTRY,
)
for _watch in ("credentials", "signing"):
    SECRET_EVENTS.labels(_watch)

LEADER = Gauge(
    "procon_leader",
    "1 while this operator process acts: it holds its lease (or runs without leader election); "
    "0 while it stands by. By lease: one per shard.",
    ["lease"],
    registry=REGISTRY,
)

RATE_LIMITER_WAITS = Counter(
    "procon_rate_limiter_waits",
    "Processor requests that waited before they were sent, by processor and limit: 'account' (the "
    "account's rate, or its pause after a 429) or 'concurrency' (PROCON_MAX_CONCURRENT_CALLS).",
    ["processor", "limit"],
    registry=REGISTRY,
)
RATE_LIMITER_WAIT_SECONDS = Counter(
    "procon_rate_limiter_wait_seconds",
    "Seconds processor requests waited before they were sent, by processor and limit.",
    ["processor", "limit"],
    registry=REGISTRY,
)
PAUSED_ACCOUNTS = Gauge(
    "procon_rate_limited_accounts",
    "Processor accounts whose requests are paused now after a 429 (for Retry-After, or a backoff).",
    ["processor"],
    registry=REGISTRY,
)
ACCOUNT_LISTINGS = Counter(
    "procon_account_listings",
    "Requests for an account's webhooks, by how they were served: 'listed' (a call to the "
    "processor), 'shared' (joined a listing in flight) or 'cached' (a listing still fresh).",
    ["processor", "served"],
    registry=REGISTRY,
)

STATUSES = ("True", "False", "Unknown")

# One condition of a connection as the metrics keep it: (type, status, reason).
ConditionState = tuple[str, str, str]
# What the metrics keep about a connection: (processor, its conditions).
ConnectionState = tuple[str, tuple[ConditionState, ...]]


class ConnectionConditions:
    """The connections' conditions, kept as one small record per connection and turned into
    ``procon_connection_condition`` and ``procon_connections`` only when scraped.

    A labelled Gauge would keep a child (a lock and a value) per connection, condition and
    status: 18 per connection, most of the operator's memory in a large fleet. Here a
    connection costs a dict slot and its key; its record is shared with every connection
    in the same state (few states exist: a fleet is mostly Ready), strings included.
    """

    # Distinct records kept for sharing. Far more than a fleet's states; past it the table
    # starts afresh (records in use stay valid, they are only no longer shared).
    MAX_SHARED_STATES = 4096

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], ConnectionState] = {}
        self._shared: dict[ConnectionState, ConnectionState] = {}
        # The metrics server scrapes on the event loop today; the lock keeps a scrape from
        # another thread (a test, a future server) from seeing the dict change under it.
        self._lock = threading.Lock()

    def set(self, namespace: str, name: str, processor: str, conditions: Iterable[Mapping[str, Any]]) -> None:
        state: ConnectionState = (
            sys.intern(str(processor)),
            tuple(
                (
                    sys.intern(str(condition["type"])),
                    sys.intern(str(condition["status"])),
                    str(condition.get("reason") or ""),
                )
                for condition in conditions
            ),
        )
        with self._lock:
            if len(self._shared) >= self.MAX_SHARED_STATES and state not in self._shared:
                self._shared.clear()
            self._states[(namespace, name)] = self._shared.setdefault(state, state)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._states.pop((namespace, name), None)
            if not self._states:
                self._shared.clear()

    def __len__(self) -> int:
        return len(self._states)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples: the registry learns the names without a scrape."""
        yield self._per_connection()
        yield self._counts()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if _EXPOSING.get():
            return  # :func:`exposition` writes these families itself, a piece at a time
        states = self._snapshot()
        yield self._per_connection_samples(states)
        yield self._counted(states)

    def exposition(self, connections_per_piece: int = 500) -> Iterator[bytes]:
        """Both families in the text format, a few hundred connections at a time.

        What ``collect`` gives, byte for byte (prometheus_client formats every piece), without
        ever holding all of it: at 10,000 connections ``procon_connection_condition`` has
        180,000 samples, and one piece of text built from them all briefly took some 80 MiB.
        """
        states = self._snapshot()
        for start in range(0, max(len(states), 1), connections_per_piece):
            text = generate_latest(
                _Families(self._per_connection_samples(states[start : start + connections_per_piece]))
            )
            # Each piece comes with the family's HELP and TYPE lines: only the first keeps them.
            yield text if start == 0 else text.split(b"\n", 2)[2]
        yield generate_latest(_Families(self._counted(states)))

    def _snapshot(self) -> list[tuple[tuple[str, str], ConnectionState]]:
        with self._lock:
            return list(self._states.items())

    def _per_connection_samples(
        self, states: Iterable[tuple[tuple[str, str], ConnectionState]]
    ) -> GaugeMetricFamily:
        family = self._per_connection()
        for (namespace, name), (processor, conditions) in states:
            for kind, current, _reason in conditions:
                for status in STATUSES:
                    family.add_metric(
                        (namespace, name, processor, kind, status), 1 if current == status else 0
                    )
        return family

    def _counted(self, states: Iterable[tuple[tuple[str, str], ConnectionState]]) -> GaugeMetricFamily:
        # Counted by record first: connections in one state share it, so a fleet is a few records.
        counts = Tally[tuple[str, str, str, str]]()
        for (processor, conditions), connections in Tally(state for _, state in states).items():
            for kind, status, reason in conditions:
                counts[(processor, kind, status, reason)] += connections
        family = self._counts()
        for labels, connections in counts.items():
            family.add_metric(labels, connections)
        return family

    @staticmethod
    def _per_connection() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "procon_connection_condition",
            "1 for the current status of each condition of each connection, 0 for the other statuses.",
            labels=("namespace", "name", "processor", "condition", "status"),
        )

    @staticmethod
    def _counts() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "procon_connections",
            "Connections by processor and by the status and reason of each condition (reason '' when "
            "the condition has none). Only states some connection is in are present.",
            labels=("processor", "condition", "status", "reason"),
        )


class _Families:
    """Metric families ready made, as a collector for prometheus_client's text formatting."""

    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


# Set while :func:`exposition` formats the registry: the connections' families come apart.
_EXPOSING: contextvars.ContextVar[bool] = contextvars.ContextVar("procon_metrics_exposing", default=False)

CONNECTION_CONDITIONS = ConnectionConditions()
REGISTRY.register(CONNECTION_CONDITIONS)  # the last registered: its families come last in either way


def exposition() -> Iterator[bytes]:
    """The ``/metrics`` body in the text format, in pieces: every other metric, then the
    connections' families a few hundred connections at a time (see
    :meth:`ConnectionConditions.exposition`). Joined, the same bytes as ``generate_latest(REGISTRY)``."""
    token = _EXPOSING.set(True)
    try:
        others = generate_latest(REGISTRY)
    finally:
        _EXPOSING.reset(token)
    yield others
    yield from CONNECTION_CONDITIONS.exposition()


_ID_SEGMENT = re.compile(r"/(?:we|wf|wfa|wfc|acct|src|tok|pay|file|ent|evt)_[A-Za-z0-9_]+")


def leading(lease: str, acting: bool) -> None:
    """This process acts for ``lease`` ("" without leader election), or stands by."""
    LEADER.labels(lease).set(1 if acting else 0)


def watch_event_seen() -> None:
    global _last_watch_event
    _last_watch_event = time.monotonic()


def secret_event_received(watch: str) -> None:
    SECRET_EVENTS.labels(watch).inc()


def seconds_since_watch_event() -> float:
    return time.monotonic() - _last_watch_event


def operation(method: str, path: str) -> str:
    """``GET /v1/webhook_endpoints/we_123`` -> ``GET /v1/webhook_endpoints/{id}`` (bounded label values)."""
    return f"{method.upper()} {_ID_SEGMENT.sub('/{id}', path.split('?', 1)[0])}"


def api_call(processor: str, method: str, path: str, status: int | str) -> None:
    API_CALLS.labels(processor, operation(method, path), str(status)).inc()


def rate_limiter_waited(processor: str, limit: str, seconds: float) -> None:
    RATE_LIMITER_WAITS.labels(processor, limit).inc()
    RATE_LIMITER_WAIT_SECONDS.labels(processor, limit).inc(max(seconds, 0.0))


def account_listing(processor: str, served: str) -> None:
    ACCOUNT_LISTINGS.labels(processor, served).inc()


def track_paused_accounts(processor: str, count: Callable[[], float]) -> None:
    """Export ``count()`` as the accounts of ``processor`` paused now, read at each scrape."""
    PAUSED_ACCOUNTS.labels(processor).set_function(count)


def reconciled(processor: str, result: str, seconds: float) -> None:
    RECONCILES.labels(processor, result).inc()
    RECONCILE_SECONDS.labels(processor).observe(seconds)


def connection_conditions(
    namespace: str, name: str, processor: str, conditions: Iterable[Mapping[str, Any]]
) -> None:
    """Record the connection's conditions (type, status, reason of each), replacing what was kept."""
    CONNECTION_CONDITIONS.set(namespace, name, processor, conditions)


def forget_connection(namespace: str, name: str) -> None:
    """Drop the connection's series (whatever its processor was: the spec may have changed it)."""
    CONNECTION_CONDITIONS.forget(namespace, name)


def connection_records() -> int:
    """How many connections the condition metrics keep a record of."""
    return len(CONNECTION_CONDITIONS)


def track_state_entries(entries: Callable[[], Mapping[str, int]]) -> None:
    """Export ``entries()`` (store -> entries kept about connections), read at each scrape."""

    def reader(store: str) -> Callable[[], float]:
        return lambda: entries().get(store, 0)

    for store in entries():
        STATE_ENTRIES.labels(store).set_function(reader(store))

"""The connections' condition metrics (procon.metrics.ConnectionConditions).

- ``procon_connection_condition{namespace,name,processor,condition,status}`` is what the chart's
  alerts and the integration tests read: one series per connection, condition and status, 1 for
  the current status and 0 for the others, exactly as the labelled Gauge it replaces exposed.
- ``procon_connections{processor,condition,status,reason}`` counts connections per state.
- A connection costs a small record, not a Gauge child per series: measured with tracemalloc.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from procon import metrics
from procon.metrics import ConnectionConditions

TYPES = ("Ready", "Reconciling", "Stalled", "CredentialsValid", "PermissionsValid", "WebhookReady")


def condition(kind: str, status: str, reason: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": "m", "lastTransitionTime": "t"}


def ready() -> list[dict[str, Any]]:
    return [
        condition("Ready", "True", "Ready"),
        condition("Reconciling", "False", "ReconcileSucceeded"),
        condition("Stalled", "False", "NotStalled"),
    ]


def not_ready(reason: str) -> list[dict[str, Any]]:
    return [
        condition("Ready", "False", reason),
        condition("Reconciling", "True", "Progressing"),
        condition("Stalled", "Unknown"),
    ]


def scraped(store: ConnectionConditions, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``family`` as Prometheus reads them from the text exposition."""
    registry = CollectorRegistry()
    registry.register(store)
    text = generate_latest(registry).decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for parsed in text_string_to_metric_families(text)
        if parsed.name == family
        for sample in parsed.samples
    }


def series(namespace: str, name: str, processor: str, kind: str, status: str) -> tuple[tuple[str, str], ...]:
    labels = dict(namespace=namespace, name=name, processor=processor, condition=kind, status=status)
    return tuple(sorted(labels.items()))


def expected(
    connections: Mapping[tuple[str, str, str], list[dict[str, Any]]],
) -> dict[tuple[tuple[str, str], ...], float]:
    """What the labelled Gauge exposed: every status of every condition, 1 for the current one."""
    return {
        series(namespace, name, processor, c["type"], status): 1.0 if c["status"] == status else 0.0
        for (namespace, name, processor), conditions in connections.items()
        for c in conditions
        for status in ("True", "False", "Unknown")
    }


def test_each_connection_has_every_status_of_every_condition() -> None:
    store = ConnectionConditions()
    connections = {
        ("shop", "eu", "stripe"): ready(),
        ("shop", "us", "checkout"): not_ready("PermissionsMissing"),
        ("billing", "eu", "adyen"): not_ready("CredentialsInvalid"),
    }
    for (namespace, name, processor), conditions in connections.items():
        store.set(namespace, name, processor, conditions)

    samples = scraped(store, "procon_connection_condition")

    assert samples == expected(connections)
    assert len(samples) == 3 * 3 * 3
    assert samples[series("shop", "us", "checkout", "Stalled", "Unknown")] == 1.0
    assert samples[series("shop", "us", "checkout", "Stalled", "False")] == 0.0


def test_a_new_status_replaces_the_old_one() -> None:
    store = ConnectionConditions()
    store.set("shop", "eu", "stripe", not_ready("PermissionsMissing"))
    store.set("shop", "eu", "stripe", ready())

    assert scraped(store, "procon_connection_condition") == expected({("shop", "eu", "stripe"): ready()})


def test_forgetting_a_connection_drops_its_series_and_only_its() -> None:
    store = ConnectionConditions()
    store.set("shop", "eu", "stripe", ready())
    store.set("shop", "us", "stripe", ready())
    store.set("other", "eu", "stripe", ready())

    store.forget("shop", "eu")
    store.forget("shop", "never-seen")

    samples = scraped(store, "procon_connection_condition")
    assert samples == expected({("shop", "us", "stripe"): ready(), ("other", "eu", "stripe"): ready()})
    assert len(store) == 2
    store.forget("shop", "us")
    store.forget("other", "eu")
    assert scraped(store, "procon_connection_condition") == {}
    assert scraped(store, "procon_connections") == {}
    assert len(store) == 0


def test_connections_are_counted_by_condition_status_and_reason() -> None:
    store = ConnectionConditions()
    for index in range(5):
        store.set("shop", f"ready-{index}", "stripe", ready())
    for index in range(3):
        store.set("shop", f"missing-{index}", "stripe", not_ready("PermissionsMissing"))
    store.set("shop", "refused", "stripe", not_ready("CredentialsInvalid"))
    store.set("shop", "elsewhere", "checkout", not_ready("PermissionsMissing"))
    store.forget("shop", "ready-0")

    counts = {
        (labels["processor"], labels["condition"], labels["status"], labels["reason"]): value
        for labels, value in (
            (dict(key), value) for key, value in scraped(store, "procon_connections").items()
        )
    }

    assert counts == {
        ("stripe", "Ready", "True", "Ready"): 4,
        ("stripe", "Reconciling", "False", "ReconcileSucceeded"): 4,
        ("stripe", "Stalled", "False", "NotStalled"): 4,
        ("stripe", "Ready", "False", "PermissionsMissing"): 3,
        ("stripe", "Ready", "False", "CredentialsInvalid"): 1,
        ("stripe", "Reconciling", "True", "Progressing"): 4,
        # A condition without a reason is counted under "".
        ("stripe", "Stalled", "Unknown", ""): 4,
        ("checkout", "Ready", "False", "PermissionsMissing"): 1,
        ("checkout", "Reconciling", "True", "Progressing"): 1,
        ("checkout", "Stalled", "Unknown", ""): 1,
    }


def test_the_operator_registry_exports_both_families_before_any_connection() -> None:
    names = {family.name for family in metrics.REGISTRY.collect()}
    assert {"procon_connection_condition", "procon_connections"} <= names


def test_the_module_functions_keep_and_forget_records() -> None:
    before = metrics.connection_records()
    metrics.connection_conditions("unit-metrics", "eu", "stripe", not_ready("PermissionsMissing"))
    assert metrics.connection_records() == before + 1
    assert (
        metrics.REGISTRY.get_sample_value(
            "procon_connections",
            {"processor": "stripe", "condition": "Ready", "status": "False", "reason": "PermissionsMissing"},
        )
        or 0
    ) >= 1
    metrics.forget_connection("unit-metrics", "eu")
    assert metrics.connection_records() == before


def test_the_sharing_table_is_bounded_and_records_stay_right_past_it() -> None:
    store = ConnectionConditions()
    store.MAX_SHARED_STATES = 8
    for index in range(20):
        store.set("shop", f"c{index}", "stripe", not_ready(f"Reason{index}"))

    assert len(store._shared) <= 8
    counts = scraped(store, "procon_connections")
    reasons = {dict(key)["reason"] for key, _ in counts.items() if dict(key)["condition"] == "Ready"}
    assert reasons == {f"Reason{index}" for index in range(20)}


# Size, not time. The labelled Gauge held 18 children per connection of six conditions (each a
# lock, a value and its label tuple): about 13.5 KiB per connection, measured the same way.
# A record shared by every connection in the same state leaves the key tuple (56 B), the
# name's string (~60 B) and a dict slot (~50-100 B, by where the table is in its growth):
# about 200 B. 1.5 KiB leaves room for allocator and version differences while failing
# for anything that keeps an object per condition or series.
BYTES_PER_CONNECTION = 1536


def test_ten_thousand_connections_stay_small() -> None:
    """Through the module's functions, as the reconciler records conditions."""
    connections = 10_000
    namespaces = [f"unit-size-{index}" for index in range(50)]
    before = metrics.connection_records()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for index in range(connections):
            ok = index % 10 != 0
            # Fresh strings each time, as statuses decoded from the API server's answers are.
            conditions = [
                {
                    "type": "".join(kind),
                    "status": "".join("True" if ok else "False"),
                    "reason": "".join("Ready" if ok else "PermissionsMissing"),
                }
                for kind in TYPES
            ]
            metrics.connection_conditions(
                "".join(namespaces[index % 50]), f"connection-{index:05d}", "stripe", conditions
            )
        del conditions
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        kept = metrics.connection_records() - before
    finally:
        tracemalloc.stop()
        for index in range(connections):
            metrics.forget_connection(namespaces[index % 50], f"connection-{index:05d}")

    assert kept == connections
    assert held < connections * BYTES_PER_CONNECTION, f"{held / connections:.0f} B per connection"


def test_the_streamed_exposition_is_the_registrys_text_byte_for_byte() -> None:
    """``/metrics`` is written a piece at a time; what arrives is what ``generate_latest`` gives."""
    names = [f"piece-{n:04d}" for n in range(1203)]  # more than two pieces, the last one short
    try:
        for n, name in enumerate(names):
            status = "True" if n % 7 else "False"
            metrics.connection_conditions(
                "team-stream",
                name,
                "stripe",
                [
                    {"type": "Ready", "status": status, "reason": "Ready" if n % 7 else 'Escaped"\\reason'},
                    {"type": "Stalled", "status": "False", "reason": ""},
                ],
            )
        pieces = list(metrics.exposition())
        assert len(pieces) > 3
        assert _timeless(b"".join(pieces)) == _timeless(generate_latest(metrics.REGISTRY))
    finally:
        for name in names:
            metrics.forget_connection("team-stream", name)
    assert _timeless(b"".join(metrics.exposition())) == _timeless(generate_latest(metrics.REGISTRY))


def _timeless(text: bytes) -> bytes:
    """The text without the one gauge that moves between two scrapes (seconds since an event)."""
    return b"".join(
        line
        for line in text.splitlines(keepends=True)
        if not line.startswith(b"procon_seconds_since_last_watch")
    )


def test_a_scrape_of_ten_thousand_connections_never_holds_the_whole_text() -> None:
    """Size, not time: a scrape built whole took some 80 MiB more at 10,000 connections."""
    names = [f"big-{n:05d}" for n in range(10_000)]
    conditions = [
        {"type": kind, "status": "True", "reason": "Ready"}
        for kind in (
            "Ready",
            "Reconciling",
            "Stalled",
            "CredentialsValid",
            "PermissionsValid",
            "WebhookReady",
        )
    ]
    try:
        for name in names:
            metrics.connection_conditions("team-big", name, "stripe", conditions)
        gc.collect()
        tracemalloc.start()
        try:
            size = sum(len(piece) for piece in metrics.exposition())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        for name in names:
            metrics.forget_connection("team-big", name)
    assert size > 15 * 2**20  # the text itself is large...
    assert peak < 16 * 2**20, f"{peak / 2**20:.1f} MiB held at once"  # ...and never held whole

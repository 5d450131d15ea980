"""The work queue on the real control plane: a restart of an operator whose connections are all
Ready writes nothing and asks the processor nothing but its drift checks' listings; and a new
connection is served before a backlog of drift checks that are due."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from procon.dev import cluster as control_plane
from procon.emulators.stripe import StripeEmulator
from tests.integration.churn import _all_ready
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    key_secret,
    metrics_reader_token,
    operator_env,
    start_operator,
)
from tests.waiting import wait_for

LIST_ROUTE = "/v1/webhook_endpoints"


def metric(operator: OperatorProcess, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(operator.scrape())
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def fresh_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"queue-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


def own_operator(
    cluster: control_plane.Cluster, kubectl: Kubectl, emulator: StripeEmulator, tmp_path: Path, **env: str
) -> OperatorProcess:
    from procon.dev.processes import free_port

    settings = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=emulator.base_url,
        PROCON_CLUSTER_NAME="integration",
        PROCON_METRICS_PORT=str(free_port()),
        **env,
    )
    operator = start_operator(settings, tmp_path / "operator.log", ["--log-level=info"])
    operator.metrics_token = metrics_reader_token(kubectl)
    return operator


def apply_connections(
    kubectl: Kubectl, emulator: StripeEmulator, namespace: str, names: list[str]
) -> dict[str, StripeAccount]:
    """One account and restricted key per connection, so each is verified and probed on its own."""
    accounts = {name: StripeAccount(emulator) for name in names}
    docs: list[dict[str, Any]] = []
    for name, account in accounts.items():
        docs += [
            key_secret(name, account.key(ANALYTICS_PERMISSIONS)),
            connection(name, url=f"https://hooks.example.com/{namespace}/{name}"),
        ]
    kubectl.apply(docs, namespace=namespace)
    return accounts


def versions(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """kind/name -> resourceVersion of every connection and Secret in the namespace: any write moves one."""
    found = {}
    for kind in ("pconn", "secret"):
        for item in kubectl.get_json(kind, "-n", namespace)["items"]:
            found[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def event_count(kubectl: Kubectl, namespace: str) -> int:
    return sum(item.get("count") or 1 for item in kubectl.get_json("events", "-n", namespace)["items"])


@pytest.mark.no_session_operator  # it alone must serve the connections, and the emulator counts its calls
def test_a_restart_with_every_connection_ready_writes_nothing_and_only_lists(
    cluster: control_plane.Cluster,
    crd_installed: None,
    kubectl: Kubectl,
    stripe_emulator: StripeEmulator,
    fresh_namespace: str,
    tmp_path: Path,
) -> None:
    count = 12
    names = [f"r{index}" for index in range(count)]
    # Drift checks every 15 s: after the restart each connection is checked once within it.
    operator = own_operator(cluster, kubectl, stripe_emulator, tmp_path, PROCON_DRIFT_INTERVAL="15")
    try:
        accounts = apply_connections(kubectl, stripe_emulator, fresh_namespace, names)
        wait_for(
            lambda: _all_ready(kubectl, fresh_namespace, count),
            timeout=120,
            interval=0.5,
            what=f"{count} connections to be Ready",
        )
        operator.stop()
        before = versions(kubectl, fresh_namespace)
        events_before = event_count(kubectl, fresh_namespace)
        stripe_emulator.reset_counters()

        operator.restart()
        # Each connection looked at (Kubernetes only) and then checked with the processor at least
        # once since the restart (its drift check, at a random point of the interval). The count
        # of checks alone is not enough: one connection's second check (the interval is jittered)
        # can come before another's first; each has its own key, so each key's use is awaited.
        wait_for(
            lambda: (
                metric(operator, "procon_reconcile_total", result="resumed") >= count
                and metric(operator, "procon_reconcile_total", result="ready") >= count
                and all(stripe_emulator.key_uses(account.keys[0]) for account in accounts.values())
                # A request is counted as its key's use when it arrives, and recorded when answered.
                and len(stripe_emulator.requests) >= count
            ),
            timeout=90,
            interval=0.5,
            what="every connection's first drift check after the restart",
        )
        after = versions(kubectl, fresh_namespace)
        requests = list(stripe_emulator.requests)
    finally:
        operator.stop()

    assert after == before, "no connection and no Secret was written"
    assert event_count(kubectl, fresh_namespace) == events_before, "no event was posted"
    asked = sorted({(r.method, r.route) for r in requests})
    assert asked == [("GET", LIST_ROUTE)], f"only drift checks' listings, no verification or probe: {asked}"
    assert len(requests) >= count


@pytest.mark.no_session_operator  # it alone must serve the connections, and the emulator counts its calls
def test_a_new_connection_is_served_before_a_backlog_of_due_drift_checks(
    cluster: control_plane.Cluster,
    crd_installed: None,
    kubectl: Kubectl,
    stripe_emulator: StripeEmulator,
    fresh_namespace: str,
    tmp_path: Path,
) -> None:
    count = 16
    names = [f"p{index}" for index in range(count)]
    # One worker and drift checks every 2 s: with each listing slowed down, far more checks
    # come due than one worker can serve, so a backlog builds up.
    operator = own_operator(
        cluster,
        kubectl,
        stripe_emulator,
        tmp_path,
        PROCON_DRIFT_INTERVAL="2",
        PROCON_RECONCILE_WORKERS="1",
    )
    try:
        apply_connections(kubectl, stripe_emulator, fresh_namespace, names)
        wait_for(
            lambda: _all_ready(kubectl, fresh_namespace, count),
            timeout=180,
            interval=0.5,
            what=f"{count} connections to be Ready",
        )
        stripe_emulator.set_faults(latency_seconds=0.4, path_prefix=LIST_ROUTE)
        stripe_emulator.reset_counters()
        # The backlog: more listings than connections means every check came due at least once more
        # while the one worker was busy.
        wait_for(
            lambda: stripe_emulator.count("GET", LIST_ROUTE) >= count + 4,
            timeout=120,
            interval=0.2,
            what="a backlog of drift checks",
        )
        stripe_emulator.reset_counters()
        apply_connections(kubectl, stripe_emulator, fresh_namespace, ["newcomer"])
        wait_for(
            lambda: stripe_emulator.count("GET", "/v1/account") >= 1,
            timeout=120,
            interval=0.2,
            what="the new connection's first call (its verification)",
        )
        requests = list(stripe_emulator.requests)
        backlog = metric(operator, "procon_connection_state_entries", store="queue_queued")
    finally:
        stripe_emulator.set_faults()
        operator.stop()

    first_own = next(i for i, r in enumerate(requests) if r.route == "/v1/account")
    checks_before = [r for r in requests[:first_own] if r.route == LIST_ROUTE]
    # At most the check in progress when it came (and one that started as the watch event landed),
    # never the backlog waiting behind it.
    assert len(checks_before) <= 2, f"{len(checks_before)} drift checks ran before the new connection"
    assert backlog >= 4, f"there was a backlog it overtook ({backlog:.0f} keys waiting)"

"""Many connections on one Stripe account: one listing per drift interval, and a 429 pauses the account.

An operator of the test's own, watching only the test's namespace, against an emulator of the
test's own, so the emulator's request log holds this operator's requests and nobody else's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procon.dev import cluster as control_plane
from procon.emulators.faults import FaultKind
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    key_secret,
    operator_env,
    start_operator,
    wait_condition,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.no_session_operator, pytest.mark.usefixtures("crd_installed")]

DRIFT_INTERVAL = 4.0
CONNECTIONS = 6
ENDPOINTS = "/v1/webhook_endpoints"
# The wait the emulator's 429s ask for.
RETRY_AFTER = 2.0


@pytest.fixture
def stripe() -> Iterator[StripeEmulator]:
    emulator = StripeEmulator.from_fixture(Path(__file__).parents[1] / "fixtures" / "stripe-demo.yaml")
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def operator(
    cluster: control_plane.Cluster, namespace: str, stripe: StripeEmulator, tmp_path: Path
) -> Iterator[OperatorProcess]:
    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe.base_url,
        PROCON_DRIFT_INTERVAL=f"{DRIFT_INTERVAL:g}",
        PROCON_CLUSTER_NAME="budget",
        PROCON_METRICS_PORT="0",
    )
    env["PROCON_NAMESPACES"] = namespace
    process = start_operator(env, tmp_path / "operator.log")
    yield process
    process.stop()


def apply_fleet(kubectl: Kubectl, namespace: str, key: str, names: list[str]) -> None:
    """Connections with one key (each its own Secret holding it), each at its own URL."""
    objects = []
    for name in names:
        objects += [key_secret(name, key), connection(name, url=f"https://hooks.example.com/{name}")]
    kubectl.apply(objects, namespace=namespace)


def resource_versions(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    listed = kubectl.get_json("pconn", "-n", namespace)
    return {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in listed["items"]}


def test_an_unchanged_fleet_on_one_account_costs_one_listing_per_interval(
    kubectl: Kubectl, namespace: str, stripe: StripeEmulator, operator: OperatorProcess
) -> None:
    account = StripeAccount(stripe)
    names = [f"shop-{n}" for n in range(CONNECTIONS)]
    apply_fleet(kubectl, namespace, account.key(ANALYTICS_PERMISSIONS), names)
    for name in names:
        wait_condition(kubectl, namespace, name, "Ready", "True", timeout=60)
    assert len(account.endpoints()) == CONNECTIONS

    # Let the first drift checks pass, then measure over whole intervals.
    after_creates = stripe.count("GET", ENDPOINTS)
    wait_for(
        lambda: stripe.count("GET", ENDPOINTS) > after_creates,
        timeout=3 * DRIFT_INTERVAL,
        what="a drift check",
    )
    before = resource_versions(kubectl, namespace)
    events_before = len(kubectl.get_json("events", "-n", namespace)["items"])
    stripe.reset_counters()
    window = 3 * DRIFT_INTERVAL
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started >= window, timeout=window + 5, what="the measured window")

    lists = stripe.count("GET", ENDPOINTS)
    # Per connection, as before: about a listing each per interval (~18 here); per account: at most
    # one per interval (and one for a window that starts mid-interval).
    assert 1 <= lists <= math.ceil(window / DRIFT_INTERVAL) + 1, stripe.faults.counters
    assert stripe.count("POST") == stripe.count("DELETE") == 0, stripe.faults.counters
    assert stripe.count("GET", "/v1/account") == 0  # verified once, within the permission cache's life
    assert resource_versions(kubectl, namespace) == before  # no status written
    assert len(kubectl.get_json("events", "-n", namespace)["items"]) == events_before


def test_a_429_burst_pauses_the_whole_account_and_the_fleet_converges(
    kubectl: Kubectl, namespace: str, stripe: StripeEmulator, operator: OperatorProcess
) -> None:
    account = StripeAccount(stripe)
    names = [f"shop-{n}" for n in range(CONNECTIONS)]
    stripe.set_faults(rate_limit_count=4, rate_limit_retry_after=RETRY_AFTER, path_prefix=ENDPOINTS)
    apply_fleet(kubectl, namespace, account.key(ANALYTICS_PERMISSIONS), names)
    for name in names:
        wait_condition(kubectl, namespace, name, "Ready", "True", timeout=90)

    endpoints = account.endpoints()
    assert sorted(e["url"] for e in endpoints) == sorted(f"https://hooks.example.com/{n}" for n in names)
    refused = [r for r in stripe.requests if r.fault is FaultKind.RATE_LIMITED]
    assert len(refused) == 4
    # After each refusal, nothing more went to the account until its Retry-After had passed, from
    # any connection (those already on their way when it came aside).
    grace = 0.3
    for refusal in refused:
        too_soon = [
            r
            for r in stripe.requests
            if refusal.answered + grace < r.received < refusal.answered + RETRY_AFTER - grace
        ]
        assert not too_soon, (refusal, too_soon)

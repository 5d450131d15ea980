"""Crash safety: SIGKILL the operator at random points of its work, restart it, check both sides.

A short, seeded run of ``bench/crash_harness.py`` per processor (the bench runs hundreds of
kill points): the real operator process on the control plane, against emulators answering
with processor-like latency, random actions (create, URL change, events change, rotation,
deletion under Delete and Orphan), faults on some rounds, and a kill timed on the operator's
processor writes. After each round has settled: every live connection has exactly one owned
webhook matching its spec whose secret is the published one, nothing is left by a deleted
connection except an Orphan's webhook (exactly once), and the log holds no secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench.crash_harness import Harness, HarnessSettings

from procon.dev import cluster as control_plane
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    StripeAccount,
    connection,
    events,
    key_secret,
    signing_secret,
    wait_condition,
)

ROUNDS = 14


# It runs its own operator (watching only its own namespace) and kills it.
@pytest.mark.no_session_operator
@pytest.mark.parametrize("processor", ["stripe", "checkout", "adyen"])
def test_random_kills_leave_one_webhook_per_connection_with_its_published_secret(
    cluster: control_plane.Cluster, crd_installed: None, tmp_path: Path, processor: str
) -> None:
    settings = HarnessSettings(seed=20261201, rounds=ROUNDS, processors=(processor,))
    report = Harness(cluster, settings, tmp_path).run()
    summary = report.summary()
    assert report.rounds == ROUNDS, summary
    assert report.kills >= ROUNDS, summary
    # The kills are timed on processor writes; a run that never hit one proved little.
    assert report.kills_during_write >= 1, summary
    assert report.violations == [], summary


def test_an_orphan_deletion_leaves_the_published_webhook_not_a_crash_leftover(
    operator: Any, kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    """Found by the crash harness: a URL change killed after its new webhook was created, before
    its secret was published, then the connection deleted under Orphan: both webhooks stayed,
    the one nobody can verify and nobody owns any more included. Orphan leaves one, the
    published one."""
    account = StripeAccount(stripe_emulator)
    kubectl.apply(
        [key_secret("kept", account.key(ANALYTICS_PERMISSIONS)), connection("kept", deletionPolicy="Orphan")],
        namespace=namespace,
    )
    wait_condition(kubectl, namespace, "kept", "Ready", "True")
    (published,) = account.endpoints()
    # What the interrupted create left: a webhook with the connection's tag whose secret nobody has.
    leftover = stripe_emulator.create_endpoint(
        account.id,
        "https://hooks.example.com/stripe/next",
        ["charge.succeeded"],
        metadata=published["metadata"],
    )

    kubectl.run("delete", "pconn", "kept", "-n", namespace, "--timeout=30s")

    assert [e["id"] for e in account.endpoints()] == [published["id"]]
    assert signing_secret(kubectl, namespace, "kept")["endpointId"] == published["id"]
    deleted = [
        e["message"] for e in events(kubectl, namespace, "kept") if e["reason"] == "DeletedWebhookEndpoint"
    ]
    assert deleted == [f"deleted webhook {leftover['id']}: a leftover beside the orphaned webhook"]

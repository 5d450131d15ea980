"""Two clusters, one processor account: two real control planes, an operator on each with no
cluster name configured, the same Stripe account.

Each control plane has its own kube-system namespace, so each operator has its own identity
without configuration. A connection with the same namespace and name in both clusters must not
take the other's webhook for a predecessor (before per-cluster identities both were "default",
and each deleted the other's webhook at every drift check); one at a URL the other cluster
already serves is the newcomer, stalled with a message naming the other connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from procon.dev import cluster as control_plane
from procon.dev.demo import install_crd
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    events,
    key_secret,
    operator_env,
    start_operator,
    wait_condition,
    wait_for_events,
)

# Each test runs operators of its own, which alone must serve their namespace.
pytestmark = [pytest.mark.no_session_operator, pytest.mark.usefixtures("crd_installed")]

DRIFT_INTERVAL = "3"
URL_1 = "https://hooks.example.com/cluster-1"
URL_2 = "https://hooks.example.com/cluster-2"


@pytest.fixture(scope="module")
def second_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control_plane.Cluster]:
    state_dir = tmp_path_factory.mktemp("controlplane-2")
    running = control_plane.up(state_dir, timeout=180, verbose=False)
    try:
        install_crd(running)
        yield running
    finally:
        control_plane.down(state_dir)


@dataclass
class Side:
    """One cluster: its kubectl, its operator, its identity."""

    kubectl: Kubectl
    operator: OperatorProcess
    identity: str


def _side(
    cluster: control_plane.Cluster, namespace: str, stripe: StripeEmulator
) -> tuple[Kubectl, dict[str, str]]:
    kubectl = Kubectl(cluster)
    if kubectl.run("get", "namespace", namespace, check=False).returncode != 0:
        kubectl.run("create", "namespace", namespace)
    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe.base_url,
        PROCON_DRIFT_INTERVAL=DRIFT_INTERVAL,
        PROCON_METRICS_PORT="0",
    )
    env.pop("PROCON_CLUSTER_NAME", None)  # the default identity is what is under test
    env["PROCON_NAMESPACES"] = namespace
    return kubectl, env


@pytest.fixture
def sides(
    cluster: control_plane.Cluster,
    second_cluster: control_plane.Cluster,
    namespace: str,
    stripe_emulator: StripeEmulator,
    tmp_path: Path,
) -> Iterator[tuple[Side, Side]]:
    started: list[OperatorProcess] = []
    built: list[Side] = []
    try:
        for i, running in enumerate((cluster, second_cluster), start=1):
            kubectl, env = _side(running, namespace, stripe_emulator)
            operator = start_operator(env, tmp_path / f"operator-{i}.log")
            started.append(operator)
            uid = kubectl.get_json("namespace", "kube-system")["metadata"]["uid"]
            built.append(Side(kubectl, operator, uid))
        yield built[0], built[1]
    finally:
        for operator in started:
            operator.stop()
        Kubectl(second_cluster).run("delete", "namespace", namespace, "--wait=false", check=False)


def _endpoint(account: StripeAccount, url: str) -> dict[str, Any]:
    (endpoint,) = [e for e in account.endpoints() if e["url"] == url]
    return endpoint


def _reconciled_after_edit(side: Side, namespace: str, name: str, description: str, count: int) -> None:
    """Change the connection's description and wait for the pass that carries it out: that pass
    has listed every webhook on the account and acted on what it found."""
    side.kubectl.run(
        "patch",
        "pconn",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"webhook": {"description": description}}}),
    )
    wait_for_events(side.kubectl, namespace, name, "UpdatedWebhookEndpoint", count=count, timeout=20)


def test_clusters_sharing_an_account_never_touch_each_others_webhooks(
    sides: tuple[Side, Side], namespace: str, stripe_emulator: StripeEmulator
) -> None:
    one, two = sides
    assert one.identity != two.identity
    account = StripeAccount(stripe_emulator)
    # Two teams, each with its own key on the shared account; the same namespace and name.
    one.kubectl.apply(
        [key_secret("shop", account.key(ANALYTICS_PERMISSIONS)), connection("shop", url=URL_1)],
        namespace=namespace,
    )
    wait_condition(one.kubectl, namespace, "shop", "Ready", "True")
    first = _endpoint(account, URL_1)
    two.kubectl.apply(
        [key_secret("shop", account.key(ANALYTICS_PERMISSIONS)), connection("shop", url=URL_2)],
        namespace=namespace,
    )
    wait_condition(two.kubectl, namespace, "shop", "Ready", "True")
    second = _endpoint(account, URL_2)

    # Passes on both sides, each after the other side's webhook exists: neither takes the
    # other's webhook for a predecessor of its own.
    for round_ in range(1, 3):
        for side in (one, two):
            _reconciled_after_edit(side, namespace, "shop", f"round {round_}", count=round_)
    assert {e["id"] for e in account.endpoints()} == {first["id"], second["id"]}
    # Each webhook carries its own cluster's identity: the kube-system namespace's UID.
    assert first["metadata"]["procon-cluster"] == one.identity
    assert second["metadata"]["procon-cluster"] == two.identity
    for side in (one, two):
        assert "DeletedWebhookEndpoint" not in {e["reason"] for e in events(side.kubectl, namespace, "shop")}
        wait_condition(side.kubectl, namespace, "shop", "Ready", "True")

    # A connection in cluster 2 at the URL cluster 1's connection serves is the newcomer: stalled,
    # naming the other connection and its cluster, advising nothing that cannot help.
    two.kubectl.apply(
        [
            key_secret("late", account.key(ANALYTICS_PERMISSIONS)),
            connection("late", url=URL_1, webhook={"conflictPolicy": "Replace"}),
        ],
        namespace=namespace,
    )
    obj = wait_condition(two.kubectl, namespace, "late", "Stalled", "True", "EndpointConflict")
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert f"{first['id']} of connection {namespace}/shop in cluster {one.identity}" in stalled["message"]
    assert "Replace" not in stalled["message"]
    assert _endpoint(account, URL_1)["id"] == first["id"]  # Replace deletes no procon webhook
    wait_condition(one.kubectl, namespace, "shop", "Ready", "True")

    # Deleting cluster 1's connection deletes its own webhook only; the URL is then free, and
    # cluster 2's newcomer takes it at its next check.
    one.kubectl.run("delete", "pconn", "shop", "-n", namespace, "--timeout=60s")
    assert _endpoint(account, URL_2)["id"] == second["id"]
    wait_condition(two.kubectl, namespace, "late", "Ready", "True", timeout=30)
    late = _endpoint(account, URL_1)
    assert late["metadata"]["procon-name"] == "late"
    assert late["metadata"]["procon-cluster"] == two.identity
    assert {e["id"] for e in account.endpoints()} == {second["id"], late["id"]}

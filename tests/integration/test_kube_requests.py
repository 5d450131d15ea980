"""What the operator asks the API server for, counted by the API server itself
(``apiserver_request_total``, read from its /metrics with the admin credentials).

Connections sharing a credentials Secret read it from the watch's view, not with a LIST each;
the signing Secret is read once per reconcile pass; and a change of the shared Secret (a new key,
its opt-in label removed) still reaches every connection within seconds, through the watch.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

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

CONNECTIONS = 8
# Far beyond the test: every reconcile counted here is one a change asked for.
DRIFT_INTERVAL = "300"
# A change of the Secret reaches every connection within this (through the watch: the drift
# check is minutes away).
WATCH_TIMEOUT = 10.0

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def apiserver_requests(kubectl: Kubectl) -> Counter[tuple[str, str, str]]:
    """Requests the API server has served, by (verb, resource[/subresource], scope)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for match in _SAMPLE.finditer(kubectl.run("get", "--raw", "/metrics").stdout):
        labels = dict(_LABEL.findall(match.group("labels")))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        key = (labels.get("verb", ""), resource, labels.get("scope", ""))
        counts[key] += int(float(match.group("value")))
    return counts


def secret_requests(counts: Counter[tuple[str, str, str]], verb: str) -> int:
    """The operator's requests for Secrets in a namespace (the controllers' own are cluster-wide)."""
    return counts[(verb, "secrets", "namespace")]


def reconciles(operator: OperatorProcess) -> int:
    """Reconcile passes the operator has finished (its own metric)."""
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in operator.scrape().splitlines()
        if line.startswith("procon_reconcile_total{")
    )


def settled(operator: OperatorProcess, quiet: float = 2.0) -> int:
    """Wait until no reconcile has finished for ``quiet`` seconds; the passes so far."""
    last, since = reconciles(operator), time.monotonic()

    def quiet_now() -> bool:
        nonlocal last, since
        now = reconciles(operator)
        if now != last:
            last, since = now, time.monotonic()
        return time.monotonic() - since >= quiet

    wait_for(quiet_now, timeout=60, interval=0.25, what="the operator to finish its reconciles")
    return last


@pytest.fixture
def fresh_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"reads-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


@pytest.fixture
def namespaced_operator(
    cluster: control_plane.Cluster,
    crd_installed: None,
    kubectl: Kubectl,
    stripe_emulator: StripeEmulator,
    fresh_namespace: str,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """An operator of its own, watching only the test's namespace."""
    from procon.dev.processes import free_port

    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_CLUSTER_NAME=f"reads-{uuid.uuid4().hex[:8]}",
        PROCON_DRIFT_INTERVAL=DRIFT_INTERVAL,
        PROCON_METRICS_PORT=str(free_port()),
    )
    env["PROCON_NAMESPACES"] = fresh_namespace  # (operator_env drops it)
    operator = start_operator(env, tmp_path / "operator.log", ["--log-level=info"])
    operator.metrics_token = metrics_reader_token(kubectl)
    yield operator
    operator.stop()


def verified_versions(kubectl: Kubectl, namespace: str) -> set[str]:
    """The credentials Secret versions the connections' statuses record as verified."""
    return {
        str(((item.get("status") or {}).get("verifiedCredentials") or {}).get("secretResourceVersion"))
        for item in kubectl.get_json("pconn", "-n", namespace)["items"]
    }


def terminating_namespaces(kubectl: Kubectl) -> list[str]:
    return [
        item["metadata"]["name"]
        for item in kubectl.get_json("namespace")["items"]
        if (item.get("status") or {}).get("phase") == "Terminating"
    ]


def stalled_reasons(kubectl: Kubectl, namespace: str) -> set[str]:
    reasons = set()
    for item in kubectl.get_json("pconn", "-n", namespace)["items"]:
        found = {c["type"]: c for c in (item.get("status") or {}).get("conditions") or []}
        reasons.add(str((found.get("Stalled") or {}).get("reason", "")))
    return reasons


@pytest.mark.no_session_operator  # its requests alone are counted
def test_connections_sharing_a_credentials_secret_read_it_from_the_watch(
    namespaced_operator: OperatorProcess,
    kubectl: Kubectl,
    stripe_emulator: StripeEmulator,
    fresh_namespace: str,
) -> None:
    operator, namespace = namespaced_operator, fresh_namespace
    account = StripeAccount(stripe_emulator)
    names = [f"c{index}" for index in range(CONNECTIONS)]
    shared = {"name": "shared-key"}
    docs = [
        key_secret("shared", account.key(ANALYTICS_PERMISSIONS)),
        *(
            connection(name, url=f"https://hooks.example.com/{name}", credentialsSecretRef=shared)
            for name in names
        ),
    ]

    # The API server's counts name no client: a namespace another test deleted is still being
    # emptied by the namespace controller, whose LISTs of Secrets would count as the operator's.
    wait_for(
        lambda: not terminating_namespaces(kubectl),
        timeout=90,
        interval=1,
        what="namespaces other tests deleted to be gone",
    )
    # First pass: new connections, one Secret among them.
    passes0 = settled(operator)
    before = apiserver_requests(kubectl)
    kubectl.apply(docs, namespace=namespace)
    wait_for(
        lambda: _all_ready(kubectl, namespace, CONNECTIONS),
        timeout=120,
        interval=0.5,
        what=f"{CONNECTIONS} connections to be Ready",
    )
    passes = settled(operator) - passes0
    first = apiserver_requests(kubectl) - before
    shown = {f"{verb} {resource}": n for (verb, resource, scope), n in sorted(first.items()) if scope}
    print(f"\nfirst pass of {CONNECTIONS} connections ({passes} reconciles): {shown}", file=sys.stderr)
    # One LIST at most, for the reconciles that missed the Secret before the watch (or that
    # read) delivered it; one each before.
    assert secret_requests(first, "LIST") <= 1, shown
    # The signing Secret: one read per pass (three in each first pass before).
    assert secret_requests(first, "GET") <= passes, (passes, shown)

    # A new key in the shared Secret: every connection verifies that very version, through the
    # watch, without a LIST.
    before = apiserver_requests(kubectl)
    new_key = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply(key_secret("shared", new_key), namespace=namespace)
    version = kubectl.get_json("secret", "shared-key", "-n", namespace)["metadata"]["resourceVersion"]
    wait_for(
        lambda: verified_versions(kubectl, namespace) == {version},
        timeout=WATCH_TIMEOUT,
        interval=0.25,
        what="every connection to verify the changed Secret",
    )
    settled(operator)
    changed = apiserver_requests(kubectl) - before
    assert stripe_emulator.key_uses(new_key) > 0
    assert secret_requests(changed, "LIST") == 0, changed

    # The opt-in label removed: no connection uses the Secret any more, within seconds.
    kubectl.run("label", "secret", "shared-key", "-n", namespace, "procon.dev/credentials-")
    wait_for(
        lambda: stalled_reasons(kubectl, namespace) == {"CredentialsSecretNotOptedIn"},
        timeout=WATCH_TIMEOUT,
        interval=0.25,
        what="every connection to stop using the Secret that opted out",
    )

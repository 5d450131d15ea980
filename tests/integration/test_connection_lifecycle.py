"""A connection's end: it goes whatever it carries, and the operator keeps nothing of it.

Against the real control plane, whose controller-manager runs the namespace
controller, so a namespace deletion here is the one a cluster does.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

from procon.api.v1alpha1 import FINALIZER
from procon.dev import cluster as control_plane
from procon.emulators.stripe import StripeEmulator
from tests.integration.churn import churn
from tests.integration.conftest import DRIFT_INTERVAL, Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    key_secret,
    metrics_reader_token,
    operator_env,
    start_operator,
    wait_condition,
)
from tests.waiting import wait_for

KIB = 1024
# The API server's limit on all annotations of an object together (keys and values).
ANNOTATIONS_LIMIT = 256 * KIB


def _namespace_gone(kubectl: Kubectl, namespace: str) -> bool:
    return kubectl.run("get", "namespace", namespace, check=False).returncode != 0


def test_connection_with_200_kib_of_annotations_goes_with_its_namespace(
    operator: OperatorProcess, kubectl: Kubectl, stripe_emulator: StripeEmulator
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", namespace)
    account = StripeAccount(stripe_emulator)
    body = connection("big")
    # Legal: 200 KiB in four keys, below the 256 KiB limit; but no room for a second copy.
    body["metadata"]["annotations"] = {f"notes.example.com/part-{i}": "x" * (50 * KIB) for i in range(4)}
    kubectl.apply([key_secret("big", account.key(ANALYTICS_PERMISSIONS)), body], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "big", "Ready", "True")
    assert len(account.endpoints()) == 1

    # Nothing the operator wrote copies the user's annotations (kopf's diff base did).
    annotations = obj["metadata"]["annotations"]
    own = {k: v for k, v in annotations.items() if not k.startswith("notes.example.com/")}
    assert sum(len(k) + len(v) for k, v in own.items()) < KIB, sorted(own)
    assert sum(len(k) + len(v) for k, v in annotations.items()) < ANNOTATIONS_LIMIT

    started = time.monotonic()
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: _namespace_gone(kubectl, namespace),
        timeout=60,
        interval=0.5,
        what=f"namespace {namespace} to be deleted",
    )
    assert time.monotonic() - started < 60
    assert account.endpoints() == [], "the connection's webhook is deleted on the way"


def test_another_controllers_finalizer_outlasts_procons_release(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    """procon adds and removes only its own finalizer, conditionally on the version it read: one
    another controller put on first, or adds while procon works, is never lost."""
    account = StripeAccount(stripe_emulator)
    body = connection("shop")
    body["metadata"]["finalizers"] = ["example.com/first"]
    kubectl.apply([key_secret("shop", account.key(ANALYTICS_PERMISSIONS)), body], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert obj["metadata"]["finalizers"] == ["example.com/first", FINALIZER]
    kubectl.run(
        "patch", "pconn", "shop", "-n", namespace, "--type=json",
        "-p", '[{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/later"}]',
    )  # fmt: skip
    generation = kubectl.get_json("pconn", "shop", "-n", namespace)["metadata"]["generation"]
    kubectl.run("delete", "pconn", "shop", "-n", namespace, "--wait=false")
    wait_for(
        lambda: (
            kubectl.get_json("pconn", "shop", "-n", namespace)["metadata"]["finalizers"]
            == ["example.com/first", "example.com/later"]
        ),
        timeout=30,
        what="procon to release its finalizer only",
    )
    # What wakes the operator for a deletion (procon.k8s.handlers): the generation moved with it.
    assert kubectl.get_json("pconn", "shop", "-n", namespace)["metadata"]["generation"] > generation
    assert account.endpoints() == [], "the webhook is deleted before the release"
    kubectl.run(
        "patch", "pconn", "shop", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    wait_for(
        lambda: kubectl.run("get", "pconn", "shop", "-n", namespace, check=False).returncode != 0,
        timeout=30,
        what="the connection to go once the other finalizers are removed",
    )


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, f"no VmRSS for process {pid}"
    return int(match.group(1)) / 1024


def _state_entries(operator: OperatorProcess) -> dict[str, float]:
    text = operator.scrape()
    found = re.findall(r'^procon_connection_state_entries\{store="([^"]+)"\} (\S+)$', text, re.MULTILINE)
    return {store: float(value) for store, value in found}


def _wait_until_nothing_is_kept(operator: OperatorProcess, after: str) -> None:
    """Wait until every store of per-connection state is empty (the last watch events land soon
    after the last deletion)."""

    def empty() -> bool:
        entries = _state_entries(operator)
        return bool(entries) and not any(entries.values())

    try:
        wait_for(empty, timeout=30, what=f"the operator to drop all per-connection state after {after}")
    except AssertionError as error:
        raise AssertionError(f"{error}\nstill kept: {_state_entries(operator)}") from None


@pytest.mark.no_session_operator  # it alone must serve the connections it counts
def test_memory_does_not_grow_with_deleted_connections(
    cluster: control_plane.Cluster,
    crd_installed: None,
    kubectl: Kubectl,
    stripe_emulator: StripeEmulator,
    tmp_path: Path,
) -> None:
    from procon.dev.processes import free_port

    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_DRIFT_INTERVAL=DRIFT_INTERVAL,
        PROCON_CLUSTER_NAME="integration",
        PROCON_METRICS_PORT=str(free_port()),
    )
    operator = start_operator(env, tmp_path / "operator.log", ["--log-level=info"])
    operator.metrics_token = metrics_reader_token(kubectl)
    try:
        # Warm-up: the first connections fill pools, caches of code and the allocator's arenas.
        churn(kubectl, stripe_emulator, 40)
        _wait_until_nothing_is_kept(operator, "the warm-up")
        warm = _rss_mib(operator.process.pid)

        churn(kubectl, stripe_emulator, 300)
        # Deterministic: every per-connection store is empty again.
        _wait_until_nothing_is_kept(operator, "300 create/delete cycles")
        # And the process as a whole, loosely (RSS is noisy; bench/lifecycle_memory.py measures it):
        # about 2 MiB of pools and buffers that settle, where a leak of the size was 100+.
        grown = _rss_mib(operator.process.pid) - warm
        assert grown < 8, f"the operator grew by {grown:.1f} MiB over 300 create/delete cycles"
    finally:
        operator.stop()

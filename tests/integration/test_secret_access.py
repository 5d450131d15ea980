"""Which Secrets reach the operator, and which connections may use a key.

- A credentials Secret is used only when it opted in with the label
  ``procon.dev/credentials: "true"``; a connection naming any other Secret is
  Stalled with a reason that names the label, and nothing is sent to the processor.
- The annotation ``procon.dev/allowed-connections`` narrows which connections
  of the namespace may use a key.
- The operator's Secret watches are filtered on the API server: it receives
  events for labelled Secrets only (counted by ``procon_secret_watch_events_total``),
  and its memory does not follow the size of the unrelated Secrets in the cluster.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from procon.dev import cluster as control_plane
from procon.dev.processes import free_port
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    CREDENTIALS_LABELS,
    OperatorProcess,
    StripeAccount,
    connection,
    key_secret,
    metrics_reader_token,
    operator_env,
    start_operator,
    wait_condition,
)
from tests.integration.test_operator_signals import sample
from tests.waiting import wait_for

# Less than the stalled connection's next drift check (0.8 x the session's 10 s): a reaction
# within it came from the watch.
WATCH_TIMEOUT = 6.0


@pytest.fixture
def account(stripe_emulator: StripeEmulator) -> StripeAccount:
    return StripeAccount(stripe_emulator)


def test_a_credentials_secret_without_the_opt_in_label_is_not_used(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    """A user who may create connections but not read Secrets names a Secret that did not opt in:
    the connection is Stalled, saying why, and the key is never sent to the processor."""
    key = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply([key_secret("shop", key, opted_in=False), connection("shop")], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "CredentialsSecretNotOptedIn")
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    credentials = conditions["CredentialsValid"]
    assert (credentials["status"], credentials["reason"]) == ("False", "CredentialsSecretNotOptedIn")
    assert 'not labelled procon.dev/credentials: "true"' in credentials["message"], credentials
    assert conditions["Ready"]["status"] == "False"
    assert account.endpoints() == []
    assert "account" not in obj["status"], obj["status"]  # never verified: the key was not used

    # Whoever may write the Secret opts it in; the label change arrives through the watch.
    kubectl.run("label", "secret", "shop-key", "-n", namespace, "procon.dev/credentials=true")
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert len(account.endpoints()) == 1


def test_the_allowed_connections_annotation_narrows_who_may_use_a_key(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    secret = key_secret("shared", account.key(ANALYTICS_PERMISSIONS))
    secret["metadata"]["annotations"] = {"procon.dev/allowed-connections": "shop, billing"}
    ref = {"name": "shared-key"}
    shop = connection("shop", credentialsSecretRef=ref, url="https://hooks.example.com/shop")
    intruder = connection("intruder", credentialsSecretRef=ref, url="https://attacker.example.net/all")
    kubectl.apply([secret, shop, intruder], namespace=namespace)

    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    obj = wait_condition(kubectl, namespace, "intruder", "Stalled", "True", "CredentialsSecretNotAllowed")
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert "procon.dev/allowed-connections" in stalled["message"], stalled
    assert "(billing, shop)" in stalled["message"], stalled
    assert "intruder is not one of them" in stalled["message"], stalled
    urls = [e["url"] for e in account.endpoints()]
    assert urls == ["https://hooks.example.com/shop"], urls

    # Listing it lets it in (the annotation change arrives through the watch) ...
    kubectl.run(
        "annotate",
        "--overwrite",
        "secret",
        "shared-key",
        "-n",
        namespace,
        "procon.dev/allowed-connections=shop,intruder",
    )
    wait_condition(kubectl, namespace, "intruder", "Ready", "True", timeout=WATCH_TIMEOUT)
    # ... and an empty list lets no connection use the key.
    kubectl.run(
        "annotate", "--overwrite", "secret", "shared-key", "-n", namespace, "procon.dev/allowed-connections="
    )
    obj = wait_condition(
        kubectl, namespace, "shop", "Stalled", "True", "CredentialsSecretNotAllowed", timeout=WATCH_TIMEOUT
    )


# ---------------------------------------------------------------- what the watches deliver


@pytest.fixture
def namespaced_operator(
    cluster: control_plane.Cluster,
    kubectl: Kubectl,
    crd_installed: None,
    stripe_emulator: StripeEmulator,
    namespace: str,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """An operator of its own, watching only this test's namespace, so every Secret event it
    counts is one this test caused."""
    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_CLUSTER_NAME=f"watch-{uuid.uuid4().hex[:8]}",
        PROCON_METRICS_PORT=str(free_port()),
    )
    env["PROCON_NAMESPACES"] = namespace  # (operator_env drops it)
    process = start_operator(env, tmp_path / "operator.log")
    process.metrics_token = metrics_reader_token(kubectl)
    yield process
    process.stop()


def _secret_events(operator: OperatorProcess) -> dict[str, float]:
    text = operator.scrape()
    return {
        watch: sample(text, "procon_secret_watch_events_total", watch=watch)
        for watch in ("credentials", "signing")
    }


def _rss_kib(operator: OperatorProcess) -> int:
    status = Path(f"/proc/{operator.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


def _secret(name: str, size: int, labels: dict[str, str]) -> dict[str, object]:
    # Random bytes: a Secret as big as the API allows is about 1 MiB.
    payload = base64.b64encode(secrets.token_bytes(size)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": labels},
        "data": {"blob": payload},
    }


UNRELATED = 40
UNRELATED_BYTES = 700 * 1024


def test_unlabelled_secrets_never_reach_the_operator(
    namespaced_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    """40 large Secrets without procon's labels (28 MiB) are created, changed and deleted in the
    watched namespace: the operator receives no event for any of them, and its memory stays
    where it was; a labelled credentials Secret and a managed-by=procon Secret, created after
    them, are each received once (so the watches were running)."""
    operator = namespaced_operator
    wait_for(lambda: _secret_events(operator) is not None, timeout=10, what="the metrics")
    before = _secret_events(operator)
    rss_before = _rss_kib(operator)

    names = [f"unrelated-{i}" for i in range(UNRELATED)]
    for name in names:
        # One apply per Secret: a single request of 28 MiB would exceed the API server's limit.
        kubectl.apply(_secret(name, UNRELATED_BYTES, {"app": "someone-else"}), namespace=namespace)
    kubectl.run("label", "secret", *names[:10], "-n", namespace, "tier=changed")
    kubectl.run("delete", "secret", *names[10:20], "-n", namespace)

    kubectl.apply(_secret("opted-in", 16, dict(CREDENTIALS_LABELS)), namespace=namespace)
    kubectl.apply(
        _secret("signing", 16, {"app.kubernetes.io/managed-by": "procon", "procon.dev/connection": "x"}),
        namespace=namespace,
    )

    def both_labelled_arrived() -> dict[str, float] | None:
        now = _secret_events(operator)
        arrived = all(now[watch] >= before[watch] + 1 for watch in now)
        return now if arrived else None

    after = wait_for(both_labelled_arrived, timeout=15, what="the labelled Secrets' events")
    # Exactly one event each: none of the 40 unrelated Secrets' 60 events came through.
    assert after == {watch: before[watch] + 1 for watch in before}, (before, after)
    grown_mib = (_rss_kib(operator) - rss_before) / 1024
    assert grown_mib < 8, f"the operator's memory grew by {grown_mib:.1f} MiB"
    log = operator.log()
    assert "unrelated-" not in log, "an unrelated Secret reached the operator"

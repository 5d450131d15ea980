"""What an operations team watches: metrics, liveness, logs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import pytest

from procon.dev import cluster as control_plane
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    key_secret,
    operator_env,
    signing_secret,
    start_operator,
    wait_condition,
)
from tests.waiting import wait_for


def scrape(operator: OperatorProcess) -> str:
    return operator.scrape()


def sample(text: str, metric: str, **labels: str) -> float:
    """The value of one sample, 0 if absent."""
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_change_as_connections_reconcile(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    before = scrape(operator)
    account = StripeAccount(stripe_emulator)
    kubectl.apply(
        [key_secret("shop", account.key(ANALYTICS_PERMISSIONS)), connection("shop")], namespace=namespace
    )
    wait_condition(kubectl, namespace, "shop", "Ready", "True")

    def ready_gauge() -> bool:
        text = scrape(operator)
        return (
            sample(
                text,
                "procon_connection_condition",
                namespace=namespace,
                name="shop",
                condition="Ready",
                status="True",
            )
            == 1.0
        )

    wait_for(ready_gauge, timeout=5, what="the Ready gauge")
    after = scrape(operator)
    assert sample(after, "procon_reconcile_total", processor="stripe", result="ready") > sample(
        before, "procon_reconcile_total", processor="stripe", result="ready"
    )
    created = dict(processor="stripe", operation="POST /v1/webhook_endpoints", status_code="200")
    assert sample(after, "procon_processor_api_calls_total", **created) > sample(
        before, "procon_processor_api_calls_total", **created
    )
    assert sample(after, "procon_reconcile_duration_seconds_count", processor="stripe") > 0
    assert (
        sample(
            after,
            "procon_connection_condition",
            namespace=namespace,
            name="shop",
            condition="Ready",
            status="False",
        )
        == 0.0
    )
    # No key material in label values.
    assert "rk_test_" not in after
    assert "we_" not in after.split("procon_processor_api_calls_total")[1].split("\n# ")[0]


def test_watch_event_metric_drops_when_a_connection_changes(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    """The gauge counts from the last watch event: after a quiet spell it is above the quiet time;
    applying a connection brings a watch event, and the gauge falls below what it read before. Without
    an event it could only have grown, so a lower value proves the watch delivered one."""
    metric = "procon_seconds_since_last_watch_event"

    def since_last_event() -> float:
        text = scrape(operator)
        (line,) = [line for line in text.splitlines() if line.startswith(metric + " ")]
        return float(line.split()[1])

    def quiet() -> float | None:
        seconds = since_last_event()
        return seconds if seconds > 1.0 else None

    # Other tests' clean-up (namespaces being emptied) brings events too: first a quiet second.
    before = wait_for(quiet, timeout=30, what="a second with no watch event")
    kubectl.apply(connection("watched"), namespace=namespace)

    def fell() -> float | None:
        seconds = since_last_event()
        return seconds if seconds < before else None

    after = wait_for(fell, timeout=10, what=f"{metric} to fall below {before:.1f}s")
    assert after < before


def test_liveness_endpoint_reports_the_watch(operator: OperatorProcess) -> None:
    url = next(a.split("=", 1)[1] for a in operator.args if a.startswith("--liveness="))
    response = httpx.get(url, timeout=15)
    assert response.status_code == 200
    body = response.json()
    assert "seconds_since_last_watch_event" in body["watch"]


@pytest.mark.no_session_operator  # it runs an operator of its own, which alone must serve its namespace
def test_json_logs_of_a_reconcile(
    cluster: control_plane.Cluster,
    crd_installed: None,
    kubectl: Kubectl,
    namespace: str,
    stripe_emulator: StripeEmulator,
    tmp_path: Path,
) -> None:
    """PROCON_LOG_FORMAT=json, at debug level, through a whole reconcile (Secret read, permission
    probes, webhook created, signing secret published) and a deletion: every line is one JSON
    object, and neither the API key nor the webhook signing secret appears in any of them."""
    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_CLUSTER_NAME="json-logs",
        PROCON_LOG_FORMAT="json",
        PROCON_METRICS_PORT="0",
    )
    env["PROCON_NAMESPACES"] = namespace
    process = start_operator(env, tmp_path / "json.log")
    account = StripeAccount(stripe_emulator)
    key = account.key(ANALYTICS_PERMISSIONS)
    try:
        kubectl.apply([key_secret("shop", key), connection("shop")], namespace=namespace)
        wait_condition(kubectl, namespace, "shop", "Ready", "True")
        secret = signing_secret(kubectl, namespace, "shop")["signingSecret"]
        kubectl.run("delete", "pconn", "shop", "-n", namespace, "--timeout=60s")
        wait_for(lambda: not account.endpoints(), timeout=30, what="the webhook to be deleted")
    finally:
        process.stop()

    lines = [line for line in process.log().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line[:300]}")
    assert all(isinstance(r, dict) and "message" in r for r in records), records[:3]
    messages = [r["message"] for r in records]
    assert any(m.startswith("procon started") for m in messages), messages[:5]
    # The lines cover what handled the secrets: the webhook created (Stripe returns its signing
    # secret then) and the secret published, the webhook deleted.
    assert any(
        f"{namespace}/shop: CreatedWebhookEndpoint:" in m and "published its signing secret" in m
        for m in messages
    ), messages
    assert any(f"{namespace}/shop: DeletedWebhookEndpoint:" in m for m in messages), messages
    log = "\n".join(lines)
    for value in (key, secret, secret.removeprefix("whsec_")):
        assert value not in log
        assert base64.b64encode(value.encode()).decode() not in log

"""What an operations team watches: metrics, liveness, logs."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx

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
    start_operator,
    wait_condition,
)
from tests.waiting import wait_for


def scrape(operator: OperatorProcess) -> str:
    port = operator.env["PROCON_METRICS_PORT"]
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


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
    assert "procon_seconds_since_last_watch_event" in after
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


def test_liveness_endpoint_reports_the_watch(operator: OperatorProcess) -> None:
    url = next(a.split("=", 1)[1] for a in operator.args if a.startswith("--liveness="))
    response = httpx.get(url, timeout=15)
    assert response.status_code == 200
    body = response.json()
    assert "seconds_since_last_watch_event" in body["watch"]


def test_json_logs(cluster: control_plane.Cluster, crd_installed: None, tmp_path: Path) -> None:
    # Its own empty namespace, so it never competes with the session's operator.
    namespace = f"json-{uuid.uuid4().hex[:8]}"
    env = operator_env(
        cluster.env(), PROCON_NAMESPACES=namespace, PROCON_LOG_FORMAT="json", PROCON_METRICS_PORT="0"
    )
    env["PROCON_NAMESPACES"] = namespace
    process = start_operator(env, tmp_path / "json.log")
    try:
        lines = [line for line in process.log().splitlines() if line.strip()]
        started = [json.loads(line) for line in lines if "procon started" in line]
        assert started, lines[:5]
        assert started[0]["message"].startswith("procon started")
        assert all(line.startswith("{") for line in lines)
    finally:
        process.stop()

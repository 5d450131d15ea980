"""The fleet bench in its smoke size: ``bench/fleet.py --connections 30`` on the session's control
plane prints every figure it promises, with values that make sense (nothing here is timed).

The bench runs its own operator (watching only its namespace) against its own Stripe emulator,
so it runs before the session's operator starts, which would watch its namespace too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.fleet import format_report

from procon.dev import cluster as control_plane
from tests.integration.conftest import Kubectl

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 30
PER_ACCOUNT = 10
ACCOUNTS = CONNECTIONS // PER_ACCOUNT
DRIFT_INTERVAL = 8


@pytest.fixture(scope="module")
def report(cluster: control_plane.Cluster, crd_installed: None) -> dict[str, Any]:
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fleet.py"),
            f"--connections={CONNECTIONS}",
            f"--per-account={PER_ACCOUNT}",
            f"--drift-interval={DRIFT_INTERVAL}",
            "--ready-timeout=180",
            "--restart-timeout=180",
            f"--state-dir={cluster.state_dir}",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert finished.returncode == 0, f"stdout:\n{finished.stdout[-3000:]}\nstderr:\n{finished.stderr[-5000:]}"
    printed: dict[str, Any] = json.loads(finished.stdout)
    printed["_progress"] = finished.stderr
    return printed


@pytest.mark.no_session_operator
def test_every_connection_becomes_ready_and_the_apply_is_timed(report: dict[str, Any]) -> None:
    assert report["connections"] == CONNECTIONS
    assert report["accounts"] == ACCOUNTS
    first = report["first_pass"]
    assert first["complete"] is True
    assert first["ready"] == CONNECTIONS
    assert first["apply_seconds"] > 0
    assert 0 <= first["ready_after_apply_seconds"] <= first["ready_after_apply_start_seconds"]
    # Progress went to stderr, so stdout held nothing but the JSON document.
    assert "Ready" in report["_progress"]


@pytest.mark.no_session_operator
def test_the_operator_acts_as_the_charts_service_account(report: dict[str, Any]) -> None:
    """Not the admin certificate (system:masters skips RBAC and the admission policies): the
    ServiceAccount of the chart's release, in a namespace of its own beside the fleet's."""
    assert re.fullmatch(
        r"system:serviceaccount:fleet-[\w-]+-system:fleet-[\w-]+-procon", report["operator_user"]
    )
    # The bench's own TokenRequest and whoami came before the operator started: in no window.
    for phase in ("first_pass", "drift_interval_window", "restart"):
        assert not any("serviceaccounts/token" in kind for kind in report[phase]["kube_writes"]["by_kind"])


@pytest.mark.no_session_operator
def test_first_pass_counts_one_webhook_per_connection_and_the_operators_writes(
    report: dict[str, Any],
) -> None:
    first = report["first_pass"]
    # Every connection creates its own webhook, once: the emulator counted each.
    assert first["calls"].get("POST /v1/webhook_endpoints") == CONNECTIONS
    assert first["calls_total"] == sum(first["calls"].values())
    per_account = first["calls_per_account"]
    assert per_account["max"] >= per_account["mean"] >= CONNECTIONS / ACCOUNTS
    writes = first["kube_writes"]
    # The operator published one signing Secret per connection; the bench's own apply is not counted.
    assert writes["by_kind"].get("POST secrets") == CONNECTIONS
    assert not any(kind.startswith("APPLY ") for kind in writes["by_kind"])
    # The chart's finalizer policy put procon's finalizer on each connection as it was created:
    # the operator patched none of them, only their status.
    assert "PATCH processorconnections.procon.dev" not in writes["by_kind"], writes["by_kind"]
    assert writes["by_kind"].get("PATCH processorconnections.procon.dev/status", 0) >= CONNECTIONS
    assert writes["total"] == sum(writes["by_kind"].values())
    assert 50 < first["operator_peak_rss_mib"] < 4096
    # Who used the cores: the control plane's own processes, found and measured.
    assert set(first["server_cpu_seconds"]) == {"kube-apiserver", "etcd"}
    assert first["server_cpu_seconds"]["kube-apiserver"] > 0
    assert set(first["cores_after_apply"]) == {"kube-apiserver", "etcd", "operator"}
    assert all(used >= 0 for used in first["cores_after_apply"].values())


@pytest.mark.no_session_operator
def test_an_unchanged_interval_counts_checks_per_account_and_no_creates(report: dict[str, Any]) -> None:
    drift = report["drift_interval_window"]
    assert drift["seconds"] >= DRIFT_INTERVAL
    # Each connection checks within 0.8 to 1.2 intervals of its last check: some checks fall in
    # a window one interval long, and none of them creates or deletes a webhook.
    assert drift["list_calls"] >= 1
    assert drift["reconciles"] >= 1
    assert not any(route.startswith(("POST", "DELETE")) for route in drift["calls"])
    assert drift["calls_per_account"]["max"] >= drift["calls_per_account"]["mean"] > 0
    assert drift["kube_writes"]["total"] >= 0
    assert drift["operator_rss_mib"] > 0


@pytest.mark.no_session_operator
def test_a_restart_checks_every_connection_and_keeps_them_ready(report: dict[str, Any]) -> None:
    restart = report["restart"]
    assert restart["checked"] >= CONNECTIONS
    assert restart["checked_all_seconds"] >= restart["started_seconds"] > 0
    assert restart["ready_after"] == CONNECTIONS
    # Everything was in place: the restart re-creates nothing.
    assert "POST /v1/webhook_endpoints" not in restart["calls"]
    assert restart["operator_peak_rss_mib"] > 0


@pytest.mark.no_session_operator
def test_the_text_report_names_every_figure(report: dict[str, Any]) -> None:
    text = format_report(report)
    for phrase in (
        f"{CONNECTIONS} Stripe connections over {ACCOUNTS} accounts",
        "after the apply's end",
        "first pass:",
        "one unchanged drift interval",
        "per account: max",
        "Kubernetes writes:",
        "control plane CPU:",
        "cores used from the apply's end to all Ready",
        "peak RSS",
        "restart:",
        "runs as system:serviceaccount:",
        f"checked all {CONNECTIONS}",
        "load average",
    ):
        assert phrase in text, f"{phrase!r} missing from:\n{text}"


@pytest.mark.no_session_operator
def test_the_bench_leaves_no_namespace_behind(report: dict[str, Any], kubectl: Kubectl) -> None:
    namespaces = kubectl.get_json("namespaces")["items"]
    assert not [n["metadata"]["name"] for n in namespaces if n["metadata"]["name"].startswith("fleet-")]

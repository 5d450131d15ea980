"""Argo CD's health check for ProcessorConnections (docs/argocd/health.lua), run in a real Lua 5.1
with the libraries Argo CD opens, against the statuses the operator writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argocd_health import HEALTH_LUA, LuaError, health

HEALTH_KEY = "resource.customizations.health.procon.dev_ProcessorConnection"


def cond(type_: str, status: str, reason: str, message: str = "", generation: int = 3) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-11-22T10:00:00Z",
    }


def obj(
    *conditions: dict[str, Any], generation: int = 3, observed: int | None = 3, **metadata: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "procon.dev/v1alpha1",
        "kind": "ProcessorConnection",
        "metadata": {"name": "shop", "namespace": "payments", "generation": generation, **metadata},
        "spec": {"processor": "stripe"},
        "status": status,
    }


READY = cond("Ready", "True", "Ready", "the connection is verified and its webhook is ready")
NOT_RECONCILING = cond("Reconciling", "False", "ReconcileSucceeded")
NOT_STALLED = cond("Stalled", "False", "NotStalled")

SAMPLES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "ready",
        obj(READY, NOT_RECONCILING, NOT_STALLED, cond("CredentialsValid", "True", "Valid")),
        "Healthy",
        "Ready: the connection is verified and its webhook is ready",
    ),
    (
        "starting",
        obj(
            cond("Ready", "False", "Reconciling", "the operator has seen this connection and is checking it"),
            cond(
                "Reconciling",
                "True",
                "Reconciling",
                "the operator has seen this connection and is checking it",
            ),
            NOT_STALLED,
        ),
        "Progressing",
        "Reconciling: the operator has seen this connection and is checking it",
    ),
    (
        "retrying",
        obj(
            cond("Ready", "False", "ProcessorUnavailable", "Stripe answered 503"),
            cond("Reconciling", "True", "RetryingAfterError", "Stripe answered 503"),
            NOT_STALLED,
        ),
        "Progressing",
        "RetryingAfterError: Stripe answered 503",
    ),
    (
        "stalled",
        obj(
            cond("Ready", "False", "InsufficientPermissions", "missing rak_charge_read"),
            cond("Reconciling", "False", "Stalled"),
            cond("Stalled", "True", "InsufficientPermissions", "missing rak_charge_read"),
        ),
        "Degraded",
        "InsufficientPermissions: missing rak_charge_read",
    ),
    (
        "stalled-wins-over-reconciling",
        obj(
            cond("Ready", "False", "InvalidCredentials"),
            cond("Reconciling", "True", "Progressing"),
            cond("Stalled", "True", "InvalidCredentials"),
        ),
        "Degraded",
        "InvalidCredentials",
    ),
    (
        "generation-not-observed",
        obj(READY, NOT_RECONCILING, NOT_STALLED, generation=4, observed=3),
        "Progressing",
        "Waiting for the operator to observe generation 4",
    ),
    (
        "stalled-at-an-older-generation",
        obj(cond("Stalled", "True", "InvalidCredentials"), generation=4, observed=3),
        "Progressing",
        "Waiting for the operator to observe generation 4",
    ),
    (
        "no-observed-generation",
        obj(READY, NOT_RECONCILING, NOT_STALLED, observed=None),
        "Progressing",
        "Waiting for the operator to observe generation 3",
    ),
    (
        "ready-condition-from-an-older-generation",
        obj(cond("Ready", "True", "Ready", generation=2), NOT_RECONCILING, NOT_STALLED),
        "Progressing",
        "Waiting for the operator to observe generation 3",
    ),
    (
        "ready-false-without-reconciling",
        obj(cond("Ready", "False", "WebhookPending"), NOT_RECONCILING, NOT_STALLED),
        "Progressing",
        "WebhookPending",
    ),
    ("ready-unknown", obj(cond("Ready", "Unknown", "Unknown")), "Progressing", "Unknown"),
    ("no-ready-condition", obj(NOT_STALLED), "Progressing", "Waiting for the Ready condition"),
    ("empty-conditions", obj(), "Progressing", "Waiting for the Ready condition"),
    (
        "paused",
        obj(READY, NOT_RECONCILING, NOT_STALLED, annotations={"procon.dev/paused": "true"}),
        "Suspended",
        "Paused (procon.dev/paused): the operator leaves this connection and its webhook alone",
    ),
    (
        "paused-while-stalled",
        obj(cond("Stalled", "True", "InvalidCredentials"), annotations={"procon.dev/paused": "true"}),
        "Suspended",
        "Paused (procon.dev/paused): the operator leaves this connection and its webhook alone",
    ),
    (
        "pause-annotation-not-true",
        obj(READY, NOT_RECONCILING, NOT_STALLED, annotations={"procon.dev/paused": "false"}),
        "Healthy",
        "Ready: the connection is verified and its webhook is ready",
    ),
    (
        "paused-and-being-deleted",
        obj(
            READY,
            annotations={"procon.dev/paused": "true"},
            deletionTimestamp="2026-11-22T10:05:00Z",
        ),
        "Progressing",
        "Being deleted: waiting for the operator's clean-up (the webhook, per deletionPolicy)",
    ),
    (
        "being-deleted",
        obj(READY, NOT_RECONCILING, NOT_STALLED, deletionTimestamp="2026-11-22T10:05:00Z"),
        "Progressing",
        "Being deleted: waiting for the operator's clean-up (the webhook, per deletionPolicy)",
    ),
]


@pytest.mark.parametrize(
    ("sample", "status", "message"), [s[1:] for s in SAMPLES], ids=[s[0] for s in SAMPLES]
)
def test_health(sample: dict[str, Any], status: str, message: str) -> None:
    assert health(sample) == {"status": status, "message": message}


def test_no_status_yet() -> None:
    fresh = obj()
    del fresh["status"]
    assert health(fresh) == {
        "status": "Progressing",
        "message": "Waiting for the operator to report on the connection",
    }


def test_the_sandbox_is_argocds() -> None:
    """A script using a library Argo CD does not open fails here, as it would there."""
    with pytest.raises(LuaError):
        health(obj(READY), 'local hs = {}; hs.status = string.format("%s", "Healthy"); return hs')
    with pytest.raises(LuaError):
        health(obj(READY), 'local hs = {}; hs.status = ("Healthy"):lower(); return hs')
    with pytest.raises(AssertionError, match="not an Argo CD health status"):
        health(obj(READY), 'return {status = "Fine"}')


def test_it_is_lua_51() -> None:
    """gopher-lua is Lua 5.1; integer division, goto and the like would not parse there."""
    assert health(obj(), 'return {status = _VERSION == "Lua 5.1" and "Healthy" or "Degraded"}')["status"] == (
        "Healthy"
    )


@pytest.mark.parametrize(
    "path", ["docs/argocd/argocd-cm.yaml", "examples/gitops/argocd/argocd-cm-health.yaml"]
)
def test_argocd_cm_snippets_carry_the_script_verbatim(repo_root: Path, path: str) -> None:
    config_map = yaml.safe_load((repo_root / path).read_text())
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"][HEALTH_KEY] == HEALTH_LUA.read_text(), (
        f"{path} differs from docs/argocd/health.lua; copy the script into it"
    )

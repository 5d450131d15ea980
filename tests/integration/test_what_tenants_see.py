"""What a tenant reads about its connections (status, events) and what the operator logs: never a
credential of its own URL, and never blanked out by what another tenant put in a Secret.

The operator process, the real API server and the Stripe emulator, as in the Stripe suite.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    events,
    key_secret,
    wait_condition,
    wait_for_events,
)

pytestmark = pytest.mark.usefixtures("operator")

WATCH_TIMEOUT = 6.0
REDACTED = "[REDACTED]"


@pytest.fixture
def account(stripe_emulator: StripeEmulator) -> StripeAccount:
    return StripeAccount(stripe_emulator)


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    """Another tenant's namespace."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


def condition_message(obj: dict[str, Any], type_: str) -> str:
    return str(next(c for c in obj["status"]["conditions"] if c["type"] == type_)["message"])


def test_another_tenants_secret_does_not_blank_out_this_tenants_events_and_urls(
    kubectl: Kubectl,
    namespace: str,
    other_namespace: str,
    account: StripeAccount,
    stripe_emulator: StripeEmulator,
) -> None:
    """Tenant B writes words of tenant A's messages into its credentials Secret: A's webhook id
    as the key (a field the driver uses) and A's host under a field it does not. A's events,
    conditions and status URL stay whole. (Every value of every Secret once went into one global
    list: A read ``updated webhook [REDACTED]`` and ``https://[REDACTED]/...``.)"""
    host = f"payments-{secrets.token_hex(4)}.example.com"
    url = f"https://{host}/hooks/stripe"
    key = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply([key_secret("shop", key), connection("shop", url=url)], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    webhook_id = obj["status"]["webhook"]["id"]
    assert len(webhook_id) >= 8

    poison = key_secret("shop", webhook_id)  # as any tenant writes its credentials Secret
    poison["stringData"].update({"notes": host, "path": "/hooks/stripe"})
    kubectl.apply([poison, connection("shop", url="https://b.example.com/hooks")], namespace=other_namespace)
    # B's connection has read its Secret (and refused the key) before A speaks again.
    wait_condition(kubectl, other_namespace, "shop", "Stalled", "True", "InvalidCredentials")

    kubectl.apply(
        connection("shop", url=url, events=["charge.succeeded", "payout.paid", "charge.refunded"]),
        namespace=namespace,
    )
    updated = wait_for_events(kubectl, namespace, "shop", "UpdatedWebhookEndpoint", timeout=WATCH_TIMEOUT)
    assert updated[-1]["message"].startswith(f"updated webhook {webhook_id}: ")
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert obj["status"]["webhook"]["url"] == url
    assert obj["status"]["webhook"]["id"] == webhook_id
    assert condition_message(obj, "Ready") == f"webhook {webhook_id} delivers 3 event types"
    shown = json.dumps([obj["status"], events(kubectl, namespace, "shop")])
    assert REDACTED not in shown


def test_a_token_in_the_webhook_urls_query_is_sent_but_never_shown(
    kubectl: Kubectl,
    namespace: str,
    account: StripeAccount,
    stripe_emulator: StripeEmulator,
    operator: OperatorProcess,
) -> None:
    """The query is the user's: the processor gets the URL whole. What people read (status,
    condition messages, events, the operator's log) shows ``token=[REDACTED]``."""
    token = f"abc123secret{secrets.token_hex(6)}"
    url = f"https://hooks.example.com/stripe?token={token}"
    shown_url = f"https://hooks.example.com/stripe?token={REDACTED}"
    foreign = stripe_emulator.create_endpoint(account.id, url, ["charge.succeeded"])
    key = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply([key_secret("shop", key), connection("shop", url=url)], namespace=namespace)
    # A condition message that names the URL: the conflict with an endpoint at it.
    wait_condition(kubectl, namespace, "shop", "Stalled", "True", "EndpointConflict")
    wait_for_events(kubectl, namespace, "shop", "EndpointConflict")
    conflicting = kubectl.get_json("pconn", "shop", "-n", namespace)

    kubectl.apply(connection("shop", url=url, webhook={"conflictPolicy": "Replace"}), namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert obj["status"]["webhook"]["url"] == shown_url
    endpoints = account.endpoints()
    assert [e["url"] for e in endpoints] == [url]  # sent whole
    assert endpoints[0]["id"] != foreign["id"]

    shown = json.dumps([conflicting["status"], obj["status"], events(kubectl, namespace, "shop")])
    assert token not in shown
    log = operator.log()
    assert f"/{namespace}/shop" in log or f"{namespace}/shop" in log  # the log does speak of it
    assert token not in log

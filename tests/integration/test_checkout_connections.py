"""Checkout.com connections end to end: the operator process, the real API server, the emulator.

Each test asserts both sides: the connection's status and Secrets, and the
workflows in the emulator (read unmasked, as only the emulator can).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from procon.emulators.checkout import CheckoutEmulator
from procon.reconcile.ownership import Owner
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    CHECKOUT_SCOPES,
    CheckoutClient,
    OperatorProcess,
    checkout_connection,
    checkout_secret,
    events,
    signing_secret,
    wait_condition,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

WATCH_TIMEOUT = 6.0
DRIFT_TIMEOUT = 30.0


@pytest.fixture
def client(checkout_emulator: CheckoutEmulator) -> CheckoutClient:
    return CheckoutClient(checkout_emulator)


def apply(
    kubectl: Kubectl, namespace: str, name: str, client: CheckoutClient, secret: dict[str, Any], **spec: Any
) -> None:
    kubectl.apply([secret, checkout_connection(name, client, **spec)], namespace=namespace)


def webhook_action(workflow: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in workflow["actions"] if a["type"] == "webhook")


def condition(workflow: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in workflow["conditions"] if c["type"] == kind), None)


def assert_one_workflow_signed_with_published_key(
    kubectl: Kubectl, namespace: str, name: str, client: CheckoutClient
) -> dict[str, Any]:
    workflows = client.workflows()
    assert len(workflows) == 1, [w["name"] for w in workflows]
    workflow = workflows[0]
    obj = kubectl.get_json("pconn", name, "-n", namespace)
    assert workflow["name"] == f"procon/integration/{namespace}/{name}/{obj['metadata']['uid']}"
    assert workflow["active"] is True
    published = signing_secret(kubectl, namespace, name)
    assert published["endpointId"] == workflow["id"]
    assert webhook_action(workflow)["signature"] == {
        "method": "HMACSHA256",
        "key": published["signingSecret"],
    }
    assert obj["status"]["webhook"]["id"] == workflow["id"]
    return workflow


@pytest.mark.parametrize("credential", ["secret-key", "oauth"])
def test_connection_becomes_ready(
    kubectl: Kubectl,
    namespace: str,
    client: CheckoutClient,
    checkout_emulator: CheckoutEmulator,
    credential: str,
) -> None:
    if credential == "oauth":
        secret = checkout_secret("eu", access_key=client.access_key(CHECKOUT_SCOPES))
    else:
        secret = checkout_secret("eu", secret_key=client.secret_key(CHECKOUT_SCOPES))
    apply(kubectl, namespace, "eu", client, secret, url="https://ingest.example.com/checkout/eu")
    obj = wait_condition(kubectl, namespace, "eu", "Ready", "True")
    assert obj["status"]["account"] == {"id": client.id, "mode": "test"}

    workflow = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert webhook_action(workflow)["url"] == "https://ingest.example.com/checkout/eu"
    # Categories resolved through GET /workflows/event-types, to exactly their events.
    catalog = {s["display_name"]: s for s in checkout_emulator_event_types(checkout_emulator)}
    wanted = {
        catalog["Gateway"]["id"]: sorted(e["id"] for e in catalog["Gateway"]["events"]),
        catalog["Disputes"]["id"]: sorted(e["id"] for e in catalog["Disputes"]["events"]),
    }
    got = condition(workflow, "event")
    assert got is not None
    assert {k: sorted(v) for k, v in got["events"].items()} == wanted
    assert condition(workflow, "entity") is None
    reasons = {e["reason"] for e in events(kubectl, namespace, "eu")}
    assert {"CreatedWebhookEndpoint", "SigningSecretPublished"} <= reasons


def checkout_emulator_event_types(emulator: CheckoutEmulator) -> list[dict[str, Any]]:
    from procon.emulators.checkout.catalog import event_sources

    settings = emulator.state.settings
    return [s.to_api() for s in event_sources(settings.fraud_source_id, settings.reports_source_id)]


def test_entity_filter_and_explicit_events(kubectl: Kubectl, namespace: str, client: CheckoutClient) -> None:
    secret = checkout_secret("uk", secret_key=client.secret_key())
    apply(
        kubectl,
        namespace,
        "uk",
        client,
        secret,
        events=["payment_approved", "Fraud"],
        entities=[client.entities[1]],
    )
    wait_condition(kubectl, namespace, "uk", "Ready", "True")
    workflow = assert_one_workflow_signed_with_published_key(kubectl, namespace, "uk", client)
    entity = condition(workflow, "entity")
    assert entity is not None
    assert entity["entities"] == [client.entities[1]]
    got = condition(workflow, "event")
    assert got is not None
    flat = sorted(e for ids in got["events"].values() for e in ids)
    assert flat == ["fraud_reported", "payment_approved"]

    # The filter follows the spec.
    apply(kubectl, namespace, "uk", client, secret, events=["payment_approved"], entities=client.entities)
    wait_condition(kubectl, namespace, "uk", "Ready", "True")
    workflow = assert_one_workflow_signed_with_published_key(kubectl, namespace, "uk", client)
    entity = condition(workflow, "entity")
    assert entity is not None
    assert sorted(entity["entities"]) == sorted(client.entities)


def test_unknown_event_is_rejected_clearly(kubectl: Kubectl, namespace: str, client: CheckoutClient) -> None:
    apply(
        kubectl,
        namespace,
        "eu",
        client,
        checkout_secret("eu", secret_key=client.secret_key()),
        events=["Payments"],
    )
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "WebhookRejected")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")["message"]
    assert "'Payments' is neither a Checkout.com event type nor a category" in message
    assert "Gateway" in message


@pytest.mark.parametrize("credential", ["secret-key", "oauth"])
def test_missing_scopes_are_named(
    kubectl: Kubectl,
    namespace: str,
    client: CheckoutClient,
    checkout_emulator: CheckoutEmulator,
    credential: str,
) -> None:
    held = ["flow:workflows", "disputes:view", "files:retrieve"]
    if credential == "oauth":
        key_id, key_secret = client.access_key(held)
        secret = checkout_secret("eu", access_key=(key_id, key_secret))
    else:
        key = client.secret_key(held)
        secret = checkout_secret("eu", secret_key=key)
    apply(kubectl, namespace, "eu", client, secret, permissions=[*CHECKOUT_SCOPES, "risk"])
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "InsufficientPermissions")
    assert obj["status"]["missingPermissions"] == ["payments:search", "reports:view"]
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "PermissionsValid")["message"]
    assert "cannot be verified: risk" in message
    assert client.workflows() == []

    grantee = key_id if credential == "oauth" else key
    checkout_emulator.grant(grantee, "payments:search", "reports:view")
    kubectl.run("annotate", "secret", "eu-key", "-n", namespace, "procon.dev/touched=1")
    obj = wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert (
        "cannot be verified: risk"
        in next(c for c in obj["status"]["conditions"] if c["type"] == "PermissionsValid")["message"]
    )
    assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)


@pytest.mark.parametrize(
    ("make_secret", "mode", "reason"),
    [
        (
            lambda c: checkout_secret("eu", access_key=("ack_unknownkey000000000000", "nope")),
            "test",
            "InvalidCredentials",
        ),
        (
            lambda c: checkout_secret("eu", secret_key=c.secret_key(expired=True)),
            "test",
            "InvalidCredentials",
        ),
        (lambda c: checkout_secret("eu", secret_key=c.secret_key()), "live", "ModeMismatch"),
        (lambda c: checkout_secret("eu"), "test", "CredentialsKeyMissing"),
    ],
    ids=["unknown-access-key", "expired-secret-key", "sandbox-key-on-live", "empty-secret"],
)
def test_unusable_credentials(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, make_secret: Any, mode: str, reason: str
) -> None:
    apply(kubectl, namespace, "eu", client, make_secret(client), mode=mode)
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", reason)
    credentials = next(c for c in obj["status"]["conditions"] if c["type"] == "CredentialsValid")
    assert (credentials["status"], credentials["reason"]) == ("False", reason)
    assert client.workflows() == []


def test_stale_and_duplicate_workflows_deleted_foreign_reported(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, checkout_emulator: CheckoutEmulator
) -> None:
    url = "https://hooks.example.com/checkout"
    foreign = checkout_emulator.create_workflow(
        client.id,
        {
            "name": "set up by hand",
            "conditions": [{"type": "event", "events": {"gateway": ["payment_approved"]}}],
            "actions": [
                {"type": "webhook", "url": url, "signature": {"method": "HMACSHA256", "key": "hand-made-key"}}
            ],
        },
    )
    apply(kubectl, namespace, "eu", client, checkout_secret("eu", secret_key=client.secret_key()))
    obj = wait_condition(kubectl, namespace, "eu", "WebhookReady", "False", "EndpointConflict")
    assert (
        foreign["id"]
        in next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")["message"]
    )
    assert [w["id"] for w in client.workflows()] == [foreign["id"]]
    assert webhook_action(client.workflows()[0])["signature"]["key"] == "hand-made-key"

    # Elsewhere, the foreign workflow does not block; owned leftovers are cleaned up.
    apply(
        kubectl,
        namespace,
        "eu",
        client,
        checkout_secret("eu", secret_key=client.secret_key()),
        url=url + "/v2",
    )
    obj = wait_condition(kubectl, namespace, "eu", "Ready", "True")
    keeper = next(w for w in client.workflows() if w["id"] == obj["status"]["webhook"]["id"])
    owner = Owner("integration", namespace, "eu", obj["metadata"]["uid"])
    body = {
        "name": f"procon/{owner.cluster}/{owner.namespace}/{owner.name}/{owner.uid}",
        "conditions": [{"type": "event", "events": {"gateway": ["payment_approved"]}}],
        "actions": [
            {"type": "webhook", "url": url + "/old", "signature": {"method": "HMACSHA256", "key": "k" * 20}}
        ],
    }
    duplicate = checkout_emulator.create_workflow(client.id, body)
    earlier = {**body, "name": f"procon/{owner.cluster}/{owner.namespace}/{owner.name}/earlier-uid"}
    predecessor = checkout_emulator.create_workflow(client.id, earlier)
    wait_for(
        lambda: {w["id"] for w in client.workflows()} == {keeper["id"], foreign["id"]},
        timeout=DRIFT_TIMEOUT,
        what="the drift check to delete the owned leftovers",
    )
    deleted = " ".join(
        e["message"] for e in events(kubectl, namespace, "eu") if e["reason"] == "DeletedWebhookEndpoint"
    )
    assert duplicate["id"] in deleted
    assert predecessor["id"] in deleted


def test_drift_is_restored_with_the_same_key(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, checkout_emulator: CheckoutEmulator
) -> None:
    apply(kubectl, namespace, "eu", client, checkout_secret("eu", secret_key=client.secret_key()))
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    key = signing_secret(kubectl, namespace, "eu")["signingSecret"]

    checkout_emulator.update_workflow(first["id"], active=False)
    wait_for(lambda: client.workflows()[0]["active"] is True, timeout=DRIFT_TIMEOUT, what="reactivation")

    checkout_emulator.delete_workflow(first["id"])
    wait_for(lambda: len(client.workflows()) == 1, timeout=DRIFT_TIMEOUT, what="the workflow to be recreated")
    wait_for(
        lambda: signing_secret(kubectl, namespace, "eu")["endpointId"] == client.workflows()[0]["id"],
        timeout=WATCH_TIMEOUT,
        what="the Secret to name the new workflow",
    )
    second = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert second["id"] != first["id"]
    # The key is procon's: the recreated workflow signs with the same one.
    assert signing_secret(kubectl, namespace, "eu")["signingSecret"] == key
    assert len([e for e in events(kubectl, namespace, "eu") if e["reason"] == "DriftCorrected"]) >= 2


def test_signing_key_rotation_updates_both_sides(
    kubectl: Kubectl, namespace: str, client: CheckoutClient
) -> None:
    apply(kubectl, namespace, "eu", client, checkout_secret("eu", secret_key=client.secret_key()))
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    old_key = signing_secret(kubectl, namespace, "eu")["signingSecret"]

    kubectl.run(
        "annotate", "pconn", "eu", "-n", namespace, "procon.dev/rotate-signing-secret=2026-11-22T15:00:00Z"
    )
    wait_for(
        lambda: (
            kubectl.get_json("pconn", "eu", "-n", namespace)["status"].get("signingSecretRotation")
            == "2026-11-22T15:00:00Z"
        ),
        timeout=WATCH_TIMEOUT,
        what="the rotation to be carried out",
    )
    second = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert second["id"] == first["id"]
    assert signing_secret(kubectl, namespace, "eu")["signingSecret"] != old_key
    assert "SigningSecretRotated" in {e["reason"] for e in events(kubectl, namespace, "eu")}


def test_deletion_honours_the_policy(
    kubectl: Kubectl, namespace: str, checkout_emulator: CheckoutEmulator
) -> None:
    deleting, orphaning = CheckoutClient(checkout_emulator), CheckoutClient(checkout_emulator)
    apply(kubectl, namespace, "gone", deleting, checkout_secret("gone", secret_key=deleting.secret_key()))
    apply(
        kubectl,
        namespace,
        "kept",
        orphaning,
        checkout_secret("kept", secret_key=orphaning.secret_key()),
        deletionPolicy="Orphan",
    )
    wait_condition(kubectl, namespace, "gone", "Ready", "True")
    wait_condition(kubectl, namespace, "kept", "Ready", "True")
    kubectl.run("delete", "pconn", "gone", "kept", "-n", namespace, "--timeout=30s")
    assert deleting.workflows() == []
    assert len(orphaning.workflows()) == 1


def test_converges_under_server_errors_and_lost_answers(
    kubectl: Kubectl, namespace: str, checkout_emulator: CheckoutEmulator
) -> None:
    clients = [CheckoutClient(checkout_emulator) for _ in range(3)]
    secrets = [checkout_secret(f"c{i}", secret_key=c.secret_key()) for i, c in enumerate(clients)]
    checkout_emulator.set_faults(error_rate=0.3)
    try:
        for i, c in enumerate(clients):
            apply(kubectl, namespace, f"c{i}", c, secrets[i])
        for i in range(len(clients)):
            wait_condition(kubectl, namespace, f"c{i}", "Ready", "True", timeout=120)
    finally:
        checkout_emulator.set_faults()
    for i, c in enumerate(clients):
        assert_one_workflow_signed_with_published_key(kubectl, namespace, f"c{i}", c)

    # A create that commits but whose answer is lost: no idempotency for workflows,
    # so the orphan is found by its name and removed.
    lost = CheckoutClient(checkout_emulator)
    checkout_emulator.set_faults(
        commit_then_fail=1,
        commit_then_fail_mode="drop",
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/workflows",
    )
    try:
        apply(kubectl, namespace, "lost", lost, checkout_secret("lost", secret_key=lost.secret_key()))
        wait_condition(kubectl, namespace, "lost", "Ready", "True", timeout=60)
        wait_for(
            lambda: len(lost.workflows()) == 1, timeout=DRIFT_TIMEOUT, what="the orphaned workflow to go"
        )
    finally:
        checkout_emulator.set_faults()
    assert_one_workflow_signed_with_published_key(kubectl, namespace, "lost", lost)


def test_operator_log_holds_no_checkout_credential(
    operator: OperatorProcess, checkout_emulator: CheckoutEmulator, kubectl: Kubectl
) -> None:
    log = operator.log()
    assert "procon started" in log
    with checkout_emulator.state.lock:
        keys = [k for k in checkout_emulator.state.secret_keys]
        access = [k.secret for k in checkout_emulator.state.access_keys.values()]
        workflows = [w for w in checkout_emulator.state.workflows.values()]
    signing = [a.spec.signature.key for w in workflows for a in w.actions if a.spec.signature]
    secrets = [*keys, *access, *checkout_emulator.issued_tokens(), *signing]
    assert len(secrets) > 10
    encoded = [base64.b64encode(s.encode()).decode().rstrip("=") for s in secrets]
    assert [s for s in [*secrets, *encoded] if s in log] == []

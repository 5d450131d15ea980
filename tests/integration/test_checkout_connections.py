"""Checkout.com connections end to end: the operator process, the real API server, the emulator.

Each test asserts both sides: the connection's status and Secrets, and the
workflows in the emulator (read unmasked, as only the emulator can).
"""

from __future__ import annotations

from typing import Any

import pytest

from procon.emulators.checkout import CheckoutEmulator
from procon.reconcile.ownership import Owner
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    CHECKOUT_SCOPES,
    GARBAGE_COLLECTION_TIMEOUT,
    CheckoutClient,
    OperatorProcess,
    checkout_connection,
    checkout_secret,
    events,
    signing_secret,
    wait_condition,
    wait_for_events,
    wait_until_nothing_is_being_deleted,
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
    # One event for a new connection: the webhook made and where its signing secret went.
    created = [e for e in events(kubectl, namespace, "eu") if e["reason"] == "CreatedWebhookEndpoint"]
    assert len(created) == 1, created
    assert "published its signing secret to Secret " in created[0]["message"], created


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
    apply(kubectl, namespace, "eu", client, secret, permissions=CHECKOUT_SCOPES)
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "InsufficientPermissions")
    assert obj["status"]["missingPermissions"] == ["payments:search", "reports:view"]
    assert client.workflows() == []

    grantee = key_id if credential == "oauth" else key
    checkout_emulator.grant(grantee, "payments:search", "reports:view")
    kubectl.run("annotate", "secret", "eu-key", "-n", namespace, "procon.dev/touched=1")
    wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=WATCH_TIMEOUT)
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
    # Each deletion's event follows the deletion it reports.
    deleted = " ".join(
        e["message"] for e in wait_for_events(kubectl, namespace, "eu", "DeletedWebhookEndpoint", count=2)
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
    # The reactivating pass is done when its event is posted; a second drift before that
    # is a different story (told by the next test).
    wait_for_events(kubectl, namespace, "eu", "DriftCorrected", count=1)

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
    wait_for_events(kubectl, namespace, "eu", "DriftCorrected", count=2)


def test_workflow_deleted_while_being_restored_is_recreated_in_the_same_pass(
    kubectl: Kubectl,
    namespace: str,
    client: CheckoutClient,
    checkout_emulator: CheckoutEmulator,
    operator: OperatorProcess,
) -> None:
    """Someone deletes the workflow while procon is reactivating it: the update finds nothing,
    and the same pass creates a new workflow, with no failed reconcile and no wait for a retry."""
    apply(kubectl, namespace, "eu", client, checkout_secret("eu", secret_key=client.secret_key()))
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    key = signing_secret(kubectl, namespace, "eu")["signingSecret"]
    log_offset = len(operator.log())

    # Nothing else may be writing to the emulator while its writes are held.
    wait_until_nothing_is_being_deleted(kubectl)
    with checkout_emulator.hold_writes() as gate:
        checkout_emulator.update_workflow(first["id"], active=False)
        assert gate.wait_for_waiting(1, timeout=DRIFT_TIMEOUT), "the operator never sent its reactivation"
        checkout_emulator.delete_workflow(first["id"])

    created = wait_for_events(kubectl, namespace, "eu", "DriftCorrected")
    second = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert second["id"] != first["id"]
    assert signing_secret(kubectl, namespace, "eu")["signingSecret"] == key
    assert f"created {second['id']}" in created[0]["message"]
    assert f"reconcile of {namespace}/eu failed" not in operator.log()[log_offset:]


def test_changed_conditions_and_url_are_restored(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, checkout_emulator: CheckoutEmulator
) -> None:
    """Someone edits the workflow in the Dashboard. Other events or another entity: put back in
    place. Another URL: the workflow is stale, so it is replaced, and the replacement signs with
    the same key (procon's own), so the receiving service needs no change."""
    apply(
        kubectl,
        namespace,
        "eu",
        client,
        checkout_secret("eu", secret_key=client.secret_key()),
        events=["payment_approved", "dispute_received"],
        entities=[client.entities[0]],
    )
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    key = webhook_action(first)["signature"]["key"]
    wanted = {"gateway": ["payment_approved"], "dispute": ["dispute_received"]}

    def filters(workflow: dict[str, Any]) -> tuple[Any, Any]:
        event, entity = condition(workflow, "event"), condition(workflow, "entity")
        return (
            {k: sorted(v) for k, v in event["events"].items()} if event else None,
            entity["entities"] if entity else None,
        )

    assert filters(first) == (wanted, [client.entities[0]])
    checkout_emulator.update_workflow(
        first["id"],
        conditions=[
            {"type": "event", "events": {"gateway": ["payment_declined"]}},
            {"type": "entity", "entities": [client.entities[1]]},
        ],
    )
    wait_for(
        lambda: filters(client.workflows()[0]) == (wanted, [client.entities[0]]),
        timeout=DRIFT_TIMEOUT,
        what="the drift check to restore the conditions",
    )
    assert (
        assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)["id"] == first["id"]
    )
    wait_for_events(kubectl, namespace, "eu", "DriftCorrected", count=1)  # that pass is over

    checkout_emulator.update_workflow(
        first["id"],
        actions=[
            {
                "type": "webhook",
                "url": "https://elsewhere.example.com/hook",
                "signature": {"method": "HMACSHA256", "key": key},
            }
        ],
    )
    # Make before break: the replacement appears first, then the stale one goes. The drift changed
    # no generation, so Ready stays True throughout: wait for the end state itself.
    wait_for(
        lambda: len(ids := [w["id"] for w in client.workflows()]) == 1 and ids[0] != first["id"],
        timeout=DRIFT_TIMEOUT,
        what="the stale workflow to be replaced",
    )
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    second = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert webhook_action(second)["url"] == "https://hooks.example.com/checkout"
    assert webhook_action(second)["signature"]["key"] == key
    assert filters(second) == (wanted, [client.entities[0]])
    wait_for_events(kubectl, namespace, "eu", "DriftCorrected", count=2)


def test_processing_channel_filter_follows_the_spec(
    kubectl: Kubectl, namespace: str, client: CheckoutClient
) -> None:
    secret = checkout_secret("pc", secret_key=client.secret_key())
    apply(kubectl, namespace, "pc", client, secret, processing_channels=client.channels)
    wait_condition(kubectl, namespace, "pc", "Ready", "True")
    workflow = assert_one_workflow_signed_with_published_key(kubectl, namespace, "pc", client)
    channels = condition(workflow, "processing_channel")
    assert channels is not None
    assert channels["processing_channels"] == client.channels

    # Dropped from the spec: the condition goes, the workflow stays.
    apply(kubectl, namespace, "pc", client, secret)
    wait_for(
        lambda: condition(client.workflows()[0], "processing_channel") is None,
        timeout=WATCH_TIMEOUT,
        what="the processing-channel condition to go",
    )
    assert (
        assert_one_workflow_signed_with_published_key(kubectl, namespace, "pc", client)["id"]
        == (workflow["id"])
    )


def test_reports_and_fraud_categories_use_the_ids_the_api_lists(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, checkout_emulator: CheckoutEmulator
) -> None:
    """Category ids are read from GET /workflows/event-types, not assumed: with other source ids
    than the usual ones, the workflow still names the right ones."""
    before = checkout_emulator.state.settings
    checkout_emulator.update_settings(fraud_source_id="fraud_v2", reports_source_id="reporting")
    try:
        apply(
            kubectl,
            namespace,
            "rep",
            client,
            checkout_secret("rep", secret_key=client.secret_key()),
            events=["Reports", "Fraud"],
        )
        wait_condition(kubectl, namespace, "rep", "Ready", "True")
        workflow = assert_one_workflow_signed_with_published_key(kubectl, namespace, "rep", client)
        catalog = {s["display_name"]: s for s in checkout_emulator_event_types(checkout_emulator)}
    finally:
        checkout_emulator.update_settings(
            fraud_source_id=before.fraud_source_id, reports_source_id=before.reports_source_id
        )
    got = condition(workflow, "event")
    assert got is not None
    assert {k: sorted(v) for k, v in got["events"].items()} == {
        "fraud_v2": sorted(e["id"] for e in catalog["Fraud"]["events"]),
        "reporting": sorted(e["id"] for e in catalog["Reports"]["events"]),
    }


def test_crash_between_key_write_and_workflow_create_loses_nothing(
    kubectl: Kubectl,
    namespace: str,
    client: CheckoutClient,
    checkout_emulator: CheckoutEmulator,
    operator: OperatorProcess,
) -> None:
    """The key is written to the Secret before the workflow is created: a crash while the create is
    in flight leaves a workflow signed with the published key, or none; either way the restarted
    operator ends with exactly one workflow, signed with what the Secret holds."""

    # Nothing else may be writing to the emulator while its writes are held.
    wait_until_nothing_is_being_deleted(kubectl)
    with checkout_emulator.hold_writes() as gate:
        apply(kubectl, namespace, "eu", client, checkout_secret("eu", secret_key=client.secret_key()))
        assert gate.wait_for_waiting(1, timeout=30), "the operator never sent its create"
        # Write-ahead: the key is in the Secret before the create went out.
        published = signing_secret(kubectl, namespace, "eu")["signingSecret"]
        operator.crash()
    created = wait_for(client.workflows, timeout=10, what="the orphaned create to commit")
    assert webhook_action(created[0])["signature"]["key"] == published

    operator.restart()
    wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=30)
    workflow = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert webhook_action(workflow)["signature"]["key"] == published


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


def test_workflow_of_another_connection_at_the_url_stalls_the_newcomer_and_is_never_replaced(
    kubectl: Kubectl, namespace: str, client: CheckoutClient
) -> None:
    """Two connections with their own keys on one Checkout.com account, one URL: the first keeps
    it; the second, even with conflictPolicy Replace, deletes nothing and names the first."""
    apply(kubectl, namespace, "first", client, checkout_secret("first", secret_key=client.secret_key()))
    wait_condition(kubectl, namespace, "first", "Ready", "True")
    (owned,) = client.workflows()
    apply(
        kubectl,
        namespace,
        "second",
        client,
        checkout_secret("second", secret_key=client.secret_key()),
        webhook={"conflictPolicy": "Replace"},
    )
    obj = wait_condition(kubectl, namespace, "second", "Stalled", "True", "EndpointConflict")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")["message"]
    assert f"webhook {owned['id']} of connection {namespace}/first" in message
    assert "Replace" not in message
    assert client.workflows() == [owned]
    wait_condition(kubectl, namespace, "first", "Ready", "True")


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
    kubectl.run("delete", "pconn", "kept", "-n", namespace, "--timeout=30s")
    kubectl.run("delete", "pconn", "gone", "-n", namespace, "--timeout=30s")
    assert deleting.workflows() == []
    (orphaned,) = orphaning.workflows()
    # The orphaned workflow's key stays in its Secret, released from the deleted connection; the
    # deleted connection's Secret goes with it (and the garbage collector has passed by then).
    wait_for(
        lambda: kubectl.run("get", "secret", "gone-webhook", "-n", namespace, check=False).returncode != 0,
        what="the deleted connection's Secret to be garbage-collected",
        timeout=GARBAGE_COLLECTION_TIMEOUT,
    )
    secret = kubectl.get_json("secret", "kept-webhook", "-n", namespace)
    assert not secret["metadata"].get("ownerReferences")
    assert secret["metadata"]["annotations"]["procon.dev/orphaned-from"].startswith(f"{namespace}/kept ")
    published = signing_secret(kubectl, namespace, "kept")
    assert published["endpointId"] == orphaned["id"]
    assert webhook_action(orphaned)["signature"]["key"] == published["signingSecret"]


def test_converges_under_server_errors_and_lost_answers(
    kubectl: Kubectl, namespace: str, checkout_emulator: CheckoutEmulator
) -> None:
    clients = [CheckoutClient(checkout_emulator) for _ in range(3)]
    secrets = [checkout_secret(f"c{i}", secret_key=c.secret_key()) for i, c in enumerate(clients)]
    checkout_emulator.set_faults(
        error_rate=0.3,
        commit_then_fail=3,
        commit_then_fail_mode="processor_error",
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/workflows",
    )
    try:
        for i, c in enumerate(clients):
            apply(kubectl, namespace, f"c{i}", c, secrets[i])
        for i in range(len(clients)):
            wait_condition(kubectl, namespace, f"c{i}", "Ready", "True", timeout=90)
    finally:
        checkout_emulator.set_faults()
    for i, c in enumerate(clients):
        assert_one_workflow_signed_with_published_key(kubectl, namespace, f"c{i}", c)

    # A create that commits but whose answer is lost: no idempotency for workflows, but the
    # workflow signs with the key already published, so it is adopted (see below).
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
        wait_for(lambda: len(lost.workflows()) == 1, timeout=DRIFT_TIMEOUT, what="one workflow")
    finally:
        checkout_emulator.set_faults()
    assert_one_workflow_signed_with_published_key(kubectl, namespace, "lost", lost)


@pytest.mark.parametrize("mode", ["drop", "processor_error"])
def test_create_committed_but_not_answered_is_adopted_not_recreated(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, checkout_emulator: CheckoutEmulator, mode: str
) -> None:
    """Workflows take no idempotency key, so a retried create would be a second workflow; but the one
    whose answer was lost signs with the key procon published first: it is procon's own, adopted."""
    creates = checkout_emulator.count("POST", "/workflows")
    checkout_emulator.set_faults(
        commit_then_fail=1,
        commit_then_fail_mode=mode,
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/workflows",
    )
    try:
        apply(kubectl, namespace, "eu", client, checkout_secret("eu", secret_key=client.secret_key()))
        wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=60)
    finally:
        checkout_emulator.set_faults()
    assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert checkout_emulator.count("POST", "/workflows") == creates + 1  # never created a second time
    wait_for_events(kubectl, namespace, "eu", "AdoptedWebhookEndpoint")
    assert "DeletedWebhookEndpoint" not in {e["reason"] for e in events(kubectl, namespace, "eu")}


def test_url_change_creates_the_new_workflow_before_deleting_the_old(
    kubectl: Kubectl, namespace: str, client: CheckoutClient, checkout_emulator: CheckoutEmulator
) -> None:
    secret = checkout_secret("eu", secret_key=client.secret_key())
    apply(kubectl, namespace, "eu", client, secret)
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    old = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    wait_until_nothing_is_being_deleted(kubectl)
    with checkout_emulator.hold_writes() as gate:
        apply(kubectl, namespace, "eu", client, secret, url="https://hooks.example.com/v2")
        assert gate.wait_for_waiting(1, timeout=30), "the operator never sent its create"
        # The replacement's create is in flight: the old workflow and its published id are intact.
        assert [w["id"] for w in client.workflows()] == [old["id"]]
        assert signing_secret(kubectl, namespace, "eu")["endpointId"] == old["id"]
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    new = assert_one_workflow_signed_with_published_key(kubectl, namespace, "eu", client)
    assert new["id"] != old["id"]
    assert webhook_action(new)["url"] == "https://hooks.example.com/v2"

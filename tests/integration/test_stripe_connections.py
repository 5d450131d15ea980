"""Stripe connections end to end: the operator process, the real API server, the Stripe emulator.

Every test asserts the end state on both sides: the connection's status and
Secrets in Kubernetes, and the endpoints in the emulator.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from procon.emulators.faults import FaultKind
from procon.emulators.stripe import StripeEmulator
from procon.reconcile.ownership import Owner
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    GARBAGE_COLLECTION_TIMEOUT,
    OperatorProcess,
    StripeAccount,
    condition,
    connection,
    events,
    key_secret,
    signing_secret,
    wait_condition,
    wait_for_events,
    wait_until_nothing_is_being_deleted,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

# Below the drift timer's shortest interval (0.8 x 10 s): what happens within
# this came from a watch event.
WATCH_TIMEOUT = 6.0
# Two drift intervals at their longest, plus the reconcile.
DRIFT_TIMEOUT = 30.0


@pytest.fixture
def account(stripe_emulator: StripeEmulator) -> StripeAccount:
    return StripeAccount(stripe_emulator)


def apply_connection(kubectl: Kubectl, namespace: str, name: str, key: str, **spec: Any) -> dict[str, Any]:
    body = connection(name, **spec)
    kubectl.apply([key_secret(name, key), body], namespace=namespace)
    return body


def assert_one_endpoint_with_published_secret(
    kubectl: Kubectl, namespace: str, name: str, account: StripeAccount
) -> dict[str, Any]:
    """The invariant: exactly one endpoint, owned by the connection, whose secret is the published one."""
    endpoints = account.endpoints()
    assert len(endpoints) == 1, endpoints
    endpoint = endpoints[0]
    obj = kubectl.get_json("pconn", name, "-n", namespace)
    assert endpoint["metadata"]["procon-uid"] == obj["metadata"]["uid"]
    assert endpoint["metadata"]["procon-namespace"] == namespace
    assert endpoint["metadata"]["procon-name"] == name
    published = signing_secret(kubectl, namespace, name)
    assert published["endpointId"] == endpoint["id"]
    assert published["signingSecret"] == account.emulator.endpoint_secret(endpoint["id"])
    assert obj["status"]["webhook"]["id"] == endpoint["id"]
    return endpoint


def test_restricted_key_with_every_permission_becomes_ready(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    key = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "shop", key)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")

    status = obj["status"]
    assert status["account"] == {"id": account.id, "mode": "test"}
    assert status["missingPermissions"] == []
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["CredentialsValid"]["status"] == "True"
    assert conditions["PermissionsValid"]["status"] == "True"
    assert conditions["WebhookReady"]["status"] == "True"
    assert conditions["Stalled"]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "False"
    assert all(c["observedGeneration"] == obj["metadata"]["generation"] for c in conditions.values())

    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert endpoint["url"] == "https://hooks.example.com/stripe"
    assert sorted(endpoint["enabled_events"]) == ["charge.succeeded", "payout.paid"]
    assert endpoint["status"] == "enabled"

    secret = kubectl.get_json("secret", "shop-webhook", "-n", namespace)
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "procon"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    # One event for a new connection: the webhook made and where its signing secret went.
    created = [e for e in events(kubectl, namespace, "shop") if e["reason"] == "CreatedWebhookEndpoint"]
    assert len(created) == 1, created
    assert "published its signing secret to Secret " in created[0]["message"], created

    # kubectl shows it the way a person reads it.
    row = kubectl.run("get", "pconn", "shop", "-n", namespace, "--no-headers").stdout.split()
    assert row[:6] == ["shop", "stripe", "test", account.id, "True", "Ready"]


def test_missing_permissions_stall_until_granted(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    key = account.key(["rak_balance_read", "rak_webhook_write"])
    apply_connection(kubectl, namespace, "shop", key)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "InsufficientPermissions")

    status = obj["status"]
    assert sorted(status["missingPermissions"]) == [
        "rak_charge_read",
        "rak_dispute_read",
        "rak_event_read",
        "rak_payout_read",
    ]
    permissions = next(c for c in status["conditions"] if c["type"] == "PermissionsValid")
    assert permissions["status"] == "False"
    assert "rak_dispute_read" in permissions["message"]
    assert "dashboard.stripe.com/apikeys/create?" in permissions["message"]
    assert "permissions%5B%5D=rak_charge_read" in permissions["message"]
    assert key not in str(obj)
    assert account.endpoints() == []
    # The Warning follows the status write.
    wait_for_events(kubectl, namespace, "shop", "InsufficientPermissions")
    warnings = [e for e in events(kubectl, namespace, "shop") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["InsufficientPermissions"]

    stripe_emulator.grant(key, "rak_charge_read", "rak_dispute_read", "rak_event_read", "rak_payout_read")
    kubectl.run("annotate", "secret", "shop-key", "-n", namespace, "procon.dev/touched=1")
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert kubectl.get_json("pconn", "shop", "-n", namespace)["status"]["missingPermissions"] == []


def test_permission_granted_in_the_dashboard_is_noticed_by_the_drift_check(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    key = account.key(
        ["rak_balance_read", "rak_charge_read", "rak_dispute_read", "rak_event_read", "rak_webhook_write"]
    )
    apply_connection(kubectl, namespace, "shop", key)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "InsufficientPermissions")
    assert obj["status"]["missingPermissions"] == ["rak_payout_read"]
    stripe_emulator.grant(key, "rak_payout_read")  # nothing changes in Kubernetes
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=DRIFT_TIMEOUT)
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)


@pytest.mark.parametrize(
    ("make_key", "reason"),
    [
        (lambda a: "rk_test_51" + "x" * 40, "InvalidCredentials"),
        (lambda a: a.key(ANALYTICS_PERMISSIONS, expired=True), "ExpiredCredentials"),
        (lambda a: a.key(ANALYTICS_PERMISSIONS, mode="live"), "ModeMismatch"),
        (lambda a: "pk_test_51" + "x" * 40, "InvalidCredentials"),
    ],
    ids=["unknown-key", "expired-key", "live-key-on-test", "publishable-key"],
)
def test_unusable_credentials_stall_with_distinct_reasons(
    kubectl: Kubectl, namespace: str, account: StripeAccount, make_key: Any, reason: str
) -> None:
    key = make_key(account)
    apply_connection(kubectl, namespace, "shop", key)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", reason)
    credentials = next(c for c in obj["status"]["conditions"] if c["type"] == "CredentialsValid")
    assert (credentials["status"], credentials["reason"]) == ("False", reason)
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert key[12:] not in str(obj)
    assert account.endpoints() == []


def test_missing_secret_waits_and_recovers_when_it_appears(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    kubectl.apply(connection("shop"), namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "CredentialsValid", "False", "CredentialsSecretNotFound")
    assert condition(kubectl, namespace, "shop", "Reconciling")["status"] == "True"  # type: ignore[index]
    assert obj["status"]["conditions"]
    kubectl.apply(key_secret("shop", account.key(ANALYTICS_PERMISSIONS)), namespace=namespace)
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)


def test_key_rotation_is_noticed_within_seconds(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    old = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "shop", old)
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)

    # A new key for the same account: used within seconds, so the old one can be expired
    # at Stripe (as a roll does) without the connection noticing; the endpoint stays.
    new = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply(key_secret("shop", new), namespace=namespace)
    wait_for(lambda: stripe_emulator.key_uses(new) > 0, timeout=WATCH_TIMEOUT, what="the new key in use")
    stripe_emulator.expire_key(old)
    uses = stripe_emulator.key_uses(new)
    kubectl.run("annotate", "secret", "shop-key", "-n", namespace, "procon.dev/touched=1")
    wait_for(lambda: stripe_emulator.key_uses(new) > uses, timeout=WATCH_TIMEOUT, what="a reconcile")
    assert condition(kubectl, namespace, "shop", "Ready")["status"] == "True"  # type: ignore[index]
    # Then a key that Stripe rejects: noticed from the Secret change, well inside the drift interval.
    kubectl.apply(key_secret("shop", "rk_test_51" + "r" * 40), namespace=namespace)
    wait_condition(kubectl, namespace, "shop", "Stalled", "True", "InvalidCredentials", timeout=WATCH_TIMEOUT)
    good = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply(key_secret("shop", good), namespace=namespace)
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert (
        assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)["id"] == endpoint["id"]
    )


def test_url_change_replaces_the_endpoint_and_events_change_updates_it(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    key = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "shop", key)
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    first = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    first_secret = signing_secret(kubectl, namespace, "shop")["signingSecret"]

    kubectl.apply(connection("shop", url="https://hooks.example.com/v2"), namespace=namespace)
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    second = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert second["id"] != first["id"]
    assert second["url"] == "https://hooks.example.com/v2"
    assert signing_secret(kubectl, namespace, "shop")["signingSecret"] != first_secret

    kubectl.apply(
        connection(
            "shop",
            url="https://hooks.example.com/v2",
            events=["charge.refunded"],
            webhook={"description": "v2"},
        ),
        namespace=namespace,
    )
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    third = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert third["id"] == second["id"]
    assert third["enabled_events"] == ["charge.refunded"]
    assert third["description"] == "v2"
    reasons = [e["reason"] for e in events(kubectl, namespace, "shop")]
    assert "UpdatedWebhookEndpoint" in reasons
    assert "DeletedWebhookEndpoint" in reasons


def test_stale_and_duplicate_owned_endpoints_are_deleted_foreign_ones_kept(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    key = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "shop", key)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    keeper = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    owner = Owner("integration", namespace, "shop", obj["metadata"]["uid"])

    # A crash leftover (owned, secret never published), a stale owned endpoint at an old URL,
    # one left by an earlier object of the same name, and a foreign endpoint elsewhere.
    events_ = ["charge.succeeded", "payout.paid"]
    duplicate = stripe_emulator.create_endpoint(
        account.id, "https://hooks.example.com/stripe", events_, metadata=owner.metadata()
    )
    stale = stripe_emulator.create_endpoint(
        account.id, "https://old.example.com/stripe", events_, metadata=owner.metadata()
    )
    earlier = Owner("integration", namespace, "shop", "0000-earlier-uid")
    predecessor = stripe_emulator.create_endpoint(
        account.id, "https://hooks.example.com/stripe", events_, metadata=earlier.metadata()
    )
    foreign = stripe_emulator.create_endpoint(account.id, "https://someone-else.example.com", events_)

    wait_for(
        lambda: {e["id"] for e in account.endpoints()} == {keeper["id"], foreign["id"]},
        timeout=DRIFT_TIMEOUT,
        what="the drift check to delete the owned leftovers",
    )
    # Each deletion's event follows the deletion it reports.
    deleted = {
        e["message"].split()[2].rstrip(":")
        for e in wait_for_events(kubectl, namespace, "shop", "DeletedWebhookEndpoint", count=3)
    }
    assert {duplicate["id"], stale["id"], predecessor["id"]} <= deleted
    assert condition(kubectl, namespace, "shop", "Ready")["status"] == "True"  # type: ignore[index]


def test_foreign_endpoint_at_the_same_url_is_reported_not_touched(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    foreign = stripe_emulator.create_endpoint(
        account.id, "https://hooks.example.com/stripe", ["charge.succeeded"]
    )
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    obj = wait_condition(kubectl, namespace, "shop", "WebhookReady", "False", "EndpointConflict")
    webhook = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")
    assert foreign["id"] in webhook["message"]
    assert condition(kubectl, namespace, "shop", "Stalled")["status"] == "True"  # type: ignore[index]
    assert [e["id"] for e in account.endpoints()] == [foreign["id"]]
    assert account.endpoints()[0]["enabled_events"] == ["charge.succeeded"]
    wait_for_events(kubectl, namespace, "shop", "EndpointConflict")  # posted after the status write

    # Allowed to replace it: the foreign endpoint goes, an owned one takes its place.
    apply_connection(kubectl, namespace, "shop", account.keys[-1], webhook={"conflictPolicy": "Replace"})
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert endpoint["id"] != foreign["id"]


def test_foreign_endpoint_appearing_beside_the_owned_one_stalls_and_is_reported(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    """Someone adds an endpoint at the connection's URL by hand: events would arrive twice. Only a
    person can settle it, so the connection stalls with a Warning naming it, and both endpoints stay."""
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    owned = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    foreign = stripe_emulator.create_endpoint(
        account.id, "https://hooks.example.com/stripe", ["charge.succeeded"]
    )
    obj = wait_condition(
        kubectl, namespace, "shop", "Stalled", "True", "EndpointConflict", timeout=DRIFT_TIMEOUT
    )
    webhook = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")
    assert (webhook["status"], webhook["reason"]) == ("False", "EndpointConflict")
    assert foreign["id"] in webhook["message"]
    assert obj["status"]["webhook"]["id"] == owned["id"]
    assert {e["id"] for e in account.endpoints()} == {owned["id"], foreign["id"]}
    warnings = wait_for_events(kubectl, namespace, "shop", "EndpointConflict")  # after the status write
    assert [e["type"] for e in warnings] == ["Warning"]
    assert foreign["id"] in warnings[0]["message"]

    # Gone at the processor: the next check finds the connection Ready again.
    stripe_emulator.delete_endpoint(foreign["id"])
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=DRIFT_TIMEOUT)
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A second team's namespace."""
    name = f"t-{secrets.token_hex(5)}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


def test_url_served_by_another_connection_stalls_the_newcomer_only(
    kubectl: Kubectl, namespace: str, other_namespace: str, account: StripeAccount
) -> None:
    """Two teams, each with its own key on one account: the second to declare a URL is stalled,
    told which connection serves it, and not told to set a policy that cannot help. The first
    stays Ready, its webhook untouched, through passes made after the newcomer arrived."""
    apply_connection(kubectl, namespace, "first", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "first", "Ready", "True")
    owned = assert_one_endpoint_with_published_secret(kubectl, namespace, "first", account)

    apply_connection(
        kubectl,
        other_namespace,
        "second",
        account.key(ANALYTICS_PERMISSIONS),
        webhook={"conflictPolicy": "Replace"},  # applies to webhooks procon does not own only
    )
    obj = wait_condition(kubectl, other_namespace, "second", "Stalled", "True", "EndpointConflict")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")["message"]
    assert f"webhook {owned['id']} of connection {namespace}/first" in message
    assert "in cluster" not in message  # the same cluster: not named
    assert "Replace" not in message
    warnings = wait_for_events(kubectl, other_namespace, "second", "EndpointConflict")
    assert f"{namespace}/first" in warnings[0]["message"]

    # The owner's passes after the arrival (a spec edit, then a drift check) leave it Ready.
    apply_connection(kubectl, namespace, "first", account.keys[0], webhook={"description": "edited"})
    wait_for_events(kubectl, namespace, "first", "UpdatedWebhookEndpoint")
    wait_condition(kubectl, namespace, "first", "Ready", "True")
    assert (
        assert_one_endpoint_with_published_secret(kubectl, namespace, "first", account)["id"] == owned["id"]
    )
    assert not [e for e in events(kubectl, namespace, "first") if e["type"] == "Warning"]


def test_webhook_of_another_connection_appearing_beside_the_owned_one_leaves_the_owner_ready(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    """Another connection's webhook created at the same URL after the owner's (two connections
    that created in the same moment, the other on a cluster sharing the account): the older
    webhook keeps the URL, so the owner stays Ready and is never flipped to Stalled; the other
    webhook is its connection's to remove, never this one's."""
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    owned = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    # Stripe's creation times are in seconds: the other one is created a second later.
    wait_for(lambda: time.time() >= owned["created"] + 1.05, timeout=5, what="the next second")
    elsewhere = Owner(cluster="another-cluster", namespace=namespace, name="shop", uid=str(uuid.uuid4()))
    sibling = stripe_emulator.create_endpoint(
        account.id, "https://hooks.example.com/stripe", ["charge.succeeded"], metadata=elsewhere.metadata()
    )
    assert sibling["created"] > owned["created"]

    apply_connection(kubectl, namespace, "shop", account.keys[-1], webhook={"description": "edited"})
    wait_for_events(kubectl, namespace, "shop", "UpdatedWebhookEndpoint")
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert condition(kubectl, namespace, "shop", "Stalled")["status"] == "False"  # type: ignore[index]
    assert obj["status"]["webhook"]["id"] == owned["id"]
    assert {e["id"] for e in account.endpoints()} == {owned["id"], sibling["id"]}
    assert "EndpointConflict" not in {e["reason"] for e in events(kubectl, namespace, "shop")}


def test_webhook_tagged_with_the_old_default_cluster_identity_is_still_its_own(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    """An upgrade from the version whose default identity was "default": the webhook carries the
    connection's UID, so it is kept (same endpoint, same signing secret) and re-tagged in place
    at the next check, reported as an update, not as a change made outside procon."""
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    owned = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    published = signing_secret(kubectl, namespace, "shop")
    stripe_emulator.update_endpoint(owned["id"], metadata={**owned["metadata"], "procon-cluster": "default"})

    (updated,) = wait_for_events(kubectl, namespace, "shop", "UpdatedWebhookEndpoint", timeout=DRIFT_TIMEOUT)
    assert "cluster identity default is now integration" in updated["message"]
    assert "DriftCorrected" not in {e["reason"] for e in events(kubectl, namespace, "shop")}
    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert endpoint["id"] == owned["id"]
    assert endpoint["metadata"]["procon-cluster"] == "integration"
    assert signing_secret(kubectl, namespace, "shop") == published


def test_key_without_webhook_access_names_the_required_write(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    """No webhook permission at all: Stripe refuses the listing with rak_webhook_read, but the
    permission to grant, the one the spec requires, is rak_webhook_write."""
    key = account.key([p for p in ANALYTICS_PERMISSIONS if p != "rak_webhook_write"])
    apply_connection(kubectl, namespace, "shop", key)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "InsufficientPermissions")
    assert obj["status"]["missingPermissions"] == ["rak_webhook_write"]
    assert account.endpoints() == []
    stripe_emulator.grant(key, "rak_webhook_write")
    kubectl.run("annotate", "secret", "shop-key", "-n", namespace, "procon.dev/touched=1")
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)


def test_a_permission_revoked_from_a_ready_key_is_reported(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    """A Ready connection's verification is reused, not probed again by every drift check. A
    permission revoked at Stripe still shows: one no call of procon's needs as soon as the Secret is
    touched (or after the recheck interval), one the drift check's listing needs by that check."""
    key = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "shop", key)
    wait_condition(kubectl, namespace, "shop", "Ready", "True")

    stripe_emulator.revoke(key, "rak_charge_read")
    kubectl.run("annotate", "secret", "shop-key", "-n", namespace, "procon.dev/touched=1")
    obj = wait_condition(
        kubectl, namespace, "shop", "Stalled", "True", "InsufficientPermissions", timeout=WATCH_TIMEOUT
    )
    assert obj["status"]["missingPermissions"] == ["rak_charge_read"]
    stripe_emulator.grant(key, "rak_charge_read")  # a stalled connection is asked again by every check
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=DRIFT_TIMEOUT)

    stripe_emulator.revoke(key, "rak_webhook_write")  # nothing changes in Kubernetes
    obj = wait_condition(
        kubectl, namespace, "shop", "Stalled", "True", "InsufficientPermissions", timeout=DRIFT_TIMEOUT
    )
    assert obj["status"]["missingPermissions"] == ["rak_webhook_write"]
    assert obj["status"].get("verifiedCredentials") is None
    stripe_emulator.grant(key, "rak_webhook_write")
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=DRIFT_TIMEOUT)
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)


def test_endpoint_cap_stalls_with_a_clear_reason(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    for i in range(16):
        stripe_emulator.create_endpoint(
            account.id, f"https://other{i}.example.com/hook", ["charge.succeeded"]
        )
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "EndpointLimitReached")
    webhook = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")
    assert "maximum of 16 test webhook endpoints" in webhook["message"]
    assert len(account.endpoints()) == 16
    assert obj["status"]["conditions"]


def test_drift_is_restored_by_the_periodic_check(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    first = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)

    # Disabled and edited in the Dashboard: restored in place.
    stripe_emulator.update_endpoint(first["id"], disabled=True, enabled_events=["*"])
    wait_for(
        lambda: (
            account.endpoints()[0]["status"] == "enabled"
            and sorted(account.endpoints()[0]["enabled_events"]) == ["charge.succeeded", "payout.paid"]
        ),
        timeout=DRIFT_TIMEOUT,
        what="the disabled endpoint to be restored",
    )
    assert account.endpoints()[0]["id"] == first["id"]
    # That pass is over once its event is posted: the next drift is a pass of its own.
    wait_for_events(kubectl, namespace, "shop", "DriftCorrected", count=1)

    # Deleted in the Dashboard: recreated, and the new secret published.
    stripe_emulator.delete_endpoint(first["id"])
    wait_for(
        lambda: len(account.endpoints()) == 1,
        timeout=DRIFT_TIMEOUT,
        what="the deleted endpoint to be recreated",
    )
    wait_for(
        lambda: signing_secret(kubectl, namespace, "shop")["endpointId"] == account.endpoints()[0]["id"],
        timeout=10,
        what="the new signing secret",
    )
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    wait_for_events(kubectl, namespace, "shop", "DriftCorrected", count=2)


def test_endpoint_deleted_while_being_restored_is_recreated_in_the_same_pass(
    kubectl: Kubectl,
    namespace: str,
    account: StripeAccount,
    stripe_emulator: StripeEmulator,
    operator: OperatorProcess,
) -> None:
    """The update finds the endpoint gone (deleted in the Dashboard meanwhile): the same pass
    creates a new one and publishes its secret, with no failed reconcile."""
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    first = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    log_offset = len(operator.log())

    # Nothing else may be writing to the emulator while its writes are held.
    wait_until_nothing_is_being_deleted(kubectl)
    with stripe_emulator.hold_writes() as gate:
        stripe_emulator.update_endpoint(first["id"], disabled=True)
        assert gate.wait_for_waiting(1, timeout=DRIFT_TIMEOUT), "the operator never sent its update"
        stripe_emulator.delete_endpoint(first["id"])

    created = wait_for_events(kubectl, namespace, "shop", "DriftCorrected")
    wait_for(
        lambda: signing_secret(kubectl, namespace, "shop")["endpointId"] != first["id"],
        timeout=10,
        what="the new signing secret",
    )
    second = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert f"created {second['id']}" in created[0]["message"]
    assert f"reconcile of {namespace}/shop failed" not in operator.log()[log_offset:]


@pytest.mark.parametrize(
    ("mode", "fault"),
    [("error", FaultKind.COMMIT_THEN_FAIL), ("drop", FaultKind.DROPPED)],
    ids=["proxy-5xx", "dropped-connection"],
)
def test_create_whose_answer_is_lost_replays_to_the_original_secret(
    kubectl: Kubectl,
    namespace: str,
    account: StripeAccount,
    stripe_emulator: StripeEmulator,
    mode: str,
    fault: FaultKind,
) -> None:
    """Lost on the way back after Stripe saved its success: the replay under the same key returns it."""
    injected = stripe_emulator.count(fault=fault)
    stripe_emulator.set_faults(
        commit_then_fail=2,
        commit_then_fail_mode=mode,
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/v1/webhook_endpoints",
    )
    try:
        apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
        wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=60)
    finally:
        stripe_emulator.set_faults()
    assert stripe_emulator.count(fault=fault) == injected + 2  # the creates did fail after committing
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    # One create, one key: the original endpoint and its secret, nothing deleted or created again.
    assert len(stripe_emulator.state.idempotency.keys(account.id)) == 1
    reasons = [e["reason"] for e in events(kubectl, namespace, "shop")]
    assert "DeletedWebhookEndpoint" not in reasons


def test_create_whose_500_is_saved_and_replayed_converges_without_waiting_for_the_key(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    """Stripe's own 500 after it began work is saved and replayed to every retry with the key, for a
    day: the key is spent. The endpoint the create may have left is deleted and a new key used."""
    injected = stripe_emulator.count(fault=FaultKind.PROCESSOR_ERROR)
    replayed_500s = stripe_emulator.count("POST", "/v1/webhook_endpoints", 500)
    stripe_emulator.set_faults(
        commit_then_fail=2,
        commit_then_fail_mode="processor_error",
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/v1/webhook_endpoints",
    )
    try:
        apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
        # Well within the retry cap, nowhere near the 24 hours the saved answers are kept.
        wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=60)
    finally:
        stripe_emulator.set_faults()
    assert stripe_emulator.count(fault=FaultKind.PROCESSOR_ERROR) == injected + 2
    # The SDK's retries under the first keys received the saved 500 again.
    assert stripe_emulator.count("POST", "/v1/webhook_endpoints", 500) > replayed_500s + 2
    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    keys = stripe_emulator.state.idempotency.keys(account.id)
    assert len(keys) == len(set(keys)) == 3  # two spent, one that worked: never a key twice
    # Both committed creates left an endpoint; both were deleted as leftovers.
    deleted = wait_for_events(kubectl, namespace, "shop", "DeletedWebhookEndpoint", count=2)
    assert all(endpoint["id"] not in e["message"] for e in deleted)


def test_connections_converge_under_server_errors(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    """30% 5xx answers, and creates that commit and then fail with a saved 500: every connection is
    Ready within a bounded wait (the retry delay is capped; a spent key never waits out its day)."""
    accounts = [StripeAccount(stripe_emulator) for _ in range(6)]
    keys = [a.key(ANALYTICS_PERMISSIONS) for a in accounts]
    injected = stripe_emulator.count(fault=FaultKind.SERVER_ERROR)
    committed = stripe_emulator.count(fault=FaultKind.PROCESSOR_ERROR)
    stripe_emulator.set_faults(
        error_rate=0.3,
        seed=9,
        commit_then_fail=4,
        commit_then_fail_mode="processor_error",
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/v1/webhook_endpoints",
    )
    try:
        for i, key in enumerate(keys):
            apply_connection(kubectl, namespace, f"shop{i}", key)
        for i in range(len(keys)):
            wait_condition(kubectl, namespace, f"shop{i}", "Ready", "True", timeout=90)
    finally:
        stripe_emulator.set_faults()
    assert stripe_emulator.count(fault=FaultKind.SERVER_ERROR) > injected  # the faults did happen
    assert stripe_emulator.count(fault=FaultKind.PROCESSOR_ERROR) == committed + 4
    for i, acct in enumerate(accounts):
        assert_one_endpoint_with_published_secret(kubectl, namespace, f"shop{i}", acct)


def test_deletion_honours_the_policy(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    deleting, orphaning = StripeAccount(stripe_emulator), StripeAccount(stripe_emulator)
    apply_connection(kubectl, namespace, "gone", deleting.key(ANALYTICS_PERMISSIONS))
    apply_connection(
        kubectl, namespace, "kept", orphaning.key(ANALYTICS_PERMISSIONS), deletionPolicy="Orphan"
    )
    wait_condition(kubectl, namespace, "gone", "Ready", "True")
    wait_condition(kubectl, namespace, "kept", "Ready", "True")

    kubectl.run("delete", "pconn", "gone", "kept", "-n", namespace, "--timeout=30s")
    assert deleting.endpoints() == []
    assert len(orphaning.endpoints()) == 1
    # The signing Secrets follow their owner (garbage collector).
    wait_for(
        lambda: kubectl.run("get", "secret", "gone-webhook", "-n", namespace, check=False).returncode != 0,
        what="the signing Secret to be garbage-collected",
        timeout=GARBAGE_COLLECTION_TIMEOUT,
    )


def _secret_gone(kubectl: Kubectl, namespace: str, name: str) -> bool:
    return kubectl.run("get", "secret", name, "-n", namespace, check=False).returncode != 0


@pytest.mark.parametrize("how", ["Orphan", "paused"])
def test_orphaned_connection_leaves_its_signing_secret(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, how: str
) -> None:
    """The webhook stays at the processor, so the secret that verifies its deliveries stays too
    (not garbage-collected with the connection); a later connection of the same name takes the
    Secret over."""
    kept, deleted = StripeAccount(stripe_emulator), StripeAccount(stripe_emulator)
    spec: dict[str, Any] = {"deletionPolicy": "Orphan"} if how == "Orphan" else {}
    apply_connection(kubectl, namespace, "kept", kept.key(ANALYTICS_PERMISSIONS), **spec)
    apply_connection(kubectl, namespace, "gone", deleted.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "kept", "Ready", "True")
    wait_condition(kubectl, namespace, "gone", "Ready", "True")
    orphaned = assert_one_endpoint_with_published_secret(kubectl, namespace, "kept", kept)
    uid = kubectl.get_json("pconn", "kept", "-n", namespace)["metadata"]["uid"]
    if how == "paused":
        kubectl.run("annotate", "pconn", "kept", "-n", namespace, "procon.dev/paused=true")

    kubectl.run("delete", "pconn", "kept", "-n", namespace, "--timeout=30s")
    # Then a connection whose Secret the garbage collector does delete: by the time it has, it has
    # also dealt with the orphaned connection's, deleted first.
    kubectl.run("delete", "pconn", "gone", "-n", namespace, "--timeout=30s")
    wait_for(
        lambda: _secret_gone(kubectl, namespace, "gone-webhook"),
        what="the deleted one's Secret to go",
        timeout=GARBAGE_COLLECTION_TIMEOUT,
    )

    secret = kubectl.get_json("secret", "kept-webhook", "-n", namespace)
    assert not secret["metadata"].get("ownerReferences")
    assert secret["metadata"]["annotations"]["procon.dev/orphaned-from"] == f"{namespace}/kept (uid {uid})"
    published = signing_secret(kubectl, namespace, "kept")
    assert [e["id"] for e in kept.endpoints()] == [orphaned["id"]]
    assert published["endpointId"] == orphaned["id"]
    assert published["signingSecret"] == stripe_emulator.endpoint_secret(orphaned["id"])
    reasons = [e for e in events(kubectl, namespace, "kept") if e["reason"] == "OrphanedWebhookEndpoint"]
    assert "kept its signing secret in Secret kept-webhook" in reasons[0]["message"]

    # The same connection again: it takes the Secret over (and replaces the earlier object's webhook).
    apply_connection(kubectl, namespace, "kept", kept.keys[0])
    wait_condition(kubectl, namespace, "kept", "Ready", "True")
    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "kept", kept)
    assert endpoint["id"] != orphaned["id"]
    secret = kubectl.get_json("secret", "kept-webhook", "-n", namespace)
    new_uid = kubectl.get_json("pconn", "kept", "-n", namespace)["metadata"]["uid"]
    assert [r["uid"] for r in secret["metadata"]["ownerReferences"]] == [new_uid]
    assert "procon.dev/orphaned-from" not in (secret["metadata"].get("annotations") or {})


def test_deletion_with_a_revoked_key_is_not_trapped(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    key = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "shop", key)
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    stripe_emulator.expire_key(key)
    kubectl.run("delete", "pconn", "shop", "-n", namespace, "--timeout=60s")
    assert kubectl.run("get", "pconn", "shop", "-n", namespace, check=False).returncode != 0
    warnings = [e for e in events(kubectl, namespace, "shop") if e["type"] == "Warning"]
    assert any(e["reason"] == "WebhookCleanupFailed" for e in warnings)
    assert len(account.endpoints()) == 1  # nothing could delete it; it is reported, not hidden


@pytest.mark.parametrize("replay_available", [True, False], ids=["replayed", "replay-expired"])
def test_crash_between_create_and_publish_loses_nothing(
    kubectl: Kubectl,
    namespace: str,
    account: StripeAccount,
    stripe_emulator: StripeEmulator,
    operator: OperatorProcess,
    replay_available: bool,
) -> None:
    # Nothing else may be writing to the emulator while its writes are held.
    wait_until_nothing_is_being_deleted(kubectl)
    key = account.key(ANALYTICS_PERMISSIONS)
    with stripe_emulator.hold_writes() as gate:
        apply_connection(kubectl, namespace, "shop", key)
        assert gate.wait_for_waiting(1, timeout=30), "the operator never sent its create"
        operator.crash()  # the create is in flight; its answer will reach no one
    # The gate is open: the held create commits at the processor.
    created = wait_for(account.endpoints, timeout=10, what="the orphaned create to commit")
    assert len(created) == 1
    # The write-ahead record is in the signing Secret, beside what it is for, not on the connection.
    obj = kubectl.get_json("pconn", "shop", "-n", namespace)
    assert "procon.dev/pending-create" not in obj["metadata"].get("annotations", {})
    written_ahead = signing_secret(kubectl, namespace, "shop")
    assert set(written_ahead) == {"pendingCreate"}
    assert json.loads(written_ahead["pendingCreate"])["key"] in stripe_emulator.state.idempotency.keys(
        account.id
    )
    if not replay_available:
        stripe_emulator.state.idempotency.clear()  # as if Stripe had pruned the key (after 24 h)

    operator.restart()
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=30)
    endpoint = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    if replay_available:
        assert endpoint["id"] == created[0]["id"]  # recovered, secret included
    else:
        assert endpoint["id"] != created[0]["id"]  # replaced; the orphan was deleted
    assert "pendingCreate" not in signing_secret(kubectl, namespace, "shop")


def test_idempotency_keys_are_random_and_kept_off_the_connection(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    accounts = [StripeAccount(stripe_emulator) for _ in range(2)]
    for i, acct in enumerate(accounts):
        apply_connection(kubectl, namespace, f"shop{i}", acct.key(ANALYTICS_PERMISSIONS))
    for i in range(2):
        wait_condition(kubectl, namespace, f"shop{i}", "Ready", "True")
    keys = [stripe_emulator.state.idempotency.keys(acct.id) for acct in accounts]
    assert [len(k) for k in keys] == [1, 1]
    assert keys[0] != keys[1]
    for i in range(2):
        obj = kubectl.get_json("pconn", f"shop{i}", "-n", namespace)
        text = json.dumps(obj)
        assert keys[i][0] not in text
        assert "procon.dev/pending-create" not in text
        assert obj["metadata"]["uid"] not in keys[i][0]
        assert "pendingCreate" not in signing_secret(kubectl, namespace, f"shop{i}")


@pytest.mark.parametrize("change", ["url", "rotation"])
def test_replacement_whose_create_fails_keeps_the_old_pair_until_the_new_one_exists(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator, change: str
) -> None:
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    old = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    old_published = signing_secret(kubectl, namespace, "shop")

    injected = stripe_emulator.count(fault=FaultKind.PROCESSOR_ERROR)
    stripe_emulator.set_faults(
        commit_then_fail=1000,
        commit_then_fail_mode="processor_error",
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/v1/webhook_endpoints",
    )
    try:
        if change == "url":
            apply_connection(kubectl, namespace, "shop", account.keys[-1], url="https://hooks.example.com/v2")
        else:
            kubectl.run("annotate", "pconn", "shop", "-n", namespace, "procon.dev/rotate-signing-secret=r1")
        wait_for(
            lambda: stripe_emulator.count(fault=FaultKind.PROCESSOR_ERROR) >= injected + 3,
            timeout=30,
            what="several replacement creates to fail",
        )
        reconciling = wait_condition(kubectl, namespace, "shop", "Reconciling", "True")
        message = next(c for c in reconciling["status"]["conditions"] if c["type"] == "Reconciling")[
            "message"
        ]
        assert "retrying in" in message
        # The old endpoint still serves, and the Secret still holds its secret.
        assert old["id"] in [e["id"] for e in account.endpoints()]
        published = signing_secret(kubectl, namespace, "shop")
        assert (published["endpointId"], published["signingSecret"]) == (
            old_published["endpointId"],
            old_published["signingSecret"],
        )
    finally:
        stripe_emulator.set_faults()
    wait_for(
        lambda: (
            [e["id"] for e in account.endpoints()] not in ([], [old["id"]])
            and len(account.endpoints()) == 1
            and signing_secret(kubectl, namespace, "shop")["endpointId"] != old["id"]
        ),
        timeout=45,
        what="the replacement to be published and the old endpoint deleted",
    )
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    new = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert new["id"] != old["id"]


@pytest.mark.parametrize("meanwhile", ["nothing", "replacement-deleted"])
def test_crash_between_a_rotations_create_and_its_publish_never_publishes_a_deleted_endpoint(
    kubectl: Kubectl,
    namespace: str,
    account: StripeAccount,
    stripe_emulator: StripeEmulator,
    operator: OperatorProcess,
    meanwhile: str,
) -> None:
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    old = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    old_published = signing_secret(kubectl, namespace, "shop")
    wait_until_nothing_is_being_deleted(kubectl)
    with stripe_emulator.hold_writes() as gate:
        kubectl.run("annotate", "pconn", "shop", "-n", namespace, "procon.dev/rotate-signing-secret=r1")
        assert gate.wait_for_waiting(1, timeout=30), "the operator never sent its create"
        operator.crash()  # the replacement's create is in flight; its answer will reach no one
    endpoints = wait_for(
        lambda: (lambda found: found if len(found) == 2 else None)(account.endpoints()),
        timeout=10,
        what="the replacement's create to commit",
    )
    (replacement,) = [e for e in endpoints if e["id"] != old["id"]]
    # Crashed after the create, before the publish: the old pair is intact.
    published = signing_secret(kubectl, namespace, "shop")
    assert published["endpointId"] == old["id"]
    assert published["signingSecret"] == old_published["signingSecret"]
    if meanwhile == "replacement-deleted":
        stripe_emulator.delete_endpoint(replacement["id"])

    operator.restart()
    wait_for(
        lambda: (
            kubectl.get_json("pconn", "shop", "-n", namespace)["status"].get("signingSecretRotation") == "r1"
        ),
        timeout=30,
        what="the rotation to be carried out",
    )
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=30)
    final = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert final["id"] != old["id"]
    if meanwhile == "nothing":
        assert final["id"] == replacement["id"]  # recovered by the replay, secret included
    else:
        assert final["id"] != replacement["id"]  # the replay named a deleted endpoint: not published
        keys = stripe_emulator.state.idempotency.keys(account.id)
        assert len(keys) == len(set(keys)) == 3  # the first create, the interrupted one, a new one


def test_deleted_signing_secret_is_republished_with_a_fresh_endpoint(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    first = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    kubectl.run("delete", "secret", "shop-webhook", "-n", namespace)

    # Stripe shows a secret only once, so the only way back to a published secret that
    # matches the live endpoint is a new endpoint. Noticed from the watch, not the drift timer.
    # The Secret reappears before the new endpoint is published (it first holds the
    # create's write-ahead record), and the old endpoint goes only after the new one is
    # published: wait for the end state, not for the Secret.
    def republished() -> bool:
        if kubectl.run("get", "secret", "shop-webhook", "-n", namespace, check=False).returncode != 0:
            return False
        published = signing_secret(kubectl, namespace, "shop")
        ids = [endpoint["id"] for endpoint in account.endpoints()]
        return published.get("endpointId") not in (None, "", first["id"]) and ids == [published["endpointId"]]

    wait_for(republished, timeout=WATCH_TIMEOUT, what="a fresh endpoint's secret published, the old one gone")
    wait_for(
        lambda: kubectl.get_json("pconn", "shop", "-n", namespace)["status"]["webhook"]["id"] != first["id"],
        timeout=WATCH_TIMEOUT,
        what="status to name the fresh endpoint",
    )
    second = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert second["id"] != first["id"]


def test_signing_secret_name_taken_by_a_foreign_secret_is_refused(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shop-webhook"},
            "stringData": {"mine": "yes"},
        },
        namespace=namespace,
    )
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Stalled", "True", "SigningSecretConflict")
    assert signing_secret(kubectl, namespace, "shop") == {"mine": "yes"}
    assert account.endpoints() == []


def test_acting_on_a_connected_account(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    connected = f"acct_1C{secrets.token_hex(6)}"
    platform = StripeAccount(stripe_emulator, connected=[connected])
    # A restricted key without Connect permissions is refused for another account.
    apply_connection(
        kubectl, namespace, "merchant", platform.key(ANALYTICS_PERMISSIONS), stripe={"account": connected}
    )
    obj = wait_condition(kubectl, namespace, "merchant", "Stalled", "True", "ConnectedAccountInaccessible")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "CredentialsValid")["message"]
    assert "Connect permissions" in message
    # With them, the endpoint is made on the connected account, not the platform.
    key = platform.key(ANALYTICS_PERMISSIONS, connect_permissions=ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "merchant", key, stripe={"account": connected})
    obj = wait_condition(kubectl, namespace, "merchant", "Ready", "True")
    assert obj["status"]["account"]["id"] == connected
    assert platform.endpoints() == []
    on_connected = stripe_emulator.endpoints(connected)
    assert len(on_connected) == 1
    assert signing_secret(kubectl, namespace, "merchant")["endpointId"] == on_connected[0]["id"]


def test_connect_endpoint_on_the_platform_and_immutable_fields_recreate(
    kubectl: Kubectl, namespace: str, account: StripeAccount, stripe_emulator: StripeEmulator
) -> None:
    key = account.key(ANALYTICS_PERMISSIONS)
    apply_connection(kubectl, namespace, "platform", key, stripe={"connect": True})
    wait_condition(kubectl, namespace, "platform", "Ready", "True")
    first = assert_one_endpoint_with_published_secret(kubectl, namespace, "platform", account)
    assert first["metadata"]["procon-connect"] == "true"
    # Stripe does not echo `connect`; the emulator's own record shows the create asked for it.
    assert stripe_emulator.state.endpoint(first["id"]).connect is True
    assert first["api_version"] is None

    # api_version cannot be updated at Stripe: a new endpoint, a new secret.
    apply_connection(
        kubectl, namespace, "platform", key, stripe={"connect": True, "apiVersion": "2026-06-24.dahlia"}
    )
    wait_condition(kubectl, namespace, "platform", "Ready", "True")
    second = assert_one_endpoint_with_published_secret(kubectl, namespace, "platform", account)
    assert second["id"] != first["id"]
    assert second["api_version"] == "2026-06-24.dahlia"

    # connect cannot be updated either: turning it off recreates the endpoint, with a new secret.
    apply_connection(kubectl, namespace, "platform", key, stripe={"apiVersion": "2026-06-24.dahlia"})
    wait_for(
        lambda: [e["id"] for e in account.endpoints()] not in ([], [second["id"]]),
        timeout=WATCH_TIMEOUT,
        what="the endpoint to be recreated without connect",
    )
    wait_condition(kubectl, namespace, "platform", "Ready", "True")
    third = assert_one_endpoint_with_published_secret(kubectl, namespace, "platform", account)
    assert third["id"] != second["id"]
    assert stripe_emulator.state.endpoint(third["id"]).connect is False


def test_write_probes_and_unverifiable_permissions(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    required = ["rak_charge_write", "rak_sku_read", "rak_webhook_write"]
    without_write = account.key(["rak_charge_read", "rak_webhook_write"])
    apply_connection(kubectl, namespace, "tickets", without_write, permissions=required)
    obj = wait_condition(kubectl, namespace, "tickets", "Stalled", "True", "InsufficientPermissions")
    assert obj["status"]["missingPermissions"] == ["rak_charge_write"]
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "PermissionsValid")["message"]
    assert "cannot be verified: rak_sku_read" in message

    apply_connection(
        kubectl,
        namespace,
        "tickets",
        account.key(["rak_charge_write", "rak_webhook_write"]),
        permissions=required,
    )
    obj = wait_condition(kubectl, namespace, "tickets", "Ready", "True", timeout=WATCH_TIMEOUT)
    permissions = next(c for c in obj["status"]["conditions"] if c["type"] == "PermissionsValid")
    assert permissions["status"] == "True"
    assert "cannot be verified: rak_sku_read" in permissions["message"]
    # The write probe changed nothing at Stripe.
    assert len(account.endpoints()) == 1


def test_signing_secret_rotation_replaces_the_endpoint(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    first = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    # Stripe cannot roll a secret through its API: rotation is a new endpoint.
    kubectl.run("annotate", "pconn", "shop", "-n", namespace, "procon.dev/rotate-signing-secret=r1")
    wait_for(
        lambda: (
            kubectl.get_json("pconn", "shop", "-n", namespace)["status"].get("signingSecretRotation") == "r1"
        ),
        timeout=WATCH_TIMEOUT,
        what="the rotation to be carried out",
    )
    second = assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)
    assert second["id"] != first["id"]
    # Done once: a later reconcile (a spec change, updated in place) does not rotate again.
    apply_connection(kubectl, namespace, "shop", account.keys[-1], webhook={"description": "after rotation"})
    wait_for(
        lambda: account.endpoints()[0].get("description") == "after rotation",
        timeout=WATCH_TIMEOUT,
        what="the next reconcile to update the endpoint",
    )
    assert (
        assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)["id"] == second["id"]
    )


def test_paused_connection_is_left_alone_until_resumed(
    kubectl: Kubectl, namespace: str, account: StripeAccount
) -> None:
    body = connection("shop")
    body["metadata"]["annotations"] = {"procon.dev/paused": "true"}
    key = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply([key_secret("shop", key), body], namespace=namespace)
    # The operator has seen it (procon's finalizer is on) yet writes no status and calls no one.
    wait_for(
        lambda: kubectl.get_json("pconn", "shop", "-n", namespace)["metadata"].get("finalizers"),
        timeout=WATCH_TIMEOUT,
        what="the operator to see the connection",
    )
    assert "status" not in kubectl.get_json("pconn", "shop", "-n", namespace)
    assert account.endpoints() == []
    kubectl.run("annotate", "pconn", "shop", "-n", namespace, "procon.dev/paused=false", "--overwrite")
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert_one_endpoint_with_published_secret(kubectl, namespace, "shop", account)


def test_deleting_the_namespace_still_deletes_the_endpoint(kubectl: Kubectl, account: StripeAccount) -> None:
    namespace = f"gone-{secrets.token_hex(4)}"
    kubectl.run("create", "namespace", namespace)
    apply_connection(kubectl, namespace, "shop", account.key(ANALYTICS_PERMISSIONS))
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert len(account.endpoints()) == 1
    # The namespace controller deletes the key Secret and the connection in no set
    # order; make the hard order happen: the Secret first.
    kubectl.run("delete", "secret", "shop-key", "-n", namespace)
    kubectl.run("delete", "namespace", namespace, "--timeout=60s")
    assert account.endpoints() == []

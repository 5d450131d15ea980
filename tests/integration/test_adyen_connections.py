"""Adyen connections end to end: the operator process, the real API server, the Adyen emulator.

Each test asserts both sides: the connection's status and Secrets, and the webhook
configurations in the emulator (whose views show the HMAC keys, as only the emulator can).
Each test has its own company account and API credentials, added to the session's emulators.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from procon.emulators.adyen.fixture import parse_companies, parse_credentials
from procon.emulators.faults import FaultKind
from procon.processors.adyen.webhook import events_digest
from procon.reconcile.ownership import Owner
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    CREDENTIALS_LABELS,
    OperatorProcess,
    condition,
    connection,
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
OPERATOR_ROLES = ("Management API - Webhooks read and write", "Management API - Accounts read")
HOOK = "https://hooks.example.com/adyen"


def _word(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


@dataclass
class AdyenCompany:
    """A fresh company account (with two merchant accounts) in the emulators, for one test."""

    emulator: Any
    id: str = field(default_factory=lambda: "Procon" + _word(12))
    keys: list[str] = field(default_factory=list)

    @property
    def merchants(self) -> list[str]:
        return [self.id + "ECOM", self.id + "POS"]

    def api_key(
        self,
        roles: Sequence[str] = OPERATOR_ROLES,
        *,
        environment: str = "test",
        merchant: str | None = None,
        active: bool = True,
    ) -> str:
        """A new API credential's key, company-level unless ``merchant`` is given."""
        emulator = self.emulator
        # Shaped like Adyen's (docs/processors/adyen.md, "Key shapes"), so the patterns are tested too.
        key = f"AQE{_word(40)}==-{_word(43)}=-{_word(16)}"
        credential: dict[str, Any] = {
            "username": f"ws_{_word(10)}@Company.{self.id}",
            "api_key": key,
            "environment": environment,
            "roles": list(roles),
            "active": active,
        }
        credential["merchant" if merchant else "company"] = merchant or self.id
        with emulator.state.lock:
            state = emulator.state
            known = self.id in state.companies
            companies = parse_companies(
                [] if known else [{"id": self.id, "merchants": self.merchants}], state.companies
            )
            added = parse_credentials([credential], companies, tuple(state.credentials.values()))
            state.add_credentials([] if known else [companies[self.id]], added)
        self.keys.append(key)
        return key

    def username(self, key: str) -> str:
        with self.emulator.state.lock:
            credentials = self.emulator.state.credentials.values()
            return str(next(c.username for c in credentials if c.api_key == key))

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self.emulator.webhooks(environment="test", company=self.id))

    def path(self) -> str:
        """Where its company-level webhooks are created."""
        return f"/test/v3/companies/{self.id}/webhooks"

    def merchant_webhooks(self, merchant: str) -> list[dict[str, Any]]:
        return list(self.emulator.webhooks(environment="test", merchant=merchant))


@pytest.fixture
def company(adyen_emulator: Any) -> AdyenCompany:
    return AdyenCompany(adyen_emulator)


def adyen_connection(
    name: str,
    company: AdyenCompany,
    *,
    url: str = HOOK,
    events: Sequence[str] = ("AUTHORISATION", "REFUND"),
    permissions: Sequence[str] = ("management-api-webhooks-read-and-write",),
    mode: str = "test",
    adyen: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body = connection(name, url=url, events=events, permissions=permissions, mode=mode, **spec)
    body["spec"]["processor"] = "adyen"
    body["spec"]["adyen"] = adyen if adyen is not None else {"companyAccount": company.id}
    return body


def adyen_secret(name: str, api_key: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-key", "labels": dict(CREDENTIALS_LABELS)},
        "stringData": {"apiKey": api_key} if api_key else {},
    }


def apply(
    kubectl: Kubectl, namespace: str, name: str, company: AdyenCompany, api_key: str | None, **spec: Any
) -> None:
    kubectl.apply([adyen_secret(name, api_key), adyen_connection(name, company, **spec)], namespace=namespace)


def marker(kubectl: Kubectl, namespace: str, name: str) -> str:
    uid = kubectl.get_json("pconn", name, "-n", namespace)["metadata"]["uid"]
    return f"procon/integration/{namespace}/{name}/{uid}"


def assert_one_webhook_signing_with_the_published_key(
    kubectl: Kubectl, namespace: str, name: str, webhooks: list[dict[str, Any]]
) -> dict[str, Any]:
    """Exactly one webhook, procon's, switched on, its key the published one and recorded by its
    check value in the marker, followed by the digest of the event codes the spec asks for."""
    assert len(webhooks) == 1, [(w["id"], w["description"]) for w in webhooks]
    (webhook,) = webhooks
    asked = events_digest(kubectl.get_json("pconn", name, "-n", namespace)["spec"]["webhook"]["events"])
    assert webhook["description"] == (
        f"{marker(kubectl, namespace, name)}#{webhook['hmacKeyCheckValue']}#{asked}"
    )
    assert webhook["active"] is True
    published = signing_secret(kubectl, namespace, name)
    assert published["endpointId"] == webhook["id"]
    assert published["signingSecret"] == webhook["hmacKey"]
    obj = kubectl.get_json("pconn", name, "-n", namespace)
    assert obj["status"]["webhook"]["id"] == webhook["id"]
    return webhook


# --- Ready -------------------------------------------------------------------------------------


def test_company_connection_becomes_ready(kubectl: Kubectl, namespace: str, company: AdyenCompany) -> None:
    apply(
        kubectl,
        namespace,
        "eu",
        company,
        company.api_key(),
        permissions=["management-api-accounts-read", "management-api-webhooks-read"],
        adyen={
            "companyAccount": company.id,
            "filterMerchantAccountType": "includeAccounts",
            "filterMerchantAccounts": [company.merchants[0]],
        },
    )
    obj = wait_condition(kubectl, namespace, "eu", "Ready", "True")
    assert obj["status"]["account"] == {"id": company.id, "mode": "test"}
    webhook = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    assert webhook["url"] == HOOK
    assert webhook["type"] == "standard"
    assert webhook["communicationFormat"] == "json"
    assert webhook["filterMerchantAccountType"] == "includeAccounts"
    assert webhook["filterMerchantAccounts"] == [company.merchants[0]]
    assert set(webhook["additionalSettings"]["includeEventCodes"]) >= {"AUTHORISATION", "REFUND"}
    # One event for a new connection: the webhook made and where its signing secret went.
    created = [e for e in events(kubectl, namespace, "eu") if e["reason"] == "CreatedWebhookEndpoint"]
    assert len(created) == 1, created
    assert "published its signing secret to Secret " in created[0]["message"], created


def test_merchant_connection_becomes_ready(kubectl: Kubectl, namespace: str, company: AdyenCompany) -> None:
    merchant = company.merchants[1]
    key = company.api_key(["Management API - Webhooks read and write"], merchant=merchant)
    apply(kubectl, namespace, "pos", company, key, adyen={"merchantAccount": merchant})
    obj = wait_condition(kubectl, namespace, "pos", "Ready", "True")
    assert obj["status"]["account"] == {"id": merchant, "mode": "test"}
    assert_one_webhook_signing_with_the_published_key(
        kubectl, namespace, "pos", company.merchant_webhooks(merchant)
    )
    assert company.webhooks() == []


# --- credentials and roles ------------------------------------------------------------------------


def test_missing_role_is_named_and_recovered(
    kubectl: Kubectl, namespace: str, company: AdyenCompany, adyen_emulator: Any
) -> None:
    key = company.api_key(["Management API - Webhooks read", "Management API \u2014 Payment methods read"])
    apply(
        kubectl,
        namespace,
        "eu",
        company,
        key,
        permissions=["management-api-payment-methods-read", "management-api-stores-read"],
    )
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "InsufficientPermissions")
    assert obj["status"]["missingPermissions"] == [
        "Management API - Stores read",
        "Management API - Webhooks read and write",
    ]
    message = condition(kubectl, namespace, "eu", "PermissionsValid")
    assert message is not None
    assert "Customer Area" in message["message"]
    assert company.webhooks() == []

    adyen_emulator.grant(company.username(key), "Management API\u2014Webhooks read and write")
    adyen_emulator.grant(company.username(key), "Management API - Stores read")
    kubectl.run("annotate", "secret", "eu-key", "-n", namespace, "procon.dev/touched=1")
    wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=WATCH_TIMEOUT)
    assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())


def test_an_unknown_role_is_reported_as_unknown(
    kubectl: Kubectl, namespace: str, company: AdyenCompany
) -> None:
    apply(kubectl, namespace, "eu", company, company.api_key(), permissions=["management-api-webhoks-read"])
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "UnknownPermission")
    permissions = next(c for c in obj["status"]["conditions"] if c["type"] == "PermissionsValid")
    assert "not a adyen role procon knows: management-api-webhoks-read" in permissions["message"]
    assert company.webhooks() == []


@pytest.mark.parametrize(
    ("make_key", "mode", "adyen", "reason"),
    [
        (lambda c: "AQE" + "unknownkey" * 5, "test", None, "InvalidCredentials"),
        (lambda c: c.api_key(active=False), "test", None, "InvalidCredentials"),
        (lambda c: c.api_key(environment="live"), "test", None, "ModeMismatch"),
        (lambda c: c.api_key(), "live", None, "ModeMismatch"),
        (lambda c: None, "test", None, "CredentialsKeyMissing"),
        (lambda c: c.api_key(), "test", {"companyAccount": "ProconOtherCompany"}, "AccountInaccessible"),
        (
            lambda c: c.api_key(["Management API - Webhooks read and write"], merchant=c.merchants[0]),
            "test",
            None,
            "AccountInaccessible",
        ),
    ],
    ids=[
        "unknown-key", "deactivated", "live-key-on-test", "test-key-on-live", "empty-secret",
        "another-company", "merchant-key-for-company",
    ],
)  # fmt: skip
def test_unusable_credentials(
    kubectl: Kubectl,
    namespace: str,
    company: AdyenCompany,
    make_key: Any,
    mode: str,
    adyen: dict[str, Any] | None,
    reason: str,
) -> None:
    apply(kubectl, namespace, "eu", company, make_key(company), mode=mode, adyen=adyen)
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", reason)
    credentials = next(c for c in obj["status"]["conditions"] if c["type"] == "CredentialsValid")
    assert (credentials["status"], credentials["reason"]) == ("False", reason)
    assert company.webhooks() == []


# --- webhooks at the account ------------------------------------------------------------------------


def test_stale_and_duplicate_webhooks_deleted_foreign_reported(
    kubectl: Kubectl, namespace: str, company: AdyenCompany, adyen_emulator: Any
) -> None:
    key = company.api_key()
    foreign = adyen_emulator.create_webhook(
        {
            "url": HOOK,
            "type": "standard",
            "active": True,
            "communicationFormat": "json",
            "filterMerchantAccountType": "allAccounts",
            "filterMerchantAccounts": [],
        },
        company=company.id,
    )
    apply(kubectl, namespace, "eu", company, key)
    obj = wait_condition(kubectl, namespace, "eu", "WebhookReady", "False", "EndpointConflict")
    webhook_ready = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")
    assert foreign["id"] in webhook_ready["message"]
    assert [w["id"] for w in company.webhooks()] == [foreign["id"]]
    assert company.webhooks()[0]["description"] == foreign["description"]  # never touched

    # Elsewhere, the foreign webhook does not block; owned leftovers are cleaned up.
    apply(kubectl, namespace, "eu", company, key, url=HOOK + "/v2")
    obj = wait_condition(kubectl, namespace, "eu", "Ready", "True")
    keeper = obj["status"]["webhook"]["id"]
    owner = Owner("integration", namespace, "eu", obj["metadata"]["uid"])
    body = {
        "url": HOOK + "/old",
        "type": "standard",
        "active": True,
        "communicationFormat": "json",
        "filterMerchantAccountType": "allAccounts",
        "filterMerchantAccounts": [],
        "description": f"procon/{owner.cluster}/{owner.namespace}/{owner.name}/{owner.uid}",
    }
    duplicate = adyen_emulator.create_webhook(body, company=company.id)
    predecessor = adyen_emulator.create_webhook(
        {**body, "description": f"procon/{owner.cluster}/{owner.namespace}/{owner.name}/earlier-uid"},
        company=company.id,
    )
    wait_for(
        lambda: {w["id"] for w in company.webhooks()} == {keeper, foreign["id"]},
        timeout=DRIFT_TIMEOUT,
        what="the drift check to delete the owned leftovers",
    )
    deleted = " ".join(
        e["message"] for e in wait_for_events(kubectl, namespace, "eu", "DeletedWebhookEndpoint", count=2)
    )
    assert duplicate["id"] in deleted
    assert predecessor["id"] in deleted
    assert company.webhooks()[0]["description"] == foreign["description"]


def test_webhook_of_another_connection_at_the_url_stalls_the_newcomer(
    kubectl: Kubectl, namespace: str, company: AdyenCompany
) -> None:
    apply(kubectl, namespace, "first", company, company.api_key())
    wait_condition(kubectl, namespace, "first", "Ready", "True")
    (owned,) = company.webhooks()
    apply(kubectl, namespace, "second", company, company.api_key(), webhook={"conflictPolicy": "Replace"})
    obj = wait_condition(kubectl, namespace, "second", "Stalled", "True", "EndpointConflict")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "WebhookReady")["message"]
    assert f"webhook {owned['id']} of connection {namespace}/first" in message
    assert [w["id"] for w in company.webhooks()] == [owned["id"]]
    wait_condition(kubectl, namespace, "first", "Ready", "True")


# --- drift -------------------------------------------------------------------------------------------


def test_deactivated_and_edited_webhooks_are_restored_with_the_same_key(
    kubectl: Kubectl, namespace: str, company: AdyenCompany, adyen_emulator: Any
) -> None:
    apply(kubectl, namespace, "eu", company, company.api_key())
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())

    adyen_emulator.update_webhook(
        first["id"],
        active=False,
        acceptsSelfSignedCertificate=True,
        additionalSettings={"includeEventCodes": ["CAPTURE"]},
    )
    wait_for(
        lambda: (
            company.webhooks()[0]["active"] is True
            and company.webhooks()[0].get("acceptsSelfSignedCertificate") is False
        ),
        timeout=DRIFT_TIMEOUT,
        what="the drift check to switch the webhook back on",
    )
    corrected = wait_for_events(kubectl, namespace, "eu", "DriftCorrected", count=1)
    assert "enabled" in corrected[0]["message"]
    assert "certificate checks" in corrected[0]["message"]
    again = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    assert again["id"] == first["id"]
    assert again["hmacKey"] == first["hmacKey"]
    assert {"AUTHORISATION", "REFUND"} <= set(again["additionalSettings"]["includeEventCodes"])


@pytest.mark.parametrize("change", ["deleted", "url", "hmac-key"])
def test_a_webhook_deleted_or_changed_beyond_repair_is_replaced_and_its_key_published(
    kubectl: Kubectl, namespace: str, company: AdyenCompany, adyen_emulator: Any, change: str
) -> None:
    """Deleted, pointed elsewhere, or given another HMAC key in the Customer Area (seen by its check
    value, without reading the key): a new webhook, its new key published, the old one gone."""
    apply(kubectl, namespace, "eu", company, company.api_key())
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    if change == "deleted":
        adyen_emulator.delete_webhook(first["id"])
    elif change == "url":
        adyen_emulator.update_webhook(first["id"], url="https://elsewhere.example.com/hook")
    else:
        adyen_emulator.set_hmac_key(first["id"])

    wait_for(
        lambda: len(ids := [w["id"] for w in company.webhooks()]) == 1 and ids[0] != first["id"],
        timeout=DRIFT_TIMEOUT,
        what="the webhook to be replaced",
    )
    wait_for(
        lambda: signing_secret(kubectl, namespace, "eu")["endpointId"] == company.webhooks()[0]["id"],
        timeout=WATCH_TIMEOUT,
        what="the Secret to name the new webhook",
    )
    second = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    assert second["url"] == HOOK
    assert second["hmacKey"] != first["hmacKey"]
    wait_for_events(kubectl, namespace, "eu", "DriftCorrected", count=1)


# --- the key -------------------------------------------------------------------------------------------


def test_signing_key_rotation_publishes_a_new_key(
    kubectl: Kubectl, namespace: str, company: AdyenCompany
) -> None:
    apply(kubectl, namespace, "eu", company, company.api_key())
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    first = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())

    kubectl.run(
        "annotate", "pconn", "eu", "-n", namespace, "procon.dev/rotate-signing-secret=2026-12-01T17:00:00Z"
    )
    wait_for(
        lambda: (
            kubectl.get_json("pconn", "eu", "-n", namespace)["status"].get("signingSecretRotation")
            == "2026-12-01T17:00:00Z"
        ),
        timeout=WATCH_TIMEOUT,
        what="the rotation to be carried out",
    )
    wait_for(lambda: len(company.webhooks()) == 1, timeout=WATCH_TIMEOUT, what="the old webhook to go")
    second = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    # Adyen generates keys: a new key comes with a new webhook, published before the old one goes.
    assert second["id"] != first["id"]
    assert second["hmacKey"] != first["hmacKey"]
    assert "SigningSecretRotated" in {e["reason"] for e in events(kubectl, namespace, "eu")}


def test_nothing_is_delivered_before_the_key_is_published_and_a_crash_loses_nothing(
    kubectl: Kubectl,
    namespace: str,
    company: AdyenCompany,
    adyen_emulator: Any,
    operator: OperatorProcess,
) -> None:
    """The webhook is created switched off; the operator crashes while its create is in flight. What
    the create left (switched off, its key never published) delivers nothing and is deleted by the
    restarted operator, which ends with one webhook, switched on, signing with the published key."""
    wait_until_nothing_is_being_deleted(kubectl)
    with adyen_emulator.hold_writes() as gate:
        apply(kubectl, namespace, "eu", company, company.api_key())
        assert gate.wait_for_waiting(1, timeout=30), "the operator never sent its create"
        operator.crash()
    leftover = wait_for(company.webhooks, timeout=10, what="the orphaned create to commit")
    assert [w["active"] for w in leftover] == [False]

    operator.restart()
    wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=30)
    wait_for(lambda: len(company.webhooks()) == 1, timeout=WATCH_TIMEOUT, what="the leftover to go")
    webhook = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    assert webhook["id"] != leftover[0]["id"]


# --- deletion ---------------------------------------------------------------------------------------------


def test_deletion_honours_the_policy(kubectl: Kubectl, namespace: str, adyen_emulator: Any) -> None:
    deleting = AdyenCompany(adyen_emulator)
    orphaning = AdyenCompany(adyen_emulator)
    apply(kubectl, namespace, "gone", deleting, deleting.api_key())
    apply(kubectl, namespace, "kept", orphaning, orphaning.api_key(), deletionPolicy="Orphan")
    wait_condition(kubectl, namespace, "gone", "Ready", "True")
    wait_condition(kubectl, namespace, "kept", "Ready", "True")
    kubectl.run("delete", "pconn", "kept", "-n", namespace, "--timeout=30s")
    kubectl.run("delete", "pconn", "gone", "-n", namespace, "--timeout=30s")
    assert deleting.webhooks() == []
    (orphaned,) = orphaning.webhooks()
    secret = kubectl.get_json("secret", "kept-webhook", "-n", namespace)
    assert not secret["metadata"].get("ownerReferences")
    published = signing_secret(kubectl, namespace, "kept")
    assert published["endpointId"] == orphaned["id"]
    assert published["signingSecret"] == orphaned["hmacKey"]
    assert orphaned["active"] is True


# --- faults -----------------------------------------------------------------------------------------------


def test_converges_under_server_errors_and_lost_answers(
    kubectl: Kubectl, namespace: str, adyen_emulator: Any
) -> None:
    companies = [AdyenCompany(adyen_emulator) for _ in range(3)]
    keys = [c.api_key() for c in companies]
    adyen_emulator.set_faults(
        error_rate=0.3,
        commit_then_fail=3,
        commit_then_fail_mode="processor_error",
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix="/test/v3/companies/",
    )
    try:
        for i, c in enumerate(companies):
            apply(kubectl, namespace, f"c{i}", c, keys[i])
        for i in range(len(companies)):
            wait_condition(kubectl, namespace, f"c{i}", "Ready", "True", timeout=90)
    finally:
        adyen_emulator.set_faults()
    paths = {c.path() for c in companies}
    faults = {r.fault for r in adyen_emulator.requests if r.path in paths or r.path.startswith(tuple(paths))}
    assert {FaultKind.SERVER_ERROR, FaultKind.PROCESSOR_ERROR} <= faults  # both kinds did happen
    for i, c in enumerate(companies):
        wait_for(lambda: len(c.webhooks()) == 1, timeout=DRIFT_TIMEOUT, what="the leftovers to go")  # noqa: B023
        assert_one_webhook_signing_with_the_published_key(kubectl, namespace, f"c{i}", c.webhooks())


@pytest.mark.parametrize("mode", ["drop", "processor_error"])
def test_create_committed_but_not_answered_leaves_no_second_webhook(
    kubectl: Kubectl, namespace: str, company: AdyenCompany, adyen_emulator: Any, mode: str
) -> None:
    """The Management API takes no idempotency key, so the create is sent again; what the first one
    left is switched off with no published key (none at all, its answer lost before generateHmac),
    and deleted: one webhook remains, never two switched on."""
    adyen_emulator.set_faults(
        commit_then_fail=1,
        commit_then_fail_mode=mode,
        commit_then_fail_method="POST",
        commit_then_fail_path_prefix=company.path(),
    )
    try:
        apply(kubectl, namespace, "eu", company, company.api_key())
        wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=60)
    finally:
        adyen_emulator.set_faults()
    wait_for(lambda: len(company.webhooks()) == 1, timeout=DRIFT_TIMEOUT, what="the leftover to go")
    webhook = assert_one_webhook_signing_with_the_published_key(kubectl, namespace, "eu", company.webhooks())
    creates = [r for r in adyen_emulator.requests if (r.method, r.path) == ("POST", company.path())]
    assert len(creates) == 2  # the one whose answer was lost, and the one that serves
    (deleted,) = wait_for_events(kubectl, namespace, "eu", "DeletedWebhookEndpoint")
    assert webhook["id"] not in deleted["message"]
    assert "it has no HMAC key" in deleted["message"]


# --- secrets ------------------------------------------------------------------------------------------------


def test_no_api_key_or_hmac_key_in_the_log(
    kubectl: Kubectl,
    namespace: str,
    company: AdyenCompany,
    adyen_emulator: Any,
    operator: OperatorProcess,
) -> None:
    """After Ready, a refused key, a rotation and a deletion: neither the API keys nor any HMAC key
    the emulator ever generated appear in the operator's log, nor in events or status."""
    apply(kubectl, namespace, "eu", company, company.api_key())
    apply(kubectl, namespace, "bad", company, company.api_key(active=False))
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    wait_condition(kubectl, namespace, "bad", "Stalled", "True", "InvalidCredentials")
    kubectl.run("annotate", "pconn", "eu", "-n", namespace, "procon.dev/rotate-signing-secret=leak-check")
    wait_for(
        lambda: (
            kubectl.get_json("pconn", "eu", "-n", namespace)["status"].get("signingSecretRotation")
            == "leak-check"
        ),
        timeout=WATCH_TIMEOUT,
        what="the rotation",
    )
    kubectl.run("delete", "pconn", "eu", "-n", namespace, "--timeout=30s")
    shown = (
        operator.log()
        + str(kubectl.get_json("events", "-n", namespace))
        + str(kubectl.get_json("pconn", "-n", namespace))
    )
    secrets_seen = [*company.keys, *adyen_emulator.hmac_keys_seen()]
    assert secrets_seen
    leaked = [s[:6] + "…" for s in secrets_seen if s in shown]
    assert not leaked, leaked

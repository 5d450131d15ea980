"""The reconciler with the real Adyen driver, against the in-test Adyen and in-memory Kubernetes.

What only the pair shows: the HMAC key is in the signing Secret before the
webhook is switched on; a crash between Adyen's key and the Secret leaves
nothing delivering; a key changed at Adyen is seen by its check value and
replaced; a rotation makes a new webhook; and what an unchanged drift check
costs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from procon.processors.adyen.webhook import events_digest
from procon.reconcile.reconciler import Reconciler
from tests.unit.processors.test_adyen_driver import ALL_ROLES, TEST_HOST, TEST_KEY, FakeAdyen, check_value
from tests.unit.reconcile.doubles import Crash, MemoryKube

COMPANY = "/companies/AcmeCorp"


@pytest.fixture
def adyen() -> FakeAdyen:
    fake = FakeAdyen()
    fake.keys[TEST_KEY] = {"host": TEST_HOST, "roles": ALL_ROLES}
    fake.webhooks[COMPANY] = {}
    return fake


def adyen_kube() -> MemoryKube:
    kube = MemoryKube(secrets={"shop-key": {"apiKey": TEST_KEY}})
    kube.spec = {
        **kube.spec,
        "processor": "adyen",
        "requiredPermissions": ["management-api-webhooks-read-and-write"],
        "webhook": {**kube.spec["webhook"], "events": ["AUTHORISATION", "REFUND"]},
        "adyen": {"companyAccount": "AcmeCorp"},
    }
    return kube


class Operator:
    """A reconciler with the Adyen driver; notes how many Adyen calls preceded each publish."""

    def __init__(self, kube: MemoryKube, adyen: FakeAdyen) -> None:
        self.kube, self.adyen = kube, adyen
        self.publishes: list[int] = []
        original = kube.publish

        async def publish(connection: Any, webhook_id: str, signing_secret: str) -> None:
            await original(connection, webhook_id, signing_secret)
            self.publishes.append(len(adyen.requests))

        kube.publish = publish  # type: ignore[method-assign]
        self.reconciler = Reconciler(kube, {"adyen": adyen.driver()}, cluster_name="c1", draw=lambda: 0.5)

    def reconcile(self) -> str:
        return asyncio.run(self.reconciler.reconcile("ns", "shop")).state


def webhooks(adyen: FakeAdyen) -> list[dict[str, Any]]:
    return list(adyen.webhooks[COMPANY].values())


def assert_one_delivering_with_the_published_key(kube: MemoryKube, adyen: FakeAdyen) -> dict[str, Any]:
    (webhook,) = webhooks(adyen)
    assert webhook["active"] is True
    assert kube.published is not None
    assert kube.published["id"] == webhook["id"]
    assert kube.published["secret"] is not None
    assert check_value(kube.published["secret"]) == webhook["hmacKeyCheckValue"]
    # The marker, the published key's check value, and the digest of the event codes asked for.
    marker, check, asked = webhook["description"].split("#")
    assert (marker, check) == ("procon/c1/ns/shop/uid-1", webhook["hmacKeyCheckValue"])
    assert asked == events_digest(webhook["additionalSettings"]["includeEventCodes"])
    return webhook


def test_the_key_is_published_before_the_webhook_is_switched_on(adyen: FakeAdyen) -> None:
    kube = adyen_kube()
    run = Operator(kube, adyen)
    assert run.reconcile() == "ready"
    webhook = assert_one_delivering_with_the_published_key(kube, adyen)
    calls = [f"{r.method} {r.url.path.rsplit('/', 1)[-1]}" for r in adyen.requests]
    assert calls == [
        "GET me",
        "GET webhooks",
        "POST webhooks",
        "POST generateHmac",
        f"GET {webhook['id']}",
        f"PATCH {webhook['id']}",
    ]
    created = json.loads(adyen.requests[2].content)
    assert created["active"] is False
    # Published after the key was generated and read (5 calls), before the PATCH switching it on.
    assert run.publishes == [5]
    assert json.loads(adyen.requests[5].content)["active"] is True
    assert [r for r in kube.reasons() if r != "SigningSecretPublished"] == ["CreatedWebhookEndpoint"]


def test_an_unchanged_drift_check_costs_one_listing(adyen: FakeAdyen) -> None:
    kube = adyen_kube()
    run = Operator(kube, adyen)
    assert run.reconcile() == "ready"
    before = len(adyen.requests)
    assert run.reconcile() == "ready"
    assert [f"{r.method} {r.url.path}" for r in adyen.requests[before:]] == [
        f"GET /v3{COMPANY}/webhooks"
    ]  # /me answered from the cache


def test_a_crash_before_the_key_is_published_leaves_nothing_delivering(adyen: FakeAdyen) -> None:
    kube = adyen_kube()
    kube.crash_on_publish = 1
    run = Operator(kube, adyen)
    with pytest.raises(Crash):
        run.reconcile()
    (leftover,) = webhooks(adyen)
    assert leftover["active"] is False  # its key was generated, never published: it delivers nothing
    assert kube.published is None

    assert run.reconcile() == "ready"
    webhook = assert_one_delivering_with_the_published_key(kube, adyen)
    assert webhook["id"] != leftover["id"]
    assert any(
        leftover["id"] in message for _, reason, message in kube.events if reason == "DeletedWebhookEndpoint"
    )


def test_a_crash_after_publishing_is_finished_by_the_next_pass(adyen: FakeAdyen) -> None:
    kube = adyen_kube()
    run = Operator(kube, adyen)
    patches = 0

    def crash_on_first_patch(request: httpx.Request) -> httpx.Response | None:
        nonlocal patches
        patches += 1
        if patches == 1:
            raise Crash("before switching on")
        return None

    adyen.override("PATCH", r"/v3/companies/AcmeCorp/webhooks/[^/]+", crash_on_first_patch)
    with pytest.raises(Crash):
        run.reconcile()
    (webhook,) = webhooks(adyen)
    assert webhook["active"] is False
    assert kube.published is not None
    assert kube.published["id"] == webhook["id"]

    assert run.reconcile() == "ready"
    assert assert_one_delivering_with_the_published_key(kube, adyen)["id"] == webhook["id"]


def test_a_key_changed_at_adyen_is_replaced_and_the_new_one_published(adyen: FakeAdyen) -> None:
    kube = adyen_kube()
    run = Operator(kube, adyen)
    assert run.reconcile() == "ready"
    first = assert_one_delivering_with_the_published_key(kube, adyen)
    first["hmacKeyCheckValue"] = "ABCDEF"  # generated again in the Customer Area
    assert run.reconcile() == "ready"
    second = assert_one_delivering_with_the_published_key(kube, adyen)
    assert second["id"] != first["id"]
    assert "DriftCorrected" in kube.reasons()


def test_rotation_makes_a_new_webhook_published_before_the_old_one_goes(adyen: FakeAdyen) -> None:
    kube = adyen_kube()
    run = Operator(kube, adyen)
    assert run.reconcile() == "ready"
    first = assert_one_delivering_with_the_published_key(kube, adyen)
    old_key = kube.published["secret"] if kube.published else None
    kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    assert run.reconcile() == "ready"
    second = assert_one_delivering_with_the_published_key(kube, adyen)
    assert second["id"] != first["id"]
    assert kube.published is not None
    assert kube.published["secret"] != old_key
    assert kube.status["signingSecretRotation"] == "r1"
    deleted = [i for i, r in enumerate(adyen.requests) if r.method == "DELETE"]
    assert deleted
    assert deleted[0] > run.publishes[-1]  # the old one went after the new key was published

"""A verified connection is not verified again until what the verification was made from changes.

An unchanged fleet must cost at most one listing per account per drift interval and nothing else:
no verification, no permission probe, no write at the processor, none in Kubernetes. The verdict
(credentials valid, their account, permissions granted) is reused while the credentials Secret
(UID and resourceVersion) and the connection's generation are those it was made for, until a
processor call is refused for the credentials or a permission, and for at most the recheck interval.
"""

from __future__ import annotations

import pytest

from procon.reconcile.reconciler import Reconciler, recheck_age
from tests.unit.reconcile.doubles import (
    PROCESSOR,
    WEBHOOK_PERMISSION,
    FakeProcessor,
    FakeWebhook,
    FleetKube,
    MemoryKube,
)

pytestmark = pytest.mark.anyio

DRIFT_INTERVAL = 300.0
RECHECK_INTERVAL = 86400.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def verified(kube: MemoryKube, processor: FakeProcessor, clock: Clock) -> Reconciler:
    """An operator with one Ready connection; what it did so far is cleared."""
    operator = Reconciler(
        kube,
        {PROCESSOR: processor},
        cluster_name="c1",
        draw=lambda: 0.5,
        recheck_interval=RECHECK_INTERVAL,
        clock=clock,
    )
    assert (await operator.reconcile("ns", "shop")).state == "ready"
    assert processor.checks == ["verify", "permissions"]
    processor.checks.clear()
    processor.calls.clear()
    processor.forgotten = 0
    kube.status_writes.clear()
    kube.events.clear()
    return operator


async def drift_checks(operator: Reconciler, clock: Clock, count: int) -> set[str]:
    """``count`` periodic checks, one drift interval apart; their outcomes."""
    states = set()
    for _ in range(count):
        clock.now += DRIFT_INTERVAL
        states.add((await operator.reconcile("ns", "shop", changed=False)).state)
    return states


async def test_drift_checks_of_an_unchanged_connection_only_list() -> None:
    """Twelve hours of drift checks, far past the ten minutes the drivers' caches used to trust a
    verdict for: every one of them lists the account, and does nothing else anywhere."""
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    operator = await verified(kube, processor, clock)

    assert await drift_checks(operator, clock, 144) == {"ready"}

    assert processor.checks == [], "no verification, no permission probe"
    assert processor.calls == ["list"] * 144
    assert kube.status_writes == [], "no status write"
    assert kube.events == []


async def test_a_changed_credentials_secret_is_verified_again() -> None:
    """A new resourceVersion of the Secret (a new key, or only a label touched: how a person asks
    for a check now) verifies again; then the reuse goes on from the new verification."""
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    operator = await verified(kube, processor, clock)
    await drift_checks(operator, clock, 3)
    assert processor.checks == []

    kube.change_secret("shop-key", {"token": "fake-key-1"})  # same data, new resourceVersion
    assert (await operator.reconcile("ns", "shop")).state == "ready"
    assert processor.checks == ["verify", "permissions"]
    assert kube.status["verifiedCredentials"]["secretResourceVersion"] == "2"

    processor.checks.clear()
    await drift_checks(operator, clock, 3)
    assert processor.checks == []


async def test_a_touched_secret_is_asked_about_afresh_once_for_every_connection_using_it() -> None:
    """A Secret touched to have its key checked now must reach the processor, not a driver's cache
    filled before: the first verification of the new version drops what the driver kept about the
    key; the other connections using the Secret share that fresh answer."""
    fleet, processor, clock = FleetKube(), FakeProcessor(), Clock()
    names = [f"shop-{n}" for n in range(5)]
    for name in names:
        fleet.add(name)
    operator = Reconciler(fleet, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5, clock=clock)
    for name in names:
        assert (await operator.reconcile("ns", name)).state == "ready"
    assert processor.forgotten == 1, "one Secret version: asked about afresh once"
    clock.now += 3600
    for name in names:
        await operator.reconcile("ns", name, changed=False)
    processor.checks.clear()

    fleet.connections[names[0]].change_secret("shop-key", {"token": "fake-key-1"})
    for name in names:
        assert (await operator.reconcile("ns", name)).state == "ready"
    assert processor.forgotten == 2
    assert processor.checks == ["verify", "permissions"] * len(names)
    assert operator.state_entries()["fresh_secret_versions"] == 1


async def test_a_new_generation_is_verified_again() -> None:
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    operator = await verified(kube, processor, clock)
    await drift_checks(operator, clock, 3)
    assert processor.checks == []

    kube.spec["requiredPermissions"] = [WEBHOOK_PERMISSION, "payouts.read"]  # not granted
    kube.generation += 1
    assert (await operator.reconcile("ns", "shop")).state == "stalled"
    assert processor.checks == ["verify", "permissions"]
    assert kube.condition("PermissionsValid")["reason"] == "InsufficientPermissions"
    assert kube.status["missingPermissions"] == ["payouts.read"]
    assert kube.status["verifiedCredentials"] is None


async def test_a_stalled_verification_is_asked_again_by_every_drift_check() -> None:
    """Only a verdict that passed is reused: a grant made at the processor is seen by the next
    drift check, with nothing changed in Kubernetes."""
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    kube.spec["requiredPermissions"] = [WEBHOOK_PERMISSION, "payouts.read"]
    operator = Reconciler(kube, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5, clock=clock)
    assert (await operator.reconcile("ns", "shop")).state == "stalled"
    processor.granted.add("payouts.read")

    assert await drift_checks(operator, clock, 1) == {"ready"}


async def test_a_listing_refused_for_a_permission_makes_the_next_pass_verify_and_report() -> None:
    """A permission revoked at the processor shows when a call needing it is refused: that pass
    reports the refusal, drops what the driver kept about the key, and leaves no record, so the
    next pass asks the processor everything again and reports all that is missing."""
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    kube.spec["requiredPermissions"] = [WEBHOOK_PERMISSION, "reports.read"]
    operator = await verified(kube, processor, clock)
    await drift_checks(operator, clock, 3)
    assert processor.checks == []

    processor.granted.clear()  # both revoked; the listing needs the webhook one
    assert await drift_checks(operator, clock, 1) == {"stalled"}
    assert processor.checks == [], "the refusal itself is reported"
    assert kube.condition("WebhookReady")["reason"] == "InsufficientPermissions"
    assert kube.status["missingPermissions"] == [WEBHOOK_PERMISSION]
    assert kube.status["verifiedCredentials"] is None
    assert processor.forgotten == 1, "what the driver kept about the key is dropped"

    assert await drift_checks(operator, clock, 1) == {"stalled"}
    assert processor.checks == ["verify", "permissions"]
    permissions = kube.condition("PermissionsValid")
    assert (permissions["status"], permissions["reason"]) == ("False", "InsufficientPermissions")
    assert kube.status["missingPermissions"] == [WEBHOOK_PERMISSION, "reports.read"]


async def test_a_create_refused_for_invalid_credentials_makes_the_next_pass_verify_and_report() -> None:
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    operator = await verified(kube, processor, clock)
    await drift_checks(operator, clock, 3)
    assert processor.checks == []

    # The webhook is deleted outside procon and the key revoked: the drift check's create is refused.
    (owned,) = processor.owned()
    del processor.webhooks[owned]
    processor.valid_keys.clear()
    processor.calls.clear()
    original = processor.list_webhooks

    async def listing_still_answered(*args: object, **kwargs: object) -> list[FakeWebhook]:
        processor.calls.append("list")  # a listing answered from before the revocation
        return []

    processor.list_webhooks = listing_still_answered  # type: ignore[method-assign, assignment]
    assert await drift_checks(operator, clock, 1) == {"stalled"}
    assert processor.calls == ["list", "create"]
    assert processor.checks == []
    assert kube.condition("CredentialsValid")["reason"] == "CredentialsInvalid"
    assert processor.forgotten == 1
    processor.list_webhooks = original  # type: ignore[method-assign]

    assert await drift_checks(operator, clock, 1) == {"stalled"}
    assert processor.checks == ["verify"]
    credentials = kube.condition("CredentialsValid")
    assert (credentials["status"], credentials["reason"]) == ("False", "CredentialsInvalid")


async def test_a_verification_is_made_again_after_the_recheck_interval() -> None:
    kube, processor, clock = MemoryKube(), FakeProcessor(), Clock()
    operator = await verified(kube, processor, clock)
    made = kube.status["verifiedCredentials"]["verifiedAt"]

    age = recheck_age(RECHECK_INTERVAL, kube.uid)  # this connection's share of the interval
    await drift_checks(operator, clock, int(age // DRIFT_INTERVAL))
    assert processor.checks == []

    await drift_checks(operator, clock, 1)
    assert processor.checks == ["verify", "permissions"]
    assert kube.status["verifiedCredentials"]["verifiedAt"] > made
    assert len(kube.status_writes) == 1, "only the time of the verification is new"

    processor.checks.clear()
    await drift_checks(operator, clock, 10)
    assert processor.checks == []


async def test_a_stripe_connection_costs_one_listing_per_drift_check() -> None:
    """The figure, with the Stripe driver against the emulator: a restricted key's verification is
    an account read and a probe per permission it cannot take from use. Over a recheck interval of
    drift checks (one every five minutes; the interval two hours here, to keep the test short), the
    key is used for the listings and one re-verification; before, it was verified again whenever
    the driver's ten-minute cache had expired."""
    from procon.emulators.stripe import StripeEmulator
    from procon.processors.stripe.driver import StripeDriver

    key = "rk_test_51ReuseFigureKey000000000000000000000"
    required = [
        "rak_charge_read",
        "rak_dispute_read",
        "rak_event_read",
        "rak_payout_read",
        "rak_webhook_write",
    ]
    fixture = {"accounts": [{"id": "acct_1ReuseFigure0001", "keys": [{"key": key, "permissions": required}]}]}
    clock = Clock()
    with StripeEmulator.from_fixture(fixture) as emulator:
        kube = MemoryKube(secrets={"shop-key": {"apiKey": key}})
        kube.spec["requiredPermissions"] = required
        driver = StripeDriver(emulator.base_url, max_network_retries=0, clock=clock)
        operator = Reconciler(
            kube,
            {PROCESSOR: driver},
            cluster_name="c1",
            draw=lambda: 0.5,
            recheck_interval=7200,
            clock=clock,
        )
        assert (await operator.reconcile("ns", "shop")).state == "ready"
        first_pass = emulator.key_uses(key)
        checks = int(7200 // DRIFT_INTERVAL)

        assert await drift_checks(operator, clock, checks) == {"ready"}

        # The first pass: account read, four probes (webhook access is verified by use), list, create.
        assert first_pass == 7
        # One listing per check, and once the account read and the four probes again.
        assert emulator.key_uses(key) - first_pass == checks + 5


def test_secret_versions_asked_afresh_are_pruned_from_the_oldest_only() -> None:
    """10,000 Secrets verified together: each verification looks at the versions it expires and
    the first one still within the window, not at every version remembered (which made a wave of
    verifications quadratic)."""
    from collections import OrderedDict

    from procon.reconcile.ports import CredentialsSecret
    from procon.reconcile.reconciler import FRESH_ANSWER_WINDOW

    class Counted(OrderedDict[tuple[str, str], float]):
        visited = 0

        def items(self):  # type: ignore[no-untyped-def, override]
            for item in super().items():
                Counted.visited += 1
                yield item

    clock = Clock()
    processor = FakeProcessor()
    operator = Reconciler(MemoryKube(), {PROCESSOR: processor}, cluster_name="c1", clock=clock)
    operator._asked_afresh = Counted()
    count = 10_000
    for n in range(count):
        secret = CredentialsSecret(opted_in=True, uid=f"uid-{n}", resource_version="1")
        operator._ask_afresh(processor, None, None, secret)  # type: ignore[arg-type]
        clock.now += 0.01
    assert processor.forgotten == count
    assert Counted.visited <= count, Counted.visited

    clock.now += FRESH_ANSWER_WINDOW
    Counted.visited = 0
    newest = CredentialsSecret(opted_in=True, uid="uid-new", resource_version="1")
    operator._ask_afresh(processor, None, None, newest)  # type: ignore[arg-type]
    assert operator.state_entries()["fresh_secret_versions"] == 1, "every expired version is gone"
    assert Counted.visited <= count + 1

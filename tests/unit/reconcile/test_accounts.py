"""The account layer between the reconciler and a driver: shared listings, and the account's budget.

Against the neutral fake processor and a fake clock: nothing here is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from procon.api.schema import Mode
from procon.processors.base import (
    Account,
    Credentials,
    ObservedWebhook,
    RateLimited,
    Target,
    TransientProcessorError,
)
from procon.processors.calls import CallAdmission, RateLimit, admitted
from procon.reconcile.accounts import AccountDriver, current_listing
from tests.unit.reconcile.doubles import KEY_FIELD, FakeChanges, FakeDesired, FakeProcessor, FakeWebhook

pytestmark = pytest.mark.anyio

TARGET = Target(mode=Mode.TEST)
KEY = Credentials({KEY_FIELD: "fake-key-1"})
OTHER_KEY = Credentials({KEY_FIELD: "fake-key-2"})
OWNER = {"procon.dev/name": "a"}
UNLIMITED = RateLimit(per_second=1000.0, burst=1000)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Clock:
    """Time that passes only when a test says so, or when someone sleeps."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class SlowProcessor(FakeProcessor):
    """Listings held until the test opens the gate; every request goes through admission."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    requests: int = 0
    # Status codes the next requests answer (429s), and the Retry-After they carry.
    answers: list[int] = field(default_factory=list)
    retry_after: str | None = None

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        async with admitted() as call:
            self.requests += 1
            await self.gate.wait()
            status = self.answers.pop(0) if self.answers else 200
            call.answered(status, {"Retry-After": self.retry_after} if self.retry_after else {})
        if status == 429:
            raise RateLimited("slow down", float(self.retry_after) if self.retry_after else None)
        return await super().list_webhooks(credentials, target, owner)


def layer(
    processor: FakeProcessor,
    clock: Clock,
    *,
    max_concurrent: int = 32,
    rate: RateLimit = UNLIMITED,
) -> AccountDriver:
    admission = CallAdmission(max_concurrent, clock=clock, sleep=clock.sleep)
    return AccountDriver("fake", processor, admission, lambda mode: rate, max_age=300.0, clock=clock)


def open_processor() -> SlowProcessor:
    processor = SlowProcessor(valid_keys={"fake-key-1", "fake-key-2"})
    processor.gate.set()
    return processor


async def test_connections_on_one_account_share_one_listing_per_interval() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    for _ in range(10):  # ten connections' drift checks within the interval
        await driver.list_webhooks(KEY, TARGET, OWNER)
        clock.now += 20
    assert processor.calls == ["list"]
    clock.now += 200  # the interval has passed since the listing
    await driver.list_webhooks(KEY, TARGET, OWNER)
    assert processor.calls == ["list", "list"]


async def test_concurrent_needs_of_one_listing_make_one_call() -> None:
    clock, processor = Clock(), SlowProcessor()
    driver = layer(processor, clock)
    needs = [asyncio.create_task(driver.list_webhooks(KEY, TARGET, OWNER)) for _ in range(20)]
    await asyncio.sleep(0.01)
    processor.gate.set()
    listings = await asyncio.gather(*needs)
    assert processor.calls == ["list"]
    assert all(listing == listings[0] for listing in listings)


async def test_a_caller_giving_up_does_not_cancel_the_others_listing() -> None:
    clock, processor = Clock(), SlowProcessor()
    driver = layer(processor, clock)
    first = asyncio.create_task(driver.list_webhooks(KEY, TARGET, OWNER))
    second = asyncio.create_task(driver.list_webhooks(KEY, TARGET, OWNER))
    await asyncio.sleep(0.01)
    first.cancel()
    processor.gate.set()
    assert await second == []
    assert processor.calls == ["list"]


async def test_a_listing_nobody_waits_for_any_more_is_cancelled() -> None:
    """An answer that never ends must not hold a request slot, nor the account's later needs."""
    clock, processor = Clock(), SlowProcessor()
    driver = layer(processor, clock, max_concurrent=1)
    stuck = [asyncio.create_task(driver.list_webhooks(KEY, TARGET, OWNER)) for _ in range(2)]
    await asyncio.sleep(0.01)
    for need in stuck:
        need.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)
    await asyncio.sleep(0.01)
    processor.gate.set()
    assert await asyncio.wait_for(driver.list_webhooks(KEY, TARGET, OWNER), 5) == []
    assert processor.requests == 2  # the slot came back, and a new listing was made


async def test_procons_own_writes_are_applied_to_the_listing_kept() -> None:
    """A create, update or delete that succeeded is put into the listing: the next connection of
    the account (an apply of many) acts on it without listing again."""
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == []
    desired = FakeDesired(url="https://hooks.example.com/a", events=("a",), metadata=OWNER)
    created = await driver.create_webhook(KEY, TARGET, desired, idempotency_key="k1")
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == [created.webhook]
    updated = await driver.update_webhook(KEY, TARGET, created.webhook.id, FakeChanges(events=("a", "b")))
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == [updated]
    await driver.delete_webhook(KEY, TARGET, created.webhook.id)
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == []
    assert processor.calls == ["list", "create", "update", "delete"]
    # What procon's writes left is what the processor holds.
    clock.now += 301
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == []
    assert processor.calls[-1] == "list"


async def test_a_failed_write_refreshes_the_listing_too() -> None:
    """A write that failed may have been carried out (an answer lost on the way back)."""
    clock, processor = Clock(), open_processor()
    processor.create_faults = ["lost"]
    driver = layer(processor, clock)
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == []
    desired = FakeDesired(url="https://hooks.example.com/a", events=("a",), metadata=OWNER)
    with pytest.raises(TransientProcessorError):
        await driver.create_webhook(KEY, TARGET, desired, idempotency_key="k1")
    assert len(await driver.list_webhooks(KEY, TARGET, OWNER)) == 1


async def test_a_listing_in_flight_while_a_write_ends_is_not_kept() -> None:
    clock, processor = Clock(), SlowProcessor()
    driver = layer(processor, clock)
    before = asyncio.create_task(driver.list_webhooks(KEY, TARGET, OWNER))
    await asyncio.sleep(0.01)
    processor.add(FakeWebhook(id="wh_new", url="https://x", events=(), metadata=OWNER))
    await driver.delete_webhook(KEY, TARGET, "wh_new")  # ends while the listing is in flight
    processor.gate.set()
    await before
    assert await driver.list_webhooks(KEY, TARGET, OWNER) == []
    # The fake counts a listing when it answers: the first answered after the delete.
    assert sorted(processor.calls) == ["delete", "list", "list"]


async def test_different_keys_to_one_account_never_share_a_listing() -> None:
    """A tenant naming another tenant's account with its own key sees only its own key's answer."""
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    await driver.list_webhooks(KEY, TARGET, OWNER)
    processor.valid_keys.discard("fake-key-2")  # this key is refused by the processor
    with pytest.raises(Exception, match="does not know this key"):
        await driver.list_webhooks(OTHER_KEY, TARGET, OWNER)
    assert processor.calls == ["list", "list"]


async def test_other_targets_of_one_key_are_listed_apart() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    await driver.list_webhooks(KEY, TARGET, OWNER)
    await driver.list_webhooks(KEY, Target(mode=Mode.LIVE), OWNER)
    assert processor.calls == ["list", "list"]


async def test_a_pass_acting_on_a_change_is_served_only_a_current_listing() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    await driver.list_webhooks(KEY, TARGET, OWNER)
    clock.now += 0.5
    with current_listing():
        await driver.list_webhooks(KEY, TARGET, OWNER)  # even half a second is too old
    await driver.list_webhooks(KEY, TARGET, OWNER)  # a drift check takes the shared one
    assert processor.calls == ["list", "list"]
    # Needs together still share the one in flight.
    processor.gate.clear()
    with current_listing():
        needs = [asyncio.create_task(driver.list_webhooks(KEY, TARGET, OWNER)) for _ in range(5)]
        await asyncio.sleep(0.01)
    processor.gate.set()
    await asyncio.gather(*needs)
    assert processor.calls == ["list", "list", "list"]


async def test_what_is_kept_goes_with_the_connections() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    await driver.verify(KEY, TARGET)
    await driver.list_webhooks(KEY, TARGET, OWNER)
    assert driver.cached_entries() == 1
    driver.forget(KEY, TARGET)
    assert driver.cached_entries() == 0
    assert processor.forgotten == 1
    # Credentials tried once and never again (a tenant cycling keys) are dropped after an interval.
    processor.valid_keys.update(f"k{n}" for n in range(5))
    for n in range(5):
        await driver.list_webhooks(Credentials({KEY_FIELD: f"k{n}"}), TARGET, OWNER)
    assert driver.cached_entries() == 5
    clock.now += 301
    await driver.list_webhooks(KEY, TARGET, OWNER)
    assert driver.cached_entries() == 1


async def test_the_fingerprint_does_not_show_the_key() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    await driver.list_webhooks(KEY, TARGET, OWNER)
    await driver.verify(OTHER_KEY, TARGET)
    shown = repr(driver._observations) + repr(driver._admission._buckets) + repr(driver._admission.__dict__)
    assert "fake-key" not in shown


# --- the account's budget --------------------------------------------------------------


async def test_a_429_pauses_the_whole_account_for_its_retry_after() -> None:
    clock, processor = Clock(), open_processor()
    processor.answers, processor.retry_after = [429], "7"
    driver = layer(processor, clock)
    await driver.verify(KEY, TARGET)  # the account is known: acct_1
    with pytest.raises(RateLimited) as refused:
        await driver.list_webhooks(KEY, TARGET, OWNER)
    assert refused.value.retry_after == 7.0
    assert driver.paused_accounts() == 1
    # Another key to the same account (another connection, another tenant) waits out the pause.
    started = clock.now
    await driver.verify(OTHER_KEY, TARGET)
    await driver.list_webhooks(OTHER_KEY, TARGET, OWNER)
    assert clock.now - started >= 7.0
    assert driver.paused_accounts() == 0


async def test_an_account_taken_from_a_connections_status_counts_as_verified() -> None:
    """A verification reused from the status asks the processor nothing; the account it names
    still gathers the requests of every key to it, as after a verification."""
    clock, processor = Clock(), open_processor()
    processor.answers, processor.retry_after = [429], "7"
    driver = layer(processor, clock)
    driver.remember_account(KEY, TARGET, Account("acct_1", Mode.TEST))
    with pytest.raises(RateLimited):
        await driver.list_webhooks(KEY, TARGET, OWNER)
    started = clock.now
    driver.remember_account(OTHER_KEY, TARGET, Account("acct_1", Mode.TEST))
    await driver.list_webhooks(OTHER_KEY, TARGET, OWNER)
    assert clock.now - started >= 7.0, "the other key to the account waits out its pause"
    assert processor.checks == []


async def test_a_pause_without_retry_after_grows_with_each_429_in_a_row() -> None:
    clock, processor = Clock(), open_processor()
    processor.answers = [429, 429, 429]
    driver = layer(processor, clock)
    pauses = []
    for _ in range(3):
        with pytest.raises(RateLimited), current_listing():
            await driver.list_webhooks(KEY, TARGET, OWNER)
        pauses.append(round(sum(clock.slept), 3))
        clock.slept.clear()
    # The first call went at once; each later one waited the pause the previous 429 set.
    assert pauses == [0.0, 1.0, 2.0]


async def test_other_accounts_are_not_paused() -> None:
    clock, processor = Clock(), open_processor()
    processor.answers, processor.retry_after = [429], "30"
    driver = layer(processor, clock)
    with pytest.raises(RateLimited):
        await driver.list_webhooks(KEY, TARGET, OWNER)
    started = clock.now
    # The same key on another target is another account: not paused.
    await driver.list_webhooks(KEY, Target(mode=Mode.LIVE), OWNER)
    assert clock.now == started


async def test_requests_keep_to_the_account_rate() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock, rate=RateLimit(per_second=10.0, burst=2))
    started = clock.now
    for _ in range(12):
        with current_listing():  # a pass acting on a change: lists every time
            await driver.list_webhooks(KEY, TARGET, OWNER)
        driver._wrote(KEY, TARGET)
    # Two at once, then ten more at a tenth of a second each.
    assert clock.now - started == pytest.approx(1.0)


async def test_requests_in_flight_are_bounded_across_accounts() -> None:
    clock, processor = Clock(), SlowProcessor(valid_keys={f"key-{n}" for n in range(10)})
    driver = layer(processor, clock, max_concurrent=3)
    needs = [
        asyncio.create_task(driver.list_webhooks(Credentials({KEY_FIELD: f"key-{n}"}), TARGET, OWNER))
        for n in range(10)
    ]
    await asyncio.sleep(0.01)
    assert processor.requests == 3  # ten accounts, three requests in flight
    processor.gate.set()
    await asyncio.gather(*needs)
    assert processor.requests == 10


async def test_a_pass_acting_on_a_change_is_served_a_listing_begun_after_the_change() -> None:
    """Connections changed together share one listing: each is served any listing begun after
    its change was seen, and none begun before."""
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    await driver.list_webhooks(KEY, TARGET, OWNER)  # at 1000.0
    clock.now += 1.0
    seen = clock.now  # the changes of three connections are seen at 1001.0
    clock.now += 0.5
    with current_listing(since=seen):
        await driver.list_webhooks(KEY, TARGET, OWNER)  # the listing of 1000.0 is from before it
    assert processor.calls == ["list", "list"]
    desired = FakeDesired(url="https://hooks.example.com/b", events=("a",), metadata=OWNER)
    created = await driver.create_webhook(KEY, TARGET, desired, idempotency_key="k2")
    clock.now += 0.5
    for _ in range(2):
        with current_listing(since=seen):
            assert await driver.list_webhooks(KEY, TARGET, OWNER) == [created.webhook]
    assert processor.calls == ["list", "list", "create"]
    with current_listing(since=clock.now):  # a change seen after that listing began
        await driver.list_webhooks(KEY, TARGET, OWNER)
    assert processor.calls == ["list", "list", "create", "list"]


async def test_concurrent_verifications_of_one_key_make_one_call() -> None:
    """The connections of an account coming up together verify its key once, not once each."""
    clock, processor = Clock(), open_processor()
    processor.granted = set(processor.known)
    driver = layer(processor, clock)
    required = sorted(processor.known)
    accounts = await asyncio.gather(*(driver.verify(KEY, TARGET) for _ in range(5)))
    reports = await asyncio.gather(*(driver.check_permissions(KEY, TARGET, required) for _ in range(5)))
    assert len(set(accounts)) == 1
    assert len(set(reports)) == 1
    assert processor.checks == ["verify", "permissions"]
    # Another key, or other permissions, are other questions; and a landed one is asked again
    # (the driver's own cache decides whether that costs a call).
    await asyncio.gather(
        driver.verify(OTHER_KEY, TARGET), driver.check_permissions(KEY, TARGET, required[:1])
    )
    await driver.verify(KEY, TARGET)
    assert processor.checks == ["verify", "permissions", "verify", "permissions", "verify"]


async def test_a_verification_nobody_waits_for_any_more_is_cancelled() -> None:
    clock, processor = Clock(), open_processor()
    driver = layer(processor, clock)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_verify(credentials: Credentials, target: Target) -> Account:
        started.set()
        await release.wait()
        return Account("acct_1", Mode.TEST)

    processor.verify = slow_verify  # type: ignore[method-assign]
    needs = [asyncio.create_task(driver.verify(KEY, TARGET)) for _ in range(3)]
    await started.wait()
    for need in needs:
        need.cancel()
    await asyncio.gather(*needs, return_exceptions=True)
    await asyncio.sleep(0)
    assert driver._verifications == {}
    release.set()
    assert await driver.verify(KEY, TARGET) == Account("acct_1", Mode.TEST)

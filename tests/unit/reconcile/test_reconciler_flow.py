"""The reconcile's order of writes, crash by crash, against in-memory ports.

The invariant after every completed pass: exactly one owned webhook, and the
published secret is its secret. After a crash at any step: the published
secret belongs to a live webhook (old pair or new pair), never a deleted one.
"""

from __future__ import annotations

import asyncio

import pytest

from procon.processors.calls import CallAdmission, RateLimit
from procon.reconcile.accounts import AccountDriver
from procon.reconcile.reconciler import PENDING_CREATE, Reconciler
from tests.unit.reconcile.doubles import PROCESSOR, Crash, FakeProcessor, FakeWebhook, FleetKube, MemoryKube

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_RUNNING: dict[int, Reconciler] = {}


def reconciler(kube: MemoryKube, processor: FakeProcessor) -> Reconciler:
    """The operator's reconciler: one per process, kept across passes until ``restart``."""
    return _RUNNING.setdefault(
        id(kube), Reconciler(kube, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5)
    )


def restart(kube: MemoryKube) -> None:
    """A new operator process: what it kept in memory is gone."""
    _RUNNING.pop(id(kube), None)


async def settle(kube: MemoryKube, processor: FakeProcessor) -> str:
    return (await reconciler(kube, processor).reconcile("ns", "shop")).state


def assert_invariant(kube: MemoryKube, processor: FakeProcessor) -> str:
    assert len(processor.owned()) == 1, processor.owned()
    (only,) = processor.owned()
    assert kube.published is not None
    assert kube.published["id"] == only
    assert kube.published["secret"] == processor.secret_of(only)
    return only


def assert_published_is_live(kube: MemoryKube, processor: FakeProcessor) -> None:
    if kube.published is not None and kube.published["id"]:
        assert kube.published["id"] in processor.webhooks
        assert kube.published["secret"] == processor.secret_of(str(kube.published["id"]))


async def ready(kube: MemoryKube, processor: FakeProcessor) -> str:
    assert await settle(kube, processor) == "ready"
    return assert_invariant(kube, processor)


async def test_saved_500_converges_in_the_same_pass_under_a_new_key() -> None:
    kube, processor = MemoryKube(), FakeProcessor(create_faults=["saved_error"])
    first = await ready(kube, processor)
    # The saved-error create left an endpoint whose secret nobody has: deleted, not waited out.
    assert first == "wh_2"
    assert len(set(processor.keys_used)) == 2
    assert kube.pending is None


async def test_saved_500_on_every_replay_never_waits_for_the_key_to_expire() -> None:
    kube, processor = (
        MemoryKube(),
        FakeProcessor(create_faults=["saved_error", "saved_error", "unsaved_error"]),
    )
    states = [await settle(kube, processor) for _ in range(3)]
    assert states[-1] == "ready", states
    assert_invariant(kube, processor)
    # Never a key sent again once spent.
    spent = [k for k, answer in processor.saved.items() if answer is None]
    assert all(processor.keys_used.count(k) == 1 for k in spent)


async def test_lost_answer_is_replayed_to_the_original_secret() -> None:
    kube, processor = MemoryKube(), FakeProcessor(create_faults=["lost"])
    assert await settle(kube, processor) == "retrying"
    assert kube.pending is not None  # the write-ahead record, in the signing Secret
    assert PENDING_CREATE not in kube.annotations
    assert await ready(kube, processor) == "wh_1"  # recovered, not replaced
    assert processor.keys_used == [processor.keys_used[0]] * 2


async def test_the_same_transient_error_twice_spends_the_key() -> None:
    kube, processor = MemoryKube(), FakeProcessor(create_faults=["unsaved_error", "unsaved_error"])
    assert await settle(kube, processor) == "retrying"
    message = kube.condition("Reconciling")["message"]
    assert message.endswith("retrying in 1s")  # the next attempt, as the status says it
    # The replay fails again: the key is dropped and a new one used in the same pass.
    assert await ready(kube, processor)
    assert len(set(processor.keys_used)) == 2


async def test_retry_delay_grows_and_is_reported_then_resets() -> None:
    kube, processor = MemoryKube(), FakeProcessor(create_faults=["unsaved_error"] * 6)
    run = Reconciler(kube, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5)
    delays = []
    for _ in range(3):
        outcome = await run.reconcile("ns", "shop")
        assert outcome.state == "retrying"
        delays.append(outcome.retry_in)
        assert kube.condition("Reconciling")["message"].endswith(f"retrying in {outcome.retry_in:.0f}s")
    assert delays == [0.75, 1.5, 3.0]


@pytest.mark.parametrize("change", ["url", "rotation"])
async def test_failed_replacement_create_leaves_the_old_pair_serving(change: str) -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    old = await ready(kube, processor)
    old_secret = kube.published and kube.published["secret"]
    if change == "url":
        kube.set_spec(url="https://hooks.example.com/b")
    else:
        kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    processor.create_faults = ["unsaved_error"]
    assert await settle(kube, processor) == "retrying"
    assert processor.owned() == [old]
    assert kube.published == {"id": old, "secret": old_secret}
    new = await ready(kube, processor)
    assert new != old
    if change == "rotation":
        assert kube.status["signingSecretRotation"] == "r1"
        assert await ready(kube, processor) == new  # done once


@pytest.mark.parametrize("change", ["url", "rotation"])
async def test_crash_between_create_and_publish_never_publishes_a_deleted_webhook(change: str) -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    old = await ready(kube, processor)
    if change == "url":
        kube.set_spec(url="https://hooks.example.com/b")
    else:
        kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    kube.crash_on_publish = 1
    with pytest.raises(Crash):
        await settle(kube, processor)
    restart(kube)
    # Old pair intact, the new webhook created but not published.
    assert kube.published is not None
    assert kube.published["id"] == old
    assert_published_is_live(kube, processor)
    assert len(processor.owned()) == 2
    new = await ready(kube, processor)  # the restart replays the create and finishes the swap
    assert new != old
    # The first create, the replacement's, and its one replay under the same key.
    assert len(processor.keys_used) == 3
    assert processor.keys_used[1] == processor.keys_used[2]
    if change == "rotation":
        assert kube.status["signingSecretRotation"] == "r1"
        assert await ready(kube, processor) == new  # not rotated a second time


async def test_replay_of_a_deleted_webhook_is_not_published_and_its_key_never_reused() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready(kube, processor)
    kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    kube.crash_on_publish = 1
    with pytest.raises(Crash):
        await settle(kube, processor)
    restart(kube)
    assert kube.pending is not None
    interrupted_key = kube.pending.key
    (created,) = [w for w in processor.owned() if w != (kube.published or {}).get("id")]
    del processor.webhooks[created]  # someone deletes it before the restart
    final = await ready(kube, processor)
    assert final != created
    assert processor.keys_used.count(interrupted_key) == 2  # the original and the one replay, never again
    assert kube.pending is None


async def test_a_signing_secret_hidden_from_its_watch_never_costs_the_webhook_it_publishes() -> None:
    """The Secret lost procon's label, so its watch (and a read that trusts the watch) takes it
    for absent. Before the plan deletes a webhook of the connection as unpublished, the Secret is
    read: the webhook it publishes stays, with its secret."""
    kube, processor = MemoryKube(), FakeProcessor()
    first = await ready(kube, processor)
    kube.hidden_from_watch = True
    restart(kube)  # a new process knows of the Secret only what the watch says
    assert await settle(kube, processor) == "ready"
    assert assert_invariant(kube, processor) == first
    assert kube.published_reads[-2:] == [False, True]  # trusted the watch, then read it


async def test_a_pass_that_starts_over_reads_the_connection_from_etcd() -> None:
    """The first read of a pass is served from the API server's watch cache; after a conflict the
    object changed in ways the watch may not have delivered, so the pass reads it as stored."""
    kube, processor = MemoryKube(stale_at_record_pending=1), FakeProcessor()
    await ready(kube, processor)
    assert kube.connection_reads[:2] == [False, True]


async def test_legacy_annotation_is_removed_and_not_trusted() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    kube.annotations[PENDING_CREATE] = '{"key":"procon-guessable","params":"x"}'
    await ready(kube, processor)
    assert PENDING_CREATE not in kube.annotations
    assert "procon-guessable" not in processor.keys_used


async def test_unchanged_drift_check_lists_once_and_writes_nothing() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready(kube, processor)
    processor.calls.clear()
    await ready(kube, processor)
    assert processor.calls == ["list"]


async def test_unchanged_fleet_on_one_account_lists_once_per_interval_and_writes_nothing() -> None:
    """Many connections with one key on one account, behind the account layer: a drift check of
    them all costs one listing, no write at the processor and none in Kubernetes."""
    fleet, processor = FleetKube(), FakeProcessor()
    names = [f"shop-{n}" for n in range(12)]
    for name in names:
        fleet.add(name)
    now = [1000.0]
    driver = AccountDriver(
        PROCESSOR,
        processor,
        CallAdmission(4),
        lambda mode: RateLimit(per_second=1000.0, burst=1000),
        max_age=300.0,
        clock=lambda: now[0],
    )
    operator = Reconciler(fleet, {PROCESSOR: driver}, cluster_name="c1", draw=lambda: 0.5)
    assert {(await operator.reconcile("ns", n)).state for n in names} == {"ready"}
    assert len(processor.owned()) == len(names)
    for kube in fleet.connections.values():
        kube.status_writes.clear()
        kube.events.clear()
    processor.calls.clear()

    for _ in range(3):  # three drift checks of every connection, within one interval
        outcomes = await asyncio.gather(*(operator.reconcile("ns", n, changed=False) for n in names))
        assert {o.state for o in outcomes} == {"ready"}
        now[0] += 60
    # The listing of the first pass, with procon's own creates applied, is not an interval old.
    assert processor.calls == []
    assert fleet.writes() == 0

    # A pass asked for by a change (its Secret touched, say) acts on the account as it is now.
    await operator.reconcile("ns", names[0])
    assert processor.calls == ["list"]
    assert fleet.writes() == 0
    processor.calls.clear()

    now[0] += 301  # the interval is over: one listing more, for all of them
    await asyncio.gather(*(operator.reconcile("ns", n, changed=False) for n in names))
    assert processor.calls == ["list"]
    assert fleet.writes() == 0


async def test_a_change_to_one_connection_of_a_fleet_is_acted_on_a_current_listing() -> None:
    """A spec change is not served the fleet's shared listing: what was changed at the processor
    meanwhile is seen at once (here: a webhook procon does not own, at the URL the spec moves to)."""
    fleet, processor = FleetKube(), FakeProcessor()
    for name in ("a", "b"):
        fleet.add(name)
    now = [1000.0]
    driver = AccountDriver(
        PROCESSOR,
        processor,
        CallAdmission(4),
        lambda mode: RateLimit(per_second=1000.0, burst=1000),
        clock=lambda: now[0],
    )
    operator = Reconciler(fleet, {PROCESSOR: driver}, cluster_name="c1", draw=lambda: 0.5)
    for name in ("a", "b"):
        assert (await operator.reconcile("ns", name)).state == "ready"
    await operator.reconcile("ns", "b", changed=False)  # a drift check: the listing is shared from here
    now[0] += 5
    processor.add(FakeWebhook(id="wh_foreign", url="https://hooks.example.com/new", events=(), metadata={}))
    fleet.connections["a"].set_spec(url="https://hooks.example.com/new")
    processor.calls.clear()
    assert (await operator.reconcile("ns", "a")).state == "stalled"
    assert fleet.connections["a"].condition("Stalled")["reason"] == "EndpointConflict"
    assert processor.calls == ["list"]  # listed afresh, and created nothing

"""The reconciler's decisions, pass by pass, against in-memory ports and a made-up processor.

No server: :class:`MemoryKube` stands for Kubernetes and :class:`FakeProcessor`
for a processor that is neither Stripe nor Checkout.com (its own payload
format field, its own permission names, either side choosing the signing
key). That the orchestration works against it unchanged is the proof that it
is processor-neutral and that the driver contract is enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from procon.api.v1alpha1 import FINALIZER
from procon.processors.base import Account, Credentials, ObservedWebhook, Target, TransientProcessorError
from procon.reconcile.ownership import Owner
from procon.reconcile.ports import Connection
from procon.reconcile.reconciler import CLEAN_UP_ATTEMPTS, Reconciler, _FirstReport
from tests.unit.reconcile.doubles import (
    PROCESSOR,
    WEBHOOK_PERMISSION,
    Crash,
    FakeProcessor,
    FakeWebhook,
    MemoryKube,
)

pytestmark = pytest.mark.anyio

URL = "https://hooks.example.com/a"
OWNER = Owner(cluster="c1", namespace="ns", name="shop", uid="uid-1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def operator(kube: MemoryKube, processor: FakeProcessor) -> Reconciler:
    return Reconciler(kube, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5)


async def cleaned_up(run: Reconciler) -> bool:
    """One pass over the connection being deleted; whether it ended with procon's part done."""
    return (await run.reconcile("ns", "shop")).state == "gone"


def owned_by_me(processor: FakeProcessor) -> list[str]:
    return sorted(i for i, (w, _) in processor.webhooks.items() if w.metadata.get("procon-uid") == "uid-1")


def assert_one_published(kube: MemoryKube, processor: FakeProcessor) -> str:
    (only,) = owned_by_me(processor)
    assert kube.published == {"id": only, "secret": processor.secret_of(only)}
    return only


async def wait_until(probe: Callable[[], bool], *, timeout: float) -> None:
    """Let the event loop run until ``probe`` holds; fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not probe():
            await asyncio.sleep(0.005)


# --- first sight --------------------------------------------------------------------------


async def test_a_first_pass_that_ends_at_once_writes_its_verdict_as_the_first_status() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    assert (await run.reconcile("ns", "shop")).state == "ready"
    # One status write, not a "Reconciling" one first: the verdict came within the delay.
    (only,) = kube.status_writes
    assert {c["type"]: c["status"] for c in only["conditions"]}["Ready"] == "True"
    assert kube.status["webhook"]["id"] == assert_one_published(kube, processor)
    assert kube.status["account"] == {"id": "acct_1", "mode": "test"}
    # One event says it all: the webhook made and where its signing secret went.
    (created,) = kube.events
    assert created[1] == "CreatedWebhookEndpoint"
    assert "published its signing secret to Secret shop-webhook" in created[2]


class SlowToVerify(FakeProcessor):
    """A processor that answers the verification only when let."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        await self.answer.wait()
        return await super().verify(credentials, target)


async def test_a_slow_first_pass_reports_reconciling_before_any_processor_answer() -> None:
    kube, processor = MemoryKube(), SlowToVerify()
    run = Reconciler(
        kube, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5, first_report_delay=0.01
    )
    pass_ = asyncio.create_task(run.reconcile("ns", "shop"))
    # Never "no status" for long: a GitOps tool would read that as healthy.
    await wait_until(lambda: bool(kube.status_writes), timeout=5)
    first = {c["type"]: c for c in kube.status_writes[0]["conditions"]}
    assert first["Ready"]["status"] == "False"
    assert first["Reconciling"]["status"] == "True"
    assert first["Stalled"]["status"] == "False"
    assert processor.checks == []  # nothing answered yet
    processor.answer.set()
    assert (await asyncio.wait_for(pass_, 5)).state == "ready"
    assert len(kube.status_writes) == 2
    assert kube.condition("Ready")["status"] == "True"
    assert_one_published(kube, processor)


async def test_a_pass_that_ends_while_the_first_status_is_written_writes_after_it() -> None:
    """The delayed report and the pass's own write never land out of order."""
    kube, processor = MemoryKube(), SlowToVerify()
    first_write_started, let_first_write_finish = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    write_status = kube.write_status

    async def slow_first_write(connection: Connection, status: Mapping[str, Any]) -> Connection:
        number = calls.count("begun")
        calls.append("begun")
        if number == 0:  # only the first write is held
            first_write_started.set()
            await let_first_write_finish.wait()
        written = await write_status(connection, status)
        calls.append(f"done {number}")
        return written

    kube.write_status = slow_first_write  # type: ignore[method-assign]
    run = Reconciler(
        kube, {PROCESSOR: processor}, cluster_name="c1", draw=lambda: 0.5, first_report_delay=0.01
    )
    pass_ = asyncio.create_task(run.reconcile("ns", "shop"))
    await asyncio.wait_for(first_write_started.wait(), 5)
    processor.answer.set()  # the pass now ends while the first write is in flight
    await wait_until(lambda: processor.webhooks != {}, timeout=5)
    for _ in range(20):  # let the pass run as far as it can: to its own status write
        await asyncio.sleep(0)
    assert calls == ["begun"], "the pass's write waits for the first one"
    let_first_write_finish.set()
    assert (await asyncio.wait_for(pass_, 5)).state == "ready"
    assert calls == ["begun", "done 0", "begun", "done 1"]
    assert [{c["type"]: c["status"] for c in w["conditions"]}["Ready"] for w in kube.status_writes] == [
        "False",
        "True",
    ]


async def test_a_first_status_write_without_end_does_not_hold_the_pass_past_its_deadline() -> None:
    kube, processor = MemoryKube(), SlowToVerify()
    never = asyncio.Event()
    write_status = kube.write_status
    held: list[bool] = []

    async def hanging_first_write(connection: Connection, status: Mapping[str, Any]) -> Connection:
        if not held:
            held.append(True)
            await never.wait()  # an API server that never answers
        return await write_status(connection, status)

    kube.write_status = hanging_first_write  # type: ignore[method-assign]
    run = Reconciler(
        kube,
        {PROCESSOR: processor},
        cluster_name="c1",
        draw=lambda: 0.5,
        first_report_delay=0.01,
        reconcile_timeout=0.3,
    )
    outcome = await asyncio.wait_for(run.reconcile("ns", "shop"), 5)
    # The deadline ended both the pass (the processor never answered) and the hanging write;
    # the failure is reported as ever.
    assert outcome.state == "retrying"
    assert kube.condition("Ready")["reason"] == "ReconcileTimedOut"
    assert run.state_entries()["first_reports"] == 0


# --- credentials -------------------------------------------------------------------------


async def test_invalid_credentials_stall_without_touching_webhooks_and_warn_once() -> None:
    kube, processor = MemoryKube(), FakeProcessor(valid_keys=set())
    run = operator(kube, processor)
    assert (await run.reconcile("ns", "shop")).state == "stalled"
    assert kube.condition("CredentialsValid")["reason"] == "CredentialsInvalid"
    assert kube.condition("Stalled")["status"] == "True"
    assert kube.condition("WebhookReady")["reason"] == "WaitingForCredentials"
    assert processor.calls == []
    assert (await run.reconcile("ns", "shop")).state == "stalled"
    assert kube.reasons().count("CredentialsInvalid") == 1  # one Warning per new reason, not per pass
    processor.valid_keys.add("fake-key-1")  # the key is fixed at the processor
    assert (await run.reconcile("ns", "shop")).state == "ready"
    assert_one_published(kube, processor)


async def test_missing_credentials_secret_waits_without_stalling() -> None:
    kube, processor = MemoryKube(secrets={}), FakeProcessor()
    outcome = await operator(kube, processor).reconcile("ns", "shop")
    # In GitOps the Secret often lands after the connection; its arrival wakes the reconcile.
    assert outcome.state == "progressing"
    assert kube.condition("CredentialsValid")["reason"] == "CredentialsSecretNotFound"
    assert kube.condition("Stalled")["status"] == "False"
    assert processor.calls == []


async def test_a_credentials_key_the_driver_cannot_find_is_reported_by_name() -> None:
    kube, processor = MemoryKube(secrets={"shop-key": {"apiKey": "x"}}), FakeProcessor()
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "stalled"
    condition = kube.condition("CredentialsValid")
    assert condition["reason"] == "CredentialsKeyMissing"
    assert "'token'" in condition["message"]


# --- permissions -------------------------------------------------------------------------


async def test_missing_permissions_are_named_with_the_drivers_advice_then_recovered() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    kube.spec["requiredPermissions"] = [WEBHOOK_PERMISSION, "payouts.read"]
    run = operator(kube, processor)
    assert (await run.reconcile("ns", "shop")).state == "stalled"
    condition = kube.condition("PermissionsValid")
    assert condition["reason"] == "InsufficientPermissions"
    assert "payouts.read" in condition["message"]
    assert "Ask the account's owner for them" in condition["message"]
    assert kube.status["missingPermissions"] == ["payouts.read"]
    assert processor.webhooks == {}
    processor.granted.add("payouts.read")
    assert (await run.reconcile("ns", "shop")).state == "ready"
    assert kube.status["missingPermissions"] == []


async def test_unknown_permission_names_use_the_drivers_noun() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    kube.spec["requiredPermissions"] = [WEBHOOK_PERMISSION, "rak_charge_read"]
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "stalled"
    condition = kube.condition("PermissionsValid")
    assert condition["reason"] == "UnknownPermission"
    assert f"not a {PROCESSOR} grant procon knows: rak_charge_read" in condition["message"]


async def test_a_webhook_call_refused_for_a_permission_names_it_as_missing() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    kube.spec["requiredPermissions"] = []
    processor.granted.discard(WEBHOOK_PERMISSION)
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "stalled"
    assert kube.condition("WebhookReady")["reason"] == "InsufficientPermissions"
    assert kube.status["missingPermissions"] == [WEBHOOK_PERMISSION]


# --- create, crash recovery --------------------------------------------------------------


async def test_crash_after_a_processor_chosen_create_is_recovered_by_replaying_its_key() -> None:
    kube, processor = MemoryKube(crash_on_publish=1), FakeProcessor()
    with pytest.raises(Crash):
        await operator(kube, processor).reconcile("ns", "shop")
    assert kube.published is None
    assert kube.pending is not None  # the write-ahead record survives the crash
    (created,) = processor.owned()
    # A new process: nothing kept in memory.
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "ready"
    assert assert_one_published(kube, processor) == created  # the same webhook, its secret recovered
    assert processor.keys_used == [processor.keys_used[0]] * 2
    assert kube.pending is None


async def test_crash_after_an_operator_chosen_create_is_adopted_with_the_published_key() -> None:
    kube, processor = MemoryKube(crash_on_publish=1), FakeProcessor(signing_secret_source="operator")
    with pytest.raises(Crash):
        await operator(kube, processor).reconcile("ns", "shop")
    # The key was written before the create (write-ahead), the webhook id never.
    assert kube.published is not None
    assert not kube.published["id"]
    key = kube.published["secret"]
    (created,) = processor.owned()
    assert processor.secret_of(created) == key
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "ready"
    assert assert_one_published(kube, processor) == created
    assert kube.published["secret"] == key
    assert "AdoptedWebhookEndpoint" in kube.reasons()
    assert processor.calls.count("create") == 1


async def test_rotation_where_procon_chooses_the_key_switches_the_live_webhook() -> None:
    kube, processor = MemoryKube(), FakeProcessor(signing_secret_source="operator")
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    webhook = assert_one_published(kube, processor)
    old_key = processor.secret_of(webhook)
    kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    assert (await run.reconcile("ns", "shop")).state == "ready"
    assert assert_one_published(kube, processor) == webhook  # rolled in place, not replaced
    assert processor.secret_of(webhook) != old_key
    assert kube.status["signingSecretRotation"] == "r1"


# --- drift -------------------------------------------------------------------------------


async def test_fields_changed_outside_procon_are_restored_in_place_as_drift() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    webhook = assert_one_published(kube, processor)
    processor.tamper(webhook, events=("everything.else",), enabled=False, status="disabled")
    assert (await run.reconcile("ns", "shop")).state == "ready"
    restored, _ = processor.webhooks[webhook]
    assert restored.events == ("charge.succeeded",)
    assert restored.enabled
    (_, reason, message) = kube.events[-1]
    assert reason == "DriftCorrected"
    assert message == f"webhook {webhook} was changed outside procon; restored events, enabled"
    assert assert_one_published(kube, processor) == webhook


async def test_a_webhook_deleted_outside_procon_is_recreated_as_drift() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    gone = assert_one_published(kube, processor)
    del processor.webhooks[gone]
    assert (await run.reconcile("ns", "shop")).state == "ready"
    new = assert_one_published(kube, processor)
    assert new != gone
    assert any(
        reason == "DriftCorrected" and f"webhook {gone} was deleted or changed outside procon" in message
        for _, reason, message in kube.events
    )


async def test_a_field_the_driver_cannot_change_in_place_is_replaced_make_before_break() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    old = assert_one_published(kube, processor)
    processor.format = "v2"  # the processor's own immutable field: only its comparison knows it
    assert (await run.reconcile("ns", "shop")).state == "ready"
    new = assert_one_published(kube, processor)
    assert new != old
    assert processor.webhooks[new][0].format == "v2"
    # The new one was published before the old one went.
    assert any(
        reason == "DeletedWebhookEndpoint"
        and f"replaced: its payload format changed; its replacement {new} is published" in message
        for _, reason, message in kube.events
    )


# --- conflict ----------------------------------------------------------------------------


async def test_a_foreign_webhook_at_the_url_blocks_the_create_and_is_never_touched() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    processor.add(FakeWebhook(id="wh_theirs", url=URL, events=("x",), metadata={}))
    run = operator(kube, processor)
    assert (await run.reconcile("ns", "shop")).state == "stalled"
    assert kube.condition("WebhookReady")["reason"] == "EndpointConflict"
    assert "wh_theirs" in kube.condition("WebhookReady")["message"]
    assert processor.owned() == ["wh_theirs"]
    assert "create" not in processor.calls
    kube.spec["webhook"]["conflictPolicy"] = "Replace"
    assert (await run.reconcile("ns", "shop")).state == "ready"
    assert "wh_theirs" not in processor.webhooks
    assert_one_published(kube, processor)


async def test_another_connections_webhook_at_the_url_is_never_replaced() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    other = Owner(cluster="c1", namespace="team-b", name="pay", uid="uid-9")
    processor.add(FakeWebhook(id="wh_sibling", url=URL, events=("x",), metadata=other.metadata()))
    kube.spec["webhook"]["conflictPolicy"] = "Replace"
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "stalled"
    assert "team-b/pay" in kube.condition("WebhookReady")["message"]
    assert processor.owned() == ["wh_sibling"]


# --- deletion ----------------------------------------------------------------------------


async def test_deletion_under_delete_removes_only_owned_webhooks_and_forgets_the_connection() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    mine = assert_one_published(kube, processor)
    processor.add(
        FakeWebhook(id="wh_theirs", url="https://elsewhere.example.com", events=("x",), metadata={})
    )
    kube.deleting = True
    forgotten = processor.forgotten
    assert await cleaned_up(run)
    assert processor.owned() == ["wh_theirs"]
    assert f"deleted webhook {mine}: connection deleted" in [m for _, _, m in kube.events]
    assert processor.forgotten == forgotten + 1  # the driver's caches for the connection's key are dropped
    assert run.state_entries()["remembered_credentials"] == 0


async def test_deletion_under_delete_cleans_up_with_remembered_credentials_once_the_secret_is_gone() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    kube.secrets.clear()  # a namespace deletion takes the Secret in no set order
    kube.deleting = True
    assert await cleaned_up(run)
    assert processor.owned() == []


async def test_deletion_under_orphan_leaves_the_published_webhook_and_its_secret() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    published = assert_one_published(kube, processor)
    # A crash leftover beside it: owned, never published.
    leftover = FakeWebhook(id="wh_left", url=URL, events=("charge.succeeded",), metadata=OWNER.metadata())
    processor.add(leftover)
    kube.spec["deletionPolicy"] = "Orphan"
    kube.deleting = True
    assert await cleaned_up(run)
    assert processor.owned() == [published]
    assert kube.released  # the Secret is let go before the garbage collector follows its owner
    (_, reason, message) = kube.events[-1]
    assert reason == "OrphanedWebhookEndpoint"
    assert f"left webhook {published} at the processor" in message


async def test_a_new_connection_is_held_by_the_finalizer_before_anything_is_done_at_the_processor() -> None:
    kube, processor = MemoryKube(finalizers=[]), FakeProcessor()
    webhook_calls_when_held: list[list[str]] = []
    hold = kube.hold

    async def slow_hold(connection: Connection) -> Connection:
        await asyncio.sleep(0.05)  # the API server slower than the verification
        held = await hold(connection)
        webhook_calls_when_held.append(list(processor.calls))
        return held

    kube.hold = slow_hold  # type: ignore[method-assign]
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "ready"
    assert webhook_calls_when_held == [[]], "the webhook step waited for the finalizer"
    assert processor.checks, "the verification went on meanwhile"
    assert kube.finalizers == [FINALIZER]
    assert_one_published(kube, processor)
    await operator(kube, processor).reconcile("ns", "shop")
    assert kube.finalizer_writes == ["hold"], "held once, not on every pass"


async def test_a_connection_whose_finalizer_cannot_be_added_gets_no_webhook() -> None:
    kube, processor = MemoryKube(finalizers=[]), FakeProcessor()

    async def refused(connection: Connection) -> Connection:
        raise RuntimeError("403: patch processorconnections is forbidden")

    kube.hold = refused  # type: ignore[method-assign]
    outcome = await operator(kube, processor).reconcile("ns", "shop")
    assert outcome.state == "retrying"
    assert processor.owned() == []
    assert "create" not in processor.calls


async def test_a_pass_stalled_before_the_webhook_step_still_leaves_the_connection_held() -> None:
    kube, processor = MemoryKube(finalizers=[]), FakeProcessor()
    kube.secrets["shop-key"] = {"token": "revoked"}
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "stalled"
    assert kube.finalizers == [FINALIZER]


async def test_a_paused_connection_is_held_too_so_its_signing_secret_is_kept_when_it_goes() -> None:
    kube, processor = MemoryKube(finalizers=[]), FakeProcessor()
    kube.annotations["procon.dev/paused"] = "true"
    assert (await operator(kube, processor).reconcile("ns", "shop")).state == "paused"
    assert kube.finalizers == [FINALIZER]
    assert processor.calls == []
    assert processor.checks == []


async def test_a_deletion_before_procon_held_the_connection_costs_nothing() -> None:
    kube, processor = MemoryKube(finalizers=["example.com/other"]), FakeProcessor()
    kube.deleting = True
    outcome = await operator(kube, processor).reconcile("ns", "shop")
    assert (outcome.state, outcome.absent) == ("gone", True)
    assert kube.finalizers == ["example.com/other"]
    assert (processor.calls, kube.finalizer_writes, kube.events) == ([], [], [])


async def test_the_release_keeps_another_controllers_finalizer() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    kube.finalizers.insert(0, "example.com/other")
    kube.deleting = True
    outcome = await run.reconcile("ns", "shop")
    assert (outcome.state, outcome.absent) == ("gone", True)
    assert kube.finalizers == ["example.com/other"]
    assert processor.owned() == []


async def test_a_create_recorded_but_never_published_is_cleaned_up_at_the_processor() -> None:
    # The operator died after the create, before the publish and the status: the write-ahead
    # record is all that says a webhook may exist, and the deletion finds it.
    kube, processor = MemoryKube(), FakeProcessor()
    kube.crash_on_publish = 1
    run = operator(kube, processor)
    with pytest.raises(Crash):
        await run.reconcile("ns", "shop")
    assert kube.pending is not None
    assert not kube.status.get("webhook")
    assert len(owned_by_me(processor)) == 1
    kube.deleting = True
    assert await cleaned_up(operator(kube, processor))
    assert owned_by_me(processor) == []


async def test_a_clean_up_that_fails_is_retried_and_the_last_attempt_releases_with_a_warning() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    (webhook,) = processor.owned()

    async def unavailable(*_: Any, **__: Any) -> list[ObservedWebhook]:
        raise TransientProcessorError("the processor answered 503")

    processor.list_webhooks = unavailable  # type: ignore[method-assign]
    kube.deleting = True
    delays = []
    for _ in range(CLEAN_UP_ATTEMPTS - 1):
        outcome = await run.reconcile("ns", "shop")
        assert outcome.state == "retrying"
        assert outcome.retry_in is not None
        delays.append(outcome.retry_in)
        assert kube.finalizers == [FINALIZER], "held while the clean-up may still succeed"
    assert delays == sorted(delays), "backing off"
    assert delays[0] < delays[-1]
    assert "WebhookCleanupFailed" not in kube.reasons()
    outcome = await run.reconcile("ns", "shop")
    assert (outcome.state, outcome.absent) == ("gone", True)
    assert kube.finalizers == []
    (warning,) = [m for t, r, m in kube.events if r == "WebhookCleanupFailed"]
    assert "it may remain at the processor" in warning
    assert processor.owned() == [webhook]
    process_wide = {"driver_cache", "redacted_values"}  # other tests' entries may be there too
    kept = {
        store: count for store, count in run.state_entries().items() if count and store not in process_wide
    }
    assert kept == {}, "nothing is kept about a connection released"


async def test_a_clean_up_that_succeeds_after_failing_starts_the_count_afresh_for_the_next() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")
    listing = processor.list_webhooks
    failures = [TransientProcessorError("503")] * (CLEAN_UP_ATTEMPTS - 2)

    async def flaky(*args: Any, **kwargs: Any) -> list[ObservedWebhook]:
        if failures:
            raise failures.pop()
        return await listing(*args, **kwargs)

    processor.list_webhooks = flaky  # type: ignore[method-assign]
    kube.deleting = True
    states = [(await run.reconcile("ns", "shop")).state for _ in range(CLEAN_UP_ATTEMPTS - 1)]
    assert states == ["retrying"] * (CLEAN_UP_ATTEMPTS - 2) + ["gone"]
    assert processor.owned() == []
    assert kube.finalizers == []
    assert "WebhookCleanupFailed" not in kube.reasons()
    assert run.state_entries()["clean_up_failures"] == 0


async def test_a_clean_up_that_fails_unexpectedly_gives_the_errors_kind_not_its_text() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    run = operator(kube, processor)
    await run.reconcile("ns", "shop")

    async def broken(*_: Any, **__: Any) -> list[ObservedWebhook]:
        raise ValueError("fake-key-1 was in the answer")

    processor.list_webhooks = broken  # type: ignore[method-assign]
    kube.deleting = True
    states = [(await run.reconcile("ns", "shop")).state for _ in range(CLEAN_UP_ATTEMPTS)]
    assert states == ["retrying"] * (CLEAN_UP_ATTEMPTS - 1) + ["gone"]
    (warning,) = [m for t, r, m in kube.events if r == "WebhookCleanupFailed"]
    assert "ValueError" in warning
    assert "fake-key-1" not in warning


def test_a_first_report_asked_for_twice_is_written_once() -> None:
    # Steps of a first pass may each ask for it at once (a rotation marked, a start-over after a
    # conflict): one "at work" status is enough.
    writes: list[str] = []

    async def write() -> None:
        writes.append("Reconciling")

    async def main() -> None:
        report = _FirstReport(write, 60.0, deadline=asyncio.get_running_loop().time() + 60, name="ns/shop")
        await report.settle(write=True)
        await report.settle(write=True)
        await report.settle()

    asyncio.run(main())
    assert writes == ["Reconciling"]

"""A restart with everything Ready asks the processor nothing it already answered, and writes nothing.

The status records which credentials Secret (UID and resourceVersion, never its data) was
verified for which generation and when; a fresh process (a new Reconciler, no driver cache) takes
the verification over from it instead of verifying and probing again, until the Secret or the spec
changes or the recheck interval has passed since it was made.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procon.reconcile.reconciler import RECHECK_SPREAD, Reconciler, recheck_age
from tests.unit.reconcile.doubles import PROCESSOR, FakeProcessor, MemoryKube

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def process(kube: MemoryKube, processor: FakeProcessor, clock: Clock | None = None) -> Reconciler:
    """A freshly started operator process: nothing in memory."""
    return Reconciler(
        kube,
        {PROCESSOR: processor},
        cluster_name="c1",
        draw=lambda: 0.5,
        recheck_interval=86400,
        clock=clock or Clock(),
    )


async def ready_then_restarted(kube: MemoryKube, processor: FakeProcessor) -> None:
    assert (await process(kube, processor).reconcile("ns", "shop")).state == "ready"
    assert kube.status["verifiedCredentials"] == {
        "secretUid": "uid-shop-key",
        "secretResourceVersion": "1",
        "generation": 1,
        "verifiedAt": "1970-01-01T00:00:00Z",
    }
    processor.calls.clear()
    processor.checks.clear()
    kube.status_writes.clear()
    kube.events.clear()


async def test_a_restart_with_a_ready_connection_does_not_verify_probe_or_write() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    before = dict(kube.status)

    assert (await process(kube, processor).reconcile("ns", "shop")).state == "ready"

    assert processor.checks == [], "no verification, no permission probe"
    assert processor.calls == ["list"], "only the drift check's look at the account"
    assert kube.status_writes == [], "nothing changed, nothing written"
    assert kube.events == []
    assert kube.status == before


async def test_a_changed_credentials_secret_is_verified_again() -> None:
    kube, processor = MemoryKube(), FakeProcessor(valid_keys={"fake-key-1", "fake-key-2"})
    await ready_then_restarted(kube, processor)
    kube.change_secret("shop-key", {"token": "fake-key-2"})

    assert (await process(kube, processor).reconcile("ns", "shop")).state == "ready"

    assert processor.checks == ["verify", "permissions"]
    assert kube.status["verifiedCredentials"]["secretResourceVersion"] == "2"


async def test_a_secret_change_that_revokes_the_key_is_caught() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.change_secret("shop-key", {"token": "a-key-nobody-knows"})

    assert (await process(kube, processor).reconcile("ns", "shop")).state == "stalled"
    assert kube.condition("CredentialsValid")["status"] == "False"
    assert kube.status.get("verifiedCredentials") is None, "a failed verification leaves no record"


async def test_a_spec_change_is_verified_again() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.spec["requiredPermissions"] = ["hooks.write", "payouts.read"]  # not granted
    kube.generation += 1

    assert (await process(kube, processor).reconcile("ns", "shop")).state == "stalled"
    assert processor.checks == ["verify", "permissions"]
    assert kube.condition("PermissionsValid")["reason"] == "InsufficientPermissions"


async def test_a_record_is_trusted_for_the_connections_recheck_age_after_it_was_made() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    age = recheck_age(86400, kube.uid)
    assert 86400 * (1 - RECHECK_SPREAD) <= age <= 86400
    clock = Clock()
    clock.now = age - 1  # the record was made at 0, by the process before
    restarted = process(kube, processor, clock)

    assert (await restarted.reconcile("ns", "shop")).state == "ready"
    assert processor.checks == []

    clock.now = age + 1
    assert (await restarted.reconcile("ns", "shop")).state == "ready"
    assert processor.checks == ["verify", "permissions"]
    assert len(kube.status_writes) == 1, "the same answer: only the time of the verification is new"
    made = datetime.fromtimestamp(clock.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert kube.status["verifiedCredentials"]["verifiedAt"] == made


def test_a_fleet_verified_together_is_rechecked_spread_over_the_last_tenth_of_the_interval() -> None:
    """Each connection's recheck age comes from its UID: the same in every process (a restart does
    not move it), different between connections, within 90% to 100% of the interval."""
    ages = [recheck_age(86400, f"uid-{n}") for n in range(2000)]
    assert all(86400 * (1 - RECHECK_SPREAD) <= age <= 86400 for age in ages)
    tenths = {int((age - 86400 * (1 - RECHECK_SPREAD)) // 864) for age in ages}
    assert tenths == set(range(10)), "spread over the whole window, not bunched"
    assert ages == [recheck_age(86400, f"uid-{n}") for n in range(2000)]


async def test_a_record_of_an_earlier_procon_without_a_time_is_verified_again() -> None:
    """A record without a time (written before procon recorded one) is not trusted: counting it as
    made at the start that found it, restarts less than an interval apart would never recheck it.
    Each connection is verified once after the upgrade, and its record then has a time."""
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.status["verifiedCredentials"] = {"secretUid": "uid-shop-key", "secretResourceVersion": "1"}
    clock = Clock()
    clock.now = 5_000_000.0
    restarted = process(kube, processor, clock)

    assert (await restarted.reconcile("ns", "shop")).state == "ready"
    assert processor.checks == ["verify", "permissions"]
    assert kube.status["verifiedCredentials"]["generation"] == 1
    assert "verifiedAt" in kube.status["verifiedCredentials"]

    processor.checks.clear()
    assert (await process(kube, processor, clock).reconcile("ns", "shop")).state == "ready"
    assert processor.checks == [], "the next start takes the new record over"


async def test_a_record_dated_ahead_of_the_clock_is_not_trusted() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.status["verifiedCredentials"] = {
        **kube.status["verifiedCredentials"],
        "verifiedAt": "2999-01-01T00:00:00Z",
    }

    await process(kube, processor).reconcile("ns", "shop")
    assert processor.checks == ["verify", "permissions"]


async def test_a_generation_whose_verification_failed_transiently_is_verified_after_a_restart() -> None:
    """A new generation whose verification never finished: the status carries the earlier verdict
    over, at the new generation, beside the earlier record; the record names its own generation,
    so the permissions the new generation asks for are checked."""
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.spec["requiredPermissions"] = ["hooks.write", "payouts.read"]  # not granted
    kube.generation += 1
    failing = process(kube, processor)
    original = processor.verify

    async def unavailable(*args: object) -> object:
        from procon.processors.base import TransientProcessorError

        raise TransientProcessorError("the processor is unavailable")

    processor.verify = unavailable  # type: ignore[method-assign]
    assert (await failing.reconcile("ns", "shop")).state == "retrying"
    assert kube.status["observedGeneration"] == 2
    processor.verify = original  # type: ignore[method-assign]

    assert (await process(kube, processor).reconcile("ns", "shop")).state == "stalled"
    assert processor.checks == ["verify", "permissions"]
    assert kube.condition("PermissionsValid")["reason"] == "InsufficientPermissions"


async def test_a_record_from_a_status_without_permissions_granted_is_not_trusted() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    for condition in kube.status["conditions"]:
        if condition["type"] == "PermissionsValid":
            condition["status"] = "Unknown"

    await process(kube, processor).reconcile("ns", "shop")
    assert processor.checks == ["verify", "permissions"]


async def test_after_a_start_a_settled_connection_is_looked_at_in_kubernetes_only() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    restarted = process(kube, processor)

    assert await restarted.left_unfinished("ns", "shop") is False
    assert processor.calls == []
    assert processor.checks == []
    assert kube.status_writes == []


async def test_a_create_interrupted_by_the_last_process_is_found_after_a_start() -> None:
    from procon.reconcile.ports import PendingCreate

    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.pending = PendingCreate(key="procon-k", params="p")  # the write-ahead record of a create

    assert await process(kube, processor).left_unfinished("ns", "shop") is True


async def test_a_rotation_not_carried_out_is_found_after_a_start() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.annotations["procon.dev/rotate-signing-secret"] = "r1"

    assert await process(kube, processor).left_unfinished("ns", "shop") is True


async def test_a_connection_released_meanwhile_is_none() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.deleting = True
    kube.finalizers.clear()

    assert await process(kube, processor).left_unfinished("ns", "shop") is None


async def test_a_deletion_begun_meanwhile_is_its_clean_up_left_to_do() -> None:
    """Found by review: a deletion seen while the first look read the connection was dropped with
    the key, and nothing woke it again; procon's finalizer held it Terminating."""
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.deleting = True

    assert await process(kube, processor).left_unfinished("ns", "shop") is True


async def test_a_replacement_published_but_not_yet_in_status_is_found_after_a_start() -> None:
    """Found by the crash harness: a rotation killed while retiring the old webhook, after the new
    one was published and the rotation marked, before status named the new webhook."""
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    assert kube.published is not None
    kube.published = {**kube.published, "id": "wh-the-replacement"}

    assert await process(kube, processor).left_unfinished("ns", "shop") is True


async def test_a_signing_secret_gone_while_the_operator_was_down_is_found_after_a_start() -> None:
    kube, processor = MemoryKube(), FakeProcessor()
    await ready_then_restarted(kube, processor)
    kube.published = None

    assert await process(kube, processor).left_unfinished("ns", "shop") is True

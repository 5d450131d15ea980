"""The reconcile's order of writes, crash by crash, against in-memory ports.

The invariant after every completed pass: exactly one owned webhook, and the
published secret is its secret. After a crash at any step: the published
secret belongs to a live webhook (old pair or new pair), never a deleted one.
"""

from __future__ import annotations

import pytest

from procon.reconcile.reconciler import PENDING_CREATE, Reconciler
from tests.unit.reconcile.doubles import Crash, FakeStripe, MemoryKube

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_RUNNING: dict[int, Reconciler] = {}


def reconciler(kube: MemoryKube, stripe: FakeStripe) -> Reconciler:
    """The operator's reconciler: one per process, kept across passes until ``restart``."""
    return _RUNNING.setdefault(
        id(kube), Reconciler(kube, {"stripe": stripe}, cluster_name="c1", draw=lambda: 0.5)
    )


def restart(kube: MemoryKube) -> None:
    """A new operator process: what it kept in memory is gone."""
    _RUNNING.pop(id(kube), None)


async def settle(kube: MemoryKube, stripe: FakeStripe) -> str:
    return (await reconciler(kube, stripe).reconcile("ns", "shop")).state


def assert_invariant(kube: MemoryKube, stripe: FakeStripe) -> str:
    assert len(stripe.owned()) == 1, stripe.owned()
    (only,) = stripe.owned()
    assert kube.published is not None
    assert kube.published["id"] == only
    assert kube.published["secret"] == stripe.secret_of(only)
    return only


def assert_published_is_live(kube: MemoryKube, stripe: FakeStripe) -> None:
    if kube.published is not None and kube.published["id"]:
        assert kube.published["id"] in stripe.webhooks
        assert kube.published["secret"] == stripe.secret_of(str(kube.published["id"]))


async def ready(kube: MemoryKube, stripe: FakeStripe) -> str:
    assert await settle(kube, stripe) == "ready"
    return assert_invariant(kube, stripe)


async def test_saved_500_converges_in_the_same_pass_under_a_new_key() -> None:
    kube, stripe = MemoryKube(), FakeStripe(create_faults=["saved_error"])
    first = await ready(kube, stripe)
    # The saved-error create left an endpoint whose secret nobody has: deleted, not waited out.
    assert first == "we_2"
    assert len(set(stripe.keys_used)) == 2
    assert kube.pending is None


async def test_saved_500_on_every_replay_never_waits_for_the_key_to_expire() -> None:
    kube, stripe = MemoryKube(), FakeStripe(create_faults=["saved_error", "saved_error", "unsaved_error"])
    states = [await settle(kube, stripe) for _ in range(3)]
    assert states[-1] == "ready", states
    assert_invariant(kube, stripe)
    # Never a key sent again once spent.
    spent = [k for k, answer in stripe.saved.items() if answer is None]
    assert all(stripe.keys_used.count(k) == 1 for k in spent)


async def test_lost_answer_is_replayed_to_the_original_secret() -> None:
    kube, stripe = MemoryKube(), FakeStripe(create_faults=["lost"])
    assert await settle(kube, stripe) == "retrying"
    assert kube.pending is not None  # the write-ahead record, in the signing Secret
    assert PENDING_CREATE not in kube.annotations
    assert await ready(kube, stripe) == "we_1"  # recovered, not replaced
    assert stripe.keys_used == [stripe.keys_used[0]] * 2


async def test_the_same_transient_error_twice_spends_the_key() -> None:
    kube, stripe = MemoryKube(), FakeStripe(create_faults=["unsaved_error", "unsaved_error"])
    assert await settle(kube, stripe) == "retrying"
    message = kube.condition("Reconciling")["message"]
    assert message.endswith("retrying in 1s")  # the next attempt, as the status says it
    # The replay fails again: the key is dropped and a new one used in the same pass.
    assert await ready(kube, stripe)
    assert len(set(stripe.keys_used)) == 2


async def test_retry_delay_grows_and_is_reported_then_resets() -> None:
    kube, stripe = MemoryKube(), FakeStripe(create_faults=["unsaved_error"] * 6)
    run = Reconciler(kube, {"stripe": stripe}, cluster_name="c1", draw=lambda: 0.5)
    delays = []
    for _ in range(3):
        outcome = await run.reconcile("ns", "shop")
        assert outcome.state == "retrying"
        delays.append(outcome.retry_in)
        assert kube.condition("Reconciling")["message"].endswith(f"retrying in {outcome.retry_in:.0f}s")
    assert delays == [0.75, 1.5, 3.0]


@pytest.mark.parametrize("change", ["url", "rotation"])
async def test_failed_replacement_create_leaves_the_old_pair_serving(change: str) -> None:
    kube, stripe = MemoryKube(), FakeStripe()
    old = await ready(kube, stripe)
    old_secret = kube.published and kube.published["secret"]
    if change == "url":
        kube.set_spec(url="https://hooks.example.com/b")
    else:
        kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    stripe.create_faults = ["unsaved_error"]
    assert await settle(kube, stripe) == "retrying"
    assert stripe.owned() == [old]
    assert kube.published == {"id": old, "secret": old_secret}
    new = await ready(kube, stripe)
    assert new != old
    if change == "rotation":
        assert kube.status["signingSecretRotation"] == "r1"
        assert await ready(kube, stripe) == new  # done once


@pytest.mark.parametrize("change", ["url", "rotation"])
async def test_crash_between_create_and_publish_never_publishes_a_deleted_webhook(change: str) -> None:
    kube, stripe = MemoryKube(), FakeStripe()
    old = await ready(kube, stripe)
    if change == "url":
        kube.set_spec(url="https://hooks.example.com/b")
    else:
        kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    kube.crash_on_publish = 1
    with pytest.raises(Crash):
        await settle(kube, stripe)
    restart(kube)
    # Old pair intact, the new webhook created but not published.
    assert kube.published is not None
    assert kube.published["id"] == old
    assert_published_is_live(kube, stripe)
    assert len(stripe.owned()) == 2
    new = await ready(kube, stripe)  # the restart replays the create and finishes the swap
    assert new != old
    # The first create, the replacement's, and its one replay under the same key.
    assert len(stripe.keys_used) == 3
    assert stripe.keys_used[1] == stripe.keys_used[2]
    if change == "rotation":
        assert kube.status["signingSecretRotation"] == "r1"
        assert await ready(kube, stripe) == new  # not rotated a second time


async def test_replay_of_a_deleted_webhook_is_not_published_and_its_key_never_reused() -> None:
    kube, stripe = MemoryKube(), FakeStripe()
    await ready(kube, stripe)
    kube.annotations["procon.dev/rotate-signing-secret"] = "r1"
    kube.crash_on_publish = 1
    with pytest.raises(Crash):
        await settle(kube, stripe)
    restart(kube)
    assert kube.pending is not None
    interrupted_key = kube.pending.key
    (created,) = [w for w in stripe.owned() if w != (kube.published or {}).get("id")]
    del stripe.webhooks[created]  # someone deletes it before the restart
    final = await ready(kube, stripe)
    assert final != created
    assert stripe.keys_used.count(interrupted_key) == 2  # the original and the one replay, never again
    assert kube.pending is None


async def test_legacy_annotation_is_removed_and_not_trusted() -> None:
    kube, stripe = MemoryKube(), FakeStripe()
    kube.annotations[PENDING_CREATE] = '{"key":"procon-guessable","params":"x"}'
    await ready(kube, stripe)
    assert PENDING_CREATE not in kube.annotations
    assert "procon-guessable" not in stripe.keys_used


async def test_unchanged_drift_check_lists_once_and_writes_nothing() -> None:
    kube, stripe = MemoryKube(), FakeStripe()
    await ready(kube, stripe)
    stripe.calls.clear()
    await ready(kube, stripe)
    assert stripe.calls == ["list"]

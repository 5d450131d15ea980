"""Edges of the work queue and its handlers: a change before the first look after a start, a
connection found gone, a hung credentials read, a key queued while held."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from procon import metrics
from procon.k8s import handlers
from procon.k8s.credentials_cache import CredentialsCache
from procon.k8s.workqueue import Priority
from procon.reconcile.reconciler import Outcome
from procon.settings import OperatorSettings


class FakeKube:
    def forget(self, namespace: str, name: str) -> None:
        pass

    def state_entries(self) -> dict[str, int]:
        return {}


class FakeReconciler:
    def __init__(self, outcome: Outcome | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.outcome = outcome or Outcome("ready", "stripe")

    async def left_unfinished(self, namespace: str, name: str) -> bool | None:
        self.calls.append(("left_unfinished", None))
        return False

    async def reconcile(self, namespace: str, name: str, *, changed: bool, changed_since: Any) -> Outcome:
        self.calls.append(("reconcile", changed))
        metrics.connection_conditions(namespace, name, "stripe", [{"type": "Ready", "status": "True"}])
        return self.outcome

    def forget(self, namespace: str, name: str) -> None:
        pass

    def state_entries(self) -> dict[str, int]:
        return {}


def runtime(reconciler: FakeReconciler) -> handlers.Runtime:
    return handlers.Runtime(settings=OperatorSettings(), kube=FakeKube(), reconciler=reconciler)  # type: ignore[arg-type]


def test_a_change_seen_before_the_first_pass_after_a_start_is_reconciled() -> None:
    asyncio.run(_test_a_change_seen_before_the_first_pass_after_a_start_is_reconciled())


async def _test_a_change_seen_before_the_first_pass_after_a_start_is_reconciled() -> None:
    """A connection first seen settled, then edited (or its Secret changed) before its first pass."""
    reconciler = FakeReconciler()
    rt = runtime(reconciler)
    key = ("ns", "c")
    rt.resuming.add(key)
    rt.queue.add(key, Priority.DRIFT)
    rt.wake("ns", "c", lambda: True)  # the spec edit / Secret change, while the key waits
    got = await rt.queue.get()
    await handlers._reconcile_key(rt, got)
    rt.queue.done(got)
    assert ("reconcile", True) in reconciler.calls, reconciler.calls


def test_a_connection_found_gone_leaves_nothing_behind() -> None:
    asyncio.run(_test_a_connection_found_gone_leaves_nothing_behind())


async def _test_a_connection_found_gone_leaves_nothing_behind() -> None:
    """No DELETED event (the watch listed afresh after the deletion, or DELETED came mid-pass)."""
    reconciler = FakeReconciler(Outcome("gone", absent=True))
    rt = runtime(reconciler)
    key = ("ns", "gone")
    metrics.connection_conditions("ns", "gone", "stripe", [{"type": "Ready", "status": "True"}])
    before = metrics.connection_records()
    rt.queue.add(key, Priority.CHANGE)
    got = await rt.queue.get()
    await handlers._reconcile_key(rt, got)
    rt.queue.done(got)
    assert metrics.connection_records() == before - 1
    assert not rt.queue.is_known(key)


def test_a_recreated_connection_queued_while_its_predecessor_is_found_gone_is_reconciled() -> None:
    asyncio.run(_test_a_recreated_connection_queued_while_its_predecessor_is_found_gone_is_reconciled())


async def _test_a_recreated_connection_queued_while_its_predecessor_is_found_gone_is_reconciled() -> None:
    reconciler = FakeReconciler(Outcome("gone"))
    rt = runtime(reconciler)
    key = ("ns", "again")
    rt.queue.add(key, Priority.CHANGE)
    got = await rt.queue.get()
    rt.wake("ns", "again", lambda: True)  # ADDED of the new object while the worker has the key
    await handlers._reconcile_key(rt, got)
    rt.queue.done(got)
    assert rt.queue.is_known(key)


def test_a_hung_credentials_read_is_not_kept_when_every_reader_gave_up() -> None:
    asyncio.run(_test_a_hung_credentials_read_is_not_kept_when_every_reader_gave_up())


async def _test_a_hung_credentials_read_is_not_kept_when_every_reader_gave_up() -> None:
    cache = CredentialsCache(lambda key: True)
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cache.read(("ns", "s"), hang), 0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cache.read(("ns", "s"), hang), 0.05)
    assert calls == 2, "the retry joined the hung read"

"""The liveness probe fails when the watch on connections has died, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import kopf
import pytest
from kubernetes_asyncio import client

from procon.k8s.handlers import Runtime, watch_is_live
from procon.k8s.kube import Kube
from procon.k8s.liveness import UnwatchedChanges
from procon.reconcile.reconciler import Reconciler
from procon.settings import OperatorSettings

KEY = ("shop", "stripe")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_read_ahead_of_the_watch_starts_the_clock_and_delivery_stops_it() -> None:
    clock = Clock()
    changes = UnwatchedChanges(clock)
    changes.delivered(KEY, "10")
    changes.read(KEY, "10")
    assert changes.longest() == 0.0  # the read saw what the watch delivered

    changes.read(KEY, "11")  # a change the watch has not delivered yet
    clock.now += 30
    changes.read(KEY, "12")  # still behind: the clock keeps its start
    clock.now += 30
    assert changes.longest() == 60.0

    changes.delivered(KEY, "12")
    assert changes.longest() == 0.0


def test_the_oldest_undelivered_change_counts_and_forget_drops_it() -> None:
    clock = Clock()
    changes = UnwatchedChanges(clock)
    changes.read(("a", "x"), "1")
    clock.now += 50
    changes.read(("b", "y"), "1")
    clock.now += 10
    assert changes.longest() == 60.0
    changes.forget(("a", "x"))
    assert changes.longest() == 10.0


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A Runtime as start-up builds it; nothing here talks to an API server."""
    loop = asyncio.new_event_loop()

    async def api_client() -> client.ApiClient:
        return client.ApiClient()  # its HTTP session wants a running loop

    api = loop.run_until_complete(api_client())
    kube = Kube(api)
    yield Runtime(
        settings=OperatorSettings(watch_quiet_seconds=120),
        kube=kube,
        reconciler=Reconciler(kube, {}, cluster_name="test"),
    )
    loop.run_until_complete(api.close())
    loop.close()


def test_probe_passes_in_a_quiet_cluster_and_fails_on_a_dead_watch(runtime: Runtime) -> None:
    clock = Clock()
    runtime.kube.unwatched = UnwatchedChanges(clock)
    memo = kopf.Memo(runtime=runtime)

    clock.now += 3600  # an hour with no change at all: live
    assert watch_is_live(memo=memo)["unwatched_for"] == 0.0

    runtime.kube.unwatched.read(KEY, "7")  # a read found a change ...
    clock.now += 119
    assert watch_is_live(memo=memo)["unwatched_for"] == 119.0  # ... not yet overdue
    clock.now += 2
    with pytest.raises(kopf.PermanentError, match="unseen by the watch for 121s"):
        watch_is_live(memo=memo)  # ... the watch never delivered it: restart

    runtime.kube.watched(*KEY, "7")  # had it come, the probe would pass again
    assert watch_is_live(memo=memo)["unwatched_for"] == 0.0

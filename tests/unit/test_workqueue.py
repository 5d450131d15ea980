"""The work queue: priorities, one worker per key, re-runs, schedules (procon.k8s.workqueue)."""

from __future__ import annotations

import asyncio

import pytest

from procon.k8s.workqueue import Key, Priority, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(name: str) -> Key:
    return ("shop", name)


def take_ready(queue: WorkQueue) -> list[str]:
    """Every key ready now, in the order workers would get them (each done at once)."""

    async def drain() -> list[str]:
        names = []
        while queue.ready_count():
            got = await asyncio.wait_for(queue.get(), 1)
            names.append(got[1])
            queue.done(got)
        return names

    return asyncio.run(drain())


def test_a_new_connection_is_served_before_due_drift_checks() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock)
    for number in range(100):
        queue.add_after(key(f"old-{number}"), 10, Priority.DRIFT)
    queue.add_after(key("flaky"), 5, Priority.RETRY)
    clock.now += 60  # every drift check and the retry are due
    queue.add(key("new"), Priority.CHANGE)

    async def first_two() -> list[str]:
        got = [await queue.get(), await queue.get()]
        return [k[1] for k in got]

    assert asyncio.run(first_two()) == ["new", "flaky"]


def test_keys_of_one_priority_come_first_in_first_out() -> None:
    queue = WorkQueue(FakeClock())
    for name in ("a", "b", "c"):
        queue.add(key(name), Priority.DRIFT)
    queue.add(key("d"), Priority.RETRY)
    assert take_ready(queue) == ["d", "a", "b", "c"]


def test_a_key_is_queued_once_and_a_more_urgent_add_raises_it() -> None:
    queue = WorkQueue(FakeClock())
    queue.add(key("a"), Priority.DRIFT)
    queue.add(key("b"), Priority.DRIFT)
    queue.add(key("b"), Priority.CHANGE)  # a spec change of a connection waiting for its drift check
    queue.add(key("a"), Priority.DRIFT)
    assert take_ready(queue) == ["b", "a"]


def test_a_key_is_never_handed_to_two_workers_and_runs_again_after() -> None:
    queue = WorkQueue(FakeClock())

    async def scenario() -> list[str]:
        queue.add(key("a"), Priority.CHANGE)
        first = await queue.get()
        queue.add(key("a"), Priority.CHANGE)  # changed while the first worker has it
        queue.add(key("b"), Priority.DRIFT)
        second = await asyncio.wait_for(queue.get(), 1)
        assert second == key("b"), "the other worker gets another key, never the busy one"
        queue.done(second)
        waiting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0.01)
        assert not waiting.done(), "a is not handed out while its first run goes on"
        queue.done(first)
        third = await asyncio.wait_for(waiting, 1)
        queue.done(third)
        return [first[1], second[1], third[1]]

    assert asyncio.run(scenario()) == ["a", "b", "a"]


def test_many_workers_never_overlap_on_a_key() -> None:
    queue = WorkQueue()
    running: set[Key] = set()
    overlaps: list[Key] = []
    runs = {key(str(n)): 0 for n in range(5)}

    async def worker() -> None:
        while True:
            got = await queue.get()
            if got in running:
                overlaps.append(got)
            running.add(got)
            await asyncio.sleep(0.001)
            running.discard(got)
            runs[got] += 1
            queue.done(got)

    async def scenario() -> None:
        workers = [asyncio.ensure_future(worker()) for _ in range(8)]
        for _ in range(50):
            for k in runs:
                queue.add(k, Priority.CHANGE)
            await asyncio.sleep(0.0005)
        while queue.ready_count() or queue.state_entries()["active"] or queue.state_entries()["dirty"]:
            await asyncio.sleep(0.005)
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    asyncio.run(scenario())
    assert overlaps == []
    assert all(count >= 1 for count in runs.values())


def test_schedules_come_due_in_time_order_and_the_earlier_wins() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock)
    queue.add_after(key("late"), 30, Priority.DRIFT)
    queue.add_after(key("soon"), 10, Priority.DRIFT)
    queue.add_after(key("late"), 20, Priority.DRIFT)  # earlier: replaces 30
    queue.add_after(key("soon"), 50, Priority.DRIFT)  # later: ignored
    clock.now += 15
    assert take_ready(queue) == ["soon"]
    clock.now += 10
    assert take_ready(queue) == ["late"]
    assert queue.state_entries() == {"queued": 0, "active": 0, "dirty": 0, "scheduled": 0}


def test_a_change_supersedes_a_scheduled_check() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock)
    queue.add_after(key("a"), 300, Priority.DRIFT)
    queue.add(key("a"), Priority.CHANGE)
    assert take_ready(queue) == ["a"]
    clock.now += 400
    assert take_ready(queue) == [], "the old schedule is gone: the run schedules its own next one"


def test_a_waiting_worker_wakes_when_a_schedule_comes_due() -> None:
    queue = WorkQueue()

    async def scenario() -> Key:
        queue.add_after(key("a"), 0.05, Priority.RETRY)
        return await asyncio.wait_for(queue.get(), 2)

    assert asyncio.run(scenario()) == key("a")


def test_forgetting_a_key_leaves_nothing_behind() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock)
    queue.add(key("queued"), Priority.CHANGE)
    queue.add_after(key("scheduled"), 10, Priority.DRIFT)

    async def scenario() -> None:
        queue.add(key("busy"), Priority.CHANGE)
        busy = await queue.get()
        assert busy == key("queued")
        queue.add(key("queued"), Priority.CHANGE)  # queued again while active: dirty
        for name in ("queued", "scheduled", "busy"):
            queue.forget(key(name))
        queue.done(busy)

    asyncio.run(scenario())
    clock.now += 60
    assert take_ready(queue) == []
    assert queue.state_entries() == {"queued": 0, "active": 0, "dirty": 0, "scheduled": 0}
    assert not queue.is_known(key("queued"))


@pytest.mark.parametrize("count", [10_000])
def test_ten_thousand_scheduled_keys_cost_little(count: int) -> None:
    """Per key the queue holds one schedule; rescheduling does not pile up stale timers."""
    clock = FakeClock()
    queue = WorkQueue(clock)
    for round_ in range(5):
        for n in range(count):
            queue.add_after(key(str(n)), 100 - round_, Priority.DRIFT)
        clock.now += 0.001
        queue._release_due()
    assert queue.state_entries()["scheduled"] == count
    assert len(queue._timers) <= 2 * count + 64

"""Leader election's decisions, on an in-memory Lease with the API server's optimistic concurrency
(the integration tests run it on the real one): who may take the lease when, renewal against
its deadline, release, the watchdog, settings and shard selectors."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from procon.k8s.leader_election import (
    LeaderElectionSettings,
    LeaderElector,
    LeadershipLost,
    LeaseConflict,
    LeaseRecord,
    ObservedLease,
    Watchdog,
    held_by_another,
    micro_time,
)
from procon.k8s.sharding import default_lease_name, shard_selector, validate_selector
from procon.k8s.supervisor import kopf_settings, standby_health
from procon.settings import SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class MemoryLease:
    """One Lease: a write carrying an old resourceVersion is refused, as the API server refuses it."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.writes = 0
        self.failing = False

    def _check(self) -> None:
        if self.failing:
            raise OSError("the API server is unreachable")

    async def get(self) -> ObservedLease | None:
        self._check()
        return None if self.record is None else ObservedLease(self.record, str(self.version))

    async def create(self, record: LeaseRecord) -> ObservedLease:
        self._check()
        if self.record is not None:
            raise LeaseConflict
        return self._write(record)

    async def update(self, record: LeaseRecord, resource_version: str) -> ObservedLease:
        self._check()
        if resource_version != str(self.version):
            raise LeaseConflict
        return self._write(record)

    def _write(self, record: LeaseRecord) -> ObservedLease:
        self.record, self.version, self.writes = record, self.version + 1, self.writes + 1
        return ObservedLease(record, str(self.version))


SETTINGS = LeaderElectionSettings(
    enabled=True, namespace="procon-system", lease_duration=15, renew_deadline=10
)


def elector(lease: MemoryLease, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(lease, replace(SETTINGS, identity=identity), clock=clock)


def attempt(candidate: LeaderElector) -> bool:
    return asyncio.run(candidate.try_acquire_or_renew())


def test_the_first_candidate_creates_the_lease_and_leads() -> None:
    lease, clock = MemoryLease(), Clock()
    first = elector(lease, clock, "pod-a_1")
    assert attempt(first)
    assert first.leading
    assert lease.record is not None
    assert lease.record.holder == "pod-a_1"
    assert lease.record.lease_duration_seconds == 15
    assert lease.record.transitions == 0


def test_a_standby_waits_a_full_lease_duration_of_an_unchanged_record_on_its_own_clock() -> None:
    lease, clock = MemoryLease(), Clock()
    leader, standby = elector(lease, clock, "pod-a_1"), elector(lease, clock, "pod-b_2")
    assert attempt(leader)
    assert not attempt(standby)  # first sight of the record: its clock starts now
    clock.now += 14.9
    assert not attempt(standby)
    clock.now += 0.2
    assert attempt(standby)
    assert lease.record is not None
    assert lease.record.holder == "pod-b_2"
    assert lease.record.transitions == 1


def test_a_renewal_seen_by_the_standby_restarts_its_wait() -> None:
    lease, clock = MemoryLease(), Clock()
    leader, standby = elector(lease, clock, "pod-a_1"), elector(lease, clock, "pod-b_2")
    assert attempt(leader)
    assert not attempt(standby)
    for _ in range(10):
        clock.now += 2
        assert attempt(leader)  # renews
        assert not attempt(standby)
    clock.now += 14
    assert not attempt(standby)


def test_of_two_candidates_racing_for_an_expired_lease_one_wins() -> None:
    lease, clock = MemoryLease(), Clock()
    assert attempt(elector(lease, clock, "gone_0"))
    b, c = elector(lease, clock, "pod-b_2"), elector(lease, clock, "pod-c_3")
    assert not attempt(b)
    assert not attempt(c)
    clock.now += 16

    async def race() -> list[bool]:
        return list(await asyncio.gather(b.try_acquire_or_renew(), c.try_acquire_or_renew()))

    assert sorted(asyncio.run(race())) == [False, True]
    assert lease.record is not None
    assert lease.record.holder in ("pod-b_2", "pod-c_3")


def test_a_released_lease_is_taken_at_once() -> None:
    lease, clock = MemoryLease(), Clock()
    leader, standby = elector(lease, clock, "pod-a_1"), elector(lease, clock, "pod-b_2")
    assert attempt(leader)
    assert not attempt(standby)
    asyncio.run(leader.release())
    assert not leader.leading
    assert lease.record is not None
    assert lease.record.holder == ""
    assert attempt(standby)


def test_release_leaves_a_lease_someone_else_holds_alone() -> None:
    lease, clock = MemoryLease(), Clock()
    leader = elector(lease, clock, "pod-a_1")
    assert attempt(leader)
    assert lease.record is not None
    lease.record = replace(lease.record, holder="pod-b_2")
    writes = lease.writes
    asyncio.run(leader.release())
    assert lease.writes == writes


def test_a_leader_that_sees_another_holder_has_lost() -> None:
    lease, clock = MemoryLease(), Clock()
    leader = elector(lease, clock, "pod-a_1")
    assert attempt(leader)
    assert lease.record is not None
    lease.record = replace(lease.record, holder="pod-b_2", renew_time=micro_time(datetime.now(UTC)))
    with pytest.raises(LeadershipLost, match="pod-b_2"):
        attempt(leader)


def test_renewal_gives_up_at_the_renew_deadline_counted_from_when_the_last_renewal_was_sent() -> None:
    lease = MemoryLease()
    settings = replace(SETTINGS, identity="pod-a_1", lease_duration=1.5, renew_deadline=0.6, retry_period=0.1)
    leader = LeaderElector(lease, settings)
    assert attempt(leader)
    lease.failing = True

    async def renew() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(LeadershipLost, match="no renewal succeeded"):
            await asyncio.wait_for(leader.keep_renewing(), timeout=5)
        return loop.time() - started

    took = asyncio.run(renew())
    assert 0.5 <= took <= 1.0, took


def test_renewal_goes_on_while_the_lease_can_be_written() -> None:
    lease = MemoryLease()
    settings = replace(
        SETTINGS, identity="pod-a_1", lease_duration=1.5, renew_deadline=0.6, retry_period=0.05
    )
    leader = LeaderElector(lease, settings)
    assert attempt(leader)

    async def renew_for_a_while() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(leader.keep_renewing(), timeout=1.0)

    asyncio.run(renew_for_a_while())
    assert lease.writes >= 10


def test_the_watchdog_fires_when_the_deadline_passes_even_with_the_event_loop_stuck() -> None:
    fired = threading.Event()
    clock = Clock()
    deadline: list[float | None] = [clock.now + 10]
    dog = Watchdog(lambda: deadline[0], on_expired=lambda _: fired.set(), clock=clock, interval=0.01)
    dog.start()
    try:
        assert not fired.wait(0.1)
        clock.now += 11
        assert fired.wait(2)
    finally:
        dog.stop()
    quiet = threading.Event()
    idle = Watchdog(lambda: None, on_expired=lambda _: quiet.set(), clock=clock, interval=0.01)
    idle.start()
    try:
        assert not quiet.wait(0.1)  # not leading: nothing to enforce
    finally:
        idle.stop()


def test_held_by_another_uses_the_records_own_duration() -> None:
    record = LeaseRecord(holder="pod-a_1", lease_duration_seconds=1)
    assert held_by_another(record, "pod-b_2", observed_at=100, now=100.5, default=15)
    assert not held_by_another(record, "pod-b_2", observed_at=100, now=101.5, default=15)
    assert not held_by_another(record, "pod-a_1", observed_at=100, now=100.5, default=15)
    assert not held_by_another(LeaseRecord(), "pod-b_2", observed_at=100, now=100, default=15)


def test_micro_time_has_six_fractional_digits_in_utc() -> None:
    assert micro_time(datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)) == "2026-12-01T16:00:00.000000Z"


def test_a_standby_is_healthy_while_its_election_loop_runs() -> None:
    clock = Clock()
    standby = elector(MemoryLease(), clock, "pod-b_2")
    healthy, body = standby_health(standby, clock.now + 5)
    assert healthy
    assert body["leader"] is False
    healthy, _ = standby_health(standby, clock.now + 3 * (10 + 2) + 1)
    assert not healthy


# ------------------------------------------------------------------ settings


def test_leader_election_is_off_unless_asked_for() -> None:
    assert not LeaderElectionSettings.from_env({}).enabled


def test_leader_election_settings_from_the_environment() -> None:
    settings = LeaderElectionSettings.from_env(
        {
            "PROCON_LEADER_ELECTION": "true",
            "PROCON_LEADER_ELECTION_NAMESPACE": "procon-system",
            "PROCON_LEADER_ELECTION_LEASE_DURATION": "30",
            "PROCON_LEADER_ELECTION_RENEW_DEADLINE": "20",
            "PROCON_LEADER_ELECTION_RETRY_PERIOD": "4",
            "PROCON_POD_NAME": "procon-7d9f-x2x",
        }
    )
    assert settings.enabled
    assert settings.lease == "procon-system/procon"
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (30, 20, 4)
    pod, _, suffix = settings.identity.rpartition("_")
    assert pod == "procon-7d9f-x2x"
    assert len(suffix) == 12
    again = LeaderElectionSettings.from_env({"PROCON_POD_NAME": "procon-7d9f-x2x"})
    assert again.identity != settings.identity  # a restarted container is a new candidate


def test_the_defaults_are_client_gos() -> None:
    settings = LeaderElectionSettings.from_env(
        {"PROCON_LEADER_ELECTION": "1", "PROCON_LEADER_ELECTION_NAMESPACE": "ns"}
    )
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15, 10, 2)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROCON_LEADER_ELECTION": "maybe"}, "true or false"),
        ({"PROCON_LEADER_ELECTION_RETRY_PERIOD": "-1"}, "positive"),
        ({"PROCON_LEADER_ELECTION_LEASE_DURATION": "10"}, "longer than PROCON_LEADER_ELECTION_RENEW"),
        ({"PROCON_LEADER_ELECTION_RETRY_PERIOD": "9"}, "1.2 x"),
        ({"PROCON_LEADER_ELECTION_LEASE_NAME": "Procon_Lease"}, "DNS subdomain"),
        ({"PROCON_LEADER_ELECTION_NAMESPACE": ""}, "namespace"),
    ],
)
def test_unusable_leader_election_settings_are_refused(env: dict[str, str], message: str) -> None:
    full = {"PROCON_LEADER_ELECTION": "true", "PROCON_LEADER_ELECTION_NAMESPACE": "ns", **env}
    with pytest.raises(SettingsError, match=message):
        LeaderElectionSettings.from_env(full)


# ------------------------------------------------------------------ shards


@pytest.mark.parametrize(
    "selector",
    [
        "procon.dev/shard=shard1",
        "procon.dev/shard==shard1",
        "procon.dev/shard!=shard1",
        "!procon.dev/shard",
        "procon.dev/shard",
        "procon.dev/shard in (shard1, shard2)",
        "procon.dev/shard notin (shard1),team=payments",
        "tier=",
    ],
)
def test_label_selectors_are_taken(selector: str) -> None:
    assert validate_selector(f" {selector} ") == selector


@pytest.mark.parametrize(
    "selector", ["procon.dev/shard=shard 1", "=shard1", "procon.dev/shard in shard1", "a,,b", "x=" + "y" * 64]
)
def test_what_is_no_label_selector_is_refused(selector: str) -> None:
    with pytest.raises(SettingsError, match="PROCON_SHARD_SELECTOR"):
        shard_selector({"PROCON_SHARD_SELECTOR": selector})


def test_each_shard_gets_a_lease_of_its_own() -> None:
    assert default_lease_name("") == "procon"
    names = {
        default_lease_name("procon.dev/shard=shard1"),
        default_lease_name("procon.dev/shard=shard2"),
        default_lease_name("!procon.dev/shard"),
        default_lease_name("", ["team-a"]),
    }
    assert len(names) == 4
    assert all(name.startswith("procon-") for name in names)
    settings = LeaderElectionSettings.from_env(
        {"PROCON_LEADER_ELECTION": "true", "PROCON_LEADER_ELECTION_NAMESPACE": "ns"},
        shard_selector="procon.dev/shard=shard1",
    )
    assert settings.lease_name == default_lease_name("procon.dev/shard=shard1")


def test_a_shard_selector_reaches_kopfs_watch_of_connections_only() -> None:
    settings = kopf_settings("procon.dev/shard=shard1")
    selectors = dict(settings.watching.label_selectors.items())
    assert list(selectors.values()) == ["procon.dev/shard=shard1"]
    assert not dict(kopf_settings("").watching.label_selectors.items())

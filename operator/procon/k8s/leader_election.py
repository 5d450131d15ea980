"""Leader election through a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

kopf's peering is not leader election: it pauses operators of lower priority, but every
replica still runs its watches and may act in the moments peering takes to notice a
peer. So procon starts kopf only once it holds the lease (:mod:`procon.k8s.supervisor`):
a standby runs no watch, no handler, no daemon and no timer; it reads the Lease.

How the lease is held, as client-go's ``leaderelection`` package holds it:

- Every ``retry_period`` (jittered up to 1.2x) a candidate reads the Lease. A Lease held by
  someone else is taken only once the candidate has seen its record unchanged for the
  record's ``leaseDurationSeconds``, measured on the candidate's own clock from when it
  first saw that record. Clocks need not agree, only tick at about the same rate.
- Taking and renewing are updates carrying the Lease's ``resourceVersion``: of two
  candidates, one wins and the other gets a conflict.
- The leader renews every ``retry_period``. When no renewal has succeeded for
  ``renew_deadline`` it has lost the lease and the process exits at once (a watchdog
  thread enforces the same deadline if the event loop is stuck). A graceful stop of kopf
  cannot be bounded in time, and procon's reconciles are built to be killed at any point
  (the crash harness proves it), so exiting is the safe way to stop acting.
- The deadline counts from when the last successful renewal was *sent*, not answered, and
  a candidate counts its lease duration from after that write: so the old leader stops
  at least ``lease_duration - renew_deadline`` before anyone else may start.
- On a graceful stop (SIGTERM), once kopf has finished, the leader releases the Lease
  (no holder, 1 s duration), so a standby takes over at its next read instead of waiting
  out the lease duration.

Like client-go's, this does not fence: a leader paused longer than the lease duration
(a frozen VM) may send a request it prepared before the pause. The lease duration and
renew deadline bound everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from procon.k8s.sharding import default_lease_name
from procon.settings import SettingsError

logger = logging.getLogger("procon.leader_election")

# client-go's JitterFactor: candidates spread their reads over retry_period..1.2x of it.
JITTER = 1.2
# The exit status of a leader that lost its lease: the kubelet restarts it as a standby.
EXIT_LEADERSHIP_LOST = 3
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_LEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _own_namespace() -> str:
    """The pod's namespace, from its ServiceAccount mount ("" outside a cluster)."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class LeaderElectionSettings:
    """How this operator elects its leader; see :meth:`from_env` for the variables."""

    enabled: bool = False
    namespace: str = ""
    lease_name: str = "procon"
    # The pod's name and a random suffix: a restarted container is a new candidate, so it
    # never mistakes its predecessor's still-valid lease for its own.
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        shard_selector: str = "",
        watched_namespaces: Sequence[str] = (),
    ) -> LeaderElectionSettings:
        """Read:

        - ``PROCON_LEADER_ELECTION``: true to act only while holding the lease (default false;
          the chart turns it on);
        - ``PROCON_LEADER_ELECTION_NAMESPACE``: where the Lease is (default: the pod's namespace);
        - ``PROCON_LEADER_ELECTION_LEASE_NAME``: its name (default ``procon``, or a name derived
          from ``PROCON_SHARD_SELECTOR`` and ``PROCON_NAMESPACES``, one per shard);
        - ``PROCON_LEADER_ELECTION_LEASE_DURATION`` (15), ``..._RENEW_DEADLINE`` (10),
          ``..._RETRY_PERIOD`` (2): seconds, as client-go's settings of the same names;
        - ``PROCON_POD_NAME``: the first part of this candidate's identity (default: the host name).
        """
        env = os.environ if env is None else env
        enabled = _flag(env, "PROCON_LEADER_ELECTION")
        namespace = (env.get("PROCON_LEADER_ELECTION_NAMESPACE") or "").strip() or _own_namespace()
        lease_name = (env.get("PROCON_LEADER_ELECTION_LEASE_NAME") or "").strip() or default_lease_name(
            shard_selector, watched_namespaces
        )
        pod = (env.get("PROCON_POD_NAME") or "").strip() or socket.gethostname()
        settings = cls(
            enabled=enabled,
            namespace=namespace,
            lease_name=lease_name,
            identity=f"{pod}_{secrets.token_hex(6)}",
            lease_duration=_seconds(env, "PROCON_LEADER_ELECTION_LEASE_DURATION", cls.lease_duration),
            renew_deadline=_seconds(env, "PROCON_LEADER_ELECTION_RENEW_DEADLINE", cls.renew_deadline),
            retry_period=_seconds(env, "PROCON_LEADER_ELECTION_RETRY_PERIOD", cls.retry_period),
        )
        if enabled:
            settings.check()
        return settings

    def check(self) -> None:
        """client-go's constraints, and a Lease name and namespace to use."""
        if not self.namespace:
            raise SettingsError(
                "PROCON_LEADER_ELECTION_NAMESPACE must name the Lease's namespace outside a pod"
            )
        if len(self.lease_name) > 253 or not _LEASE_NAME.fullmatch(self.lease_name):
            raise SettingsError(
                f"PROCON_LEADER_ELECTION_LEASE_NAME must be a DNS subdomain name, got {self.lease_name!r}"
            )
        if self.lease_duration <= self.renew_deadline:
            raise SettingsError(
                "PROCON_LEADER_ELECTION_LEASE_DURATION must be longer than "
                "PROCON_LEADER_ELECTION_RENEW_DEADLINE"
            )
        if self.renew_deadline <= JITTER * self.retry_period:
            raise SettingsError(
                "PROCON_LEADER_ELECTION_RENEW_DEADLINE must be longer than "
                f"{JITTER} x PROCON_LEADER_ELECTION_RETRY_PERIOD"
            )

    @property
    def lease(self) -> str:
        return f"{self.namespace}/{self.lease_name}"


def micro_time(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with exactly six fractional digits, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease's spec says about who holds it. Compared as a whole: any change is a sign
    of life from its holder."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder or None,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class ObservedLease:
    record: LeaseRecord
    resource_version: str


class LeaseConflict(Exception):
    """Someone else wrote the Lease first (HTTP 409): this attempt lost the race."""


class LeaseLock(Protocol):
    """The Lease as the elector sees it; :class:`KubeLeaseLock` is the real one."""

    async def get(self) -> ObservedLease | None: ...

    async def create(self, record: LeaseRecord) -> ObservedLease: ...

    async def update(self, record: LeaseRecord, resource_version: str) -> ObservedLease: ...


class KubeLeaseLock:
    """A ``coordination.k8s.io/v1`` Lease through kubernetes_asyncio."""

    def __init__(self, coordination: Any, namespace: str, name: str) -> None:
        self._api = coordination  # kubernetes_asyncio.client.CoordinationV1Api
        self._namespace, self._name = namespace, name

    @staticmethod
    def _observed(lease: Any) -> ObservedLease:
        spec = lease.spec

        def stamp(value: Any) -> str | None:
            return micro_time(value) if isinstance(value, datetime) else value

        record = LeaseRecord(
            holder=spec.holder_identity or "",
            lease_duration_seconds=int(spec.lease_duration_seconds or 0),
            acquire_time=stamp(spec.acquire_time),
            renew_time=stamp(spec.renew_time),
            transitions=int(spec.lease_transitions or 0),
        )
        return ObservedLease(record, str(lease.metadata.resource_version))

    async def get(self) -> ObservedLease | None:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            lease = await self._api.read_namespaced_lease(self._name, self._namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return self._observed(lease)

    async def create(self, record: LeaseRecord) -> ObservedLease:
        from kubernetes_asyncio.client.exceptions import ApiException

        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": record.spec(),
        }
        try:
            return self._observed(await self._api.create_namespaced_lease(self._namespace, body))
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict from None
            raise

    async def update(self, record: LeaseRecord, resource_version: str) -> ObservedLease:
        from kubernetes_asyncio.client.exceptions import ApiException

        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self._name,
                "namespace": self._namespace,
                "resourceVersion": resource_version,
            },
            "spec": record.spec(),
        }
        try:
            return self._observed(await self._api.replace_namespaced_lease(self._name, self._namespace, body))
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict from None
            raise


def held_by_another(
    record: LeaseRecord, identity: str, observed_at: float, now: float, default: float
) -> bool:
    """Whether someone else holds the lease: a holder that is not us, whose record we have seen
    unchanged for less than its lease duration (ours when the record gives none)."""
    if not record.holder or record.holder == identity:
        return False
    duration = record.lease_duration_seconds or default
    return observed_at + duration > now


class LeadershipLost(Exception):
    """The leader could not renew its lease in time, or saw another holder."""


class LeaderElector:
    """Takes, renews and releases one Lease for one candidate."""

    def __init__(
        self,
        lock: LeaseLock,
        settings: LeaderElectionSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._lock = lock
        self.settings = settings
        self._clock, self._now = clock, now
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        # When the last successful take or renewal was sent; None while not leading.
        self.renewed_at: float | None = None
        self.last_attempt = clock()

    @property
    def leading(self) -> bool:
        return self.renewed_at is not None

    @property
    def holder(self) -> str:
        """Who holds the lease, as last seen."""
        return self._observed.holder if self._observed is not None else ""

    def deadline(self) -> float | None:
        """When leadership ends unless renewed (None while not leading)."""
        return None if self.renewed_at is None else self.renewed_at + self.settings.renew_deadline

    async def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go's ``tryAcquireOrRenew``: True when we hold the lease after it."""
        identity = self.settings.identity
        sent = self._clock()
        stamp = micro_time(self._now())
        duration = max(1, round(self.settings.lease_duration))
        current = await self._lock.get()
        if current is None:
            record = LeaseRecord(identity, duration, stamp, stamp, 0)
            try:
                created = await self._lock.create(record)
            except LeaseConflict:
                return False
            self._hold(created.record, sent)
            return True
        if current.record != self._observed:
            self._observed, self._observed_at = current.record, self._clock()
        if held_by_another(
            current.record, identity, self._observed_at, self._clock(), self.settings.lease_duration
        ):
            if self.leading:
                raise LeadershipLost(f"the lease is held by {current.record.holder}")
            return False
        ours = current.record.holder == identity
        record = LeaseRecord(
            holder=identity,
            lease_duration_seconds=duration,
            acquire_time=current.record.acquire_time if ours else stamp,
            renew_time=stamp,
            transitions=current.record.transitions if ours else current.record.transitions + 1,
        )
        try:
            updated = await self._lock.update(record, current.resource_version)
        except LeaseConflict:
            return False
        self._hold(updated.record, sent)
        return True

    def _hold(self, record: LeaseRecord, sent: float) -> None:
        if not self.leading:
            logger.info("became the leader of lease %s as %s", self.settings.lease, self.settings.identity)
        self._observed, self._observed_at = record, self._clock()
        self.renewed_at = sent

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until we hold the lease (True) or ``stop`` is set (False)."""
        logger.info(
            "standing by for lease %s as %s (duration %.0fs, renew deadline %.0fs, retry %.0fs)",
            self.settings.lease,
            self.settings.identity,
            self.settings.lease_duration,
            self.settings.renew_deadline,
            self.settings.retry_period,
        )
        reported = ""
        while not stop.is_set():
            try:
                async with asyncio.timeout(self.settings.renew_deadline):
                    if await self.try_acquire_or_renew():
                        return True
            except (TimeoutError, OSError, LeaseConflict) as error:
                logger.warning("could not read lease %s: %s", self.settings.lease, type(error).__name__)
            except Exception as error:  # the API server's refusals: logged, and tried again
                logger.warning("could not read lease %s: %s", self.settings.lease, error)
            finally:
                self.last_attempt = self._clock()
            if self.holder != reported:
                reported = self.holder
                logger.info("lease %s is held by %s", self.settings.lease, reported or "nobody")
            delay = self.settings.retry_period * random.uniform(1.0, JITTER)  # noqa: S311 - jitter
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        return False

    async def keep_renewing(self) -> None:
        """Renew every retry period; raise :class:`LeadershipLost` when the renew deadline passes
        without a successful renewal, or another holder appears."""
        while True:
            await asyncio.sleep(self.settings.retry_period)
            while True:
                deadline = self.deadline()
                remaining = (deadline if deadline is not None else 0.0) - self._clock()
                if remaining <= 0:
                    raise LeadershipLost(f"no renewal succeeded for {self.settings.renew_deadline:.0f}s")
                try:
                    async with asyncio.timeout(remaining):
                        if await self.try_acquire_or_renew():
                            break
                except LeadershipLost:
                    raise
                except TimeoutError:
                    continue
                except Exception as error:
                    logger.warning("could not renew lease %s: %s", self.settings.lease, type(error).__name__)
                pause = min(self.settings.retry_period, max(0.0, remaining - 0.05))
                await asyncio.sleep(pause)

    async def release(self) -> None:
        """Give the lease up, so a standby takes over at its next read: only once nothing acts."""
        if not self.leading:
            return
        self.renewed_at = None
        try:
            current = await self._lock.get()
            if current is None or current.record.holder != self.settings.identity:
                return
            stamp = micro_time(self._now())
            released = replace(
                current.record, holder="", lease_duration_seconds=1, acquire_time=stamp, renew_time=stamp
            )
            await self._lock.update(released, current.resource_version)
            logger.info("released lease %s", self.settings.lease)
        except Exception as error:  # the standby then waits out the lease duration
            logger.warning("could not release lease %s: %s", self.settings.lease, type(error).__name__)


def exit_now(reason: str) -> None:
    """Stop acting at once: the process ends without clean-up, as a SIGKILL would end it."""
    try:
        logger.critical("leadership lost (%s): exiting so that the new leader acts alone", reason)
        sys.stderr.flush()
    finally:
        os._exit(EXIT_LEADERSHIP_LOST)


class Watchdog(threading.Thread):
    """Ends the process when the renew deadline passes, even while the event loop is stuck
    (a long synchronous call, a starved CPU): the loop's own check cannot run then, and
    neither may anything the loop would do next."""

    def __init__(
        self,
        deadline: Callable[[], float | None],
        *,
        on_expired: Callable[[str], None] = exit_now,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.25,
    ) -> None:
        super().__init__(name="procon lease watchdog", daemon=True)
        self._deadline, self._on_expired, self._clock = deadline, on_expired, clock
        self._interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            deadline = self._deadline()
            if deadline is not None and self._clock() > deadline:
                self._on_expired("the renew deadline passed while the event loop was busy")
                return

    def stop(self) -> None:
        self._stopped.set()

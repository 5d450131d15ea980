"""One observation of an account's webhooks for every connection on it, and one budget of requests.

:class:`AccountDriver` wraps a processor's driver and is one itself, so the
reconciler's decisions stay as they were; what changes is what a call costs:

- **Shared observation.** Connections using the same credentials on the same
  target (mode, and whatever the processor adds: a connected account, a client
  id, a merchant) share one listing of the account's webhooks: one list call
  per account per ``max_age`` (the drift interval), whatever the number of
  connections. Concurrent needs of a listing make one call (single flight).
  A write through the wrapper (create, update, delete) that succeeded is
  applied to the listing kept (the webhook the processor answered with is
  put in, or taken out), so the connections of one account coming up together
  share one listing instead of each listing after the other's create; a write
  that failed drops the listing (what it left is unknown), and a listing that
  was in flight while any write ended is not kept. A connection acting on a
  listing up to ``max_age`` old is what the periodic drift check meant
  already: a change made outside procon is seen within an interval.
- **Current for a change.** A pass acting on a change (a new connection, a
  spec or Secret change, a retry) is served only a listing begun after the
  change was seen (:func:`current_listing`), or one in flight: it sees the
  account as it was after the change, and procon's own writes since.
- **Keyed safely.** The key is a keyed hash of the credentials, made with a
  random key held in this process only (never logged, exported or shown),
  plus the target. Two keys reaching the same account never share a listing:
  a tenant naming another tenant's account with a key of its own sees only
  what its own key is answered.
- **Budget per account.** Every request a driver sends goes through
  :mod:`procon.processors.calls`: the account's rate (from the processor's
  plugin, by mode), its pause after a 429, and the process-wide bound on
  requests in flight. The account is the one the processor named when it
  verified the credentials (so two keys to one account share its budget, as
  the processor counts them); before that, the credentials' own.

Entries go with the connections that fill them: :meth:`forget` (a connection
gone, paused, or a refusal that proved the cache stale) drops the listing
and the account's bucket when idle, and listings older than ``max_age`` are
dropped as others are stored, so memory follows the accounts in use.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from procon import metrics
from procon.api.schema import Mode
from procon.processors import calls
from procon.processors.base import (
    Account,
    Comparison,
    CreatedWebhook,
    Credentials,
    DesiredWebhook,
    ObservedWebhook,
    PermissionReport,
    ProcessorDriver,
    RateLimited,
    Target,
    WebhookChanges,
)
from procon.processors.calls import CallAdmission, RateLimit

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec

T = TypeVar("T")
DEFAULT_MAX_AGE = 300.0


class _FromFirstNeed:
    """No moment given: a listing must begin at the pass's first need of one (or be in flight)."""


_FROM_FIRST_NEED = _FromFirstNeed()
# For a pass acting on a change: the moment a listing that serves it must have begun at or after.
_LISTED_SINCE: contextvars.ContextVar[float | _FromFirstNeed | None] = contextvars.ContextVar(
    "procon_listed_since", default=None
)


@contextmanager
def current_listing(needed: bool = True, *, since: float | None = None) -> Iterator[None]:
    """Within it, a listing is served only if it began at or after ``since``, or is in flight.

    ``since`` is when the change the pass acts on was seen (a monotonic time, the clock the
    drivers use); without it, no listing finished before the pass's first need of one serves
    it. The reconciler asks for this for every pass but the periodic check of an unchanged,
    Ready connection: only that one is served a listing up to the drift interval old.

    A listing in flight when the pass needs one is joined even if it began before ``since``:
    connections changed together (an apply of many, their changes seen moments apart) so share
    one listing instead of each waiting for one of its own after the others'. Such a listing
    began at most one list call before the need; in practice after the change was seen, unless
    the pass ran sooner after it than a list call takes (a queue wait longer than that makes
    it certain). What it may miss is a change made at the processor in that moment, or a write
    of procon's own ending while it ran (that listing is then not kept): the pass plans from
    it as from any listing, and the connection's next pass, at the latest its drift check,
    sees the account as it is.
    """
    token = _LISTED_SINCE.set((_FROM_FIRST_NEED if since is None else since) if needed else None)
    try:
        yield
    finally:
        _LISTED_SINCE.reset(token)


@dataclass
class _Flight:
    """A listing in flight, and how many callers wait for it: when the last gives up (its reconcile
    timed out), the listing is cancelled, as it would have been without sharing."""

    task: asyncio.Task[Any] = field(repr=False)
    waiters: int = 0


@dataclass
class _Observation:
    """What is known of one (credentials, target): the account they verified as, and a listing."""

    account: tuple[Mode, str] | None = None
    used_at: float = 0.0
    listing: tuple[ObservedWebhook, ...] | None = None
    listed_at: float = 0.0
    # Bumped by every write: a listing begun before it ended is not kept.
    generation: int = 0
    flight: _Flight | None = field(default=None, repr=False)


class AccountDriver:
    """A driver that shares listings per account and sends every request within the account's budget."""

    def __init__(
        self,
        processor: str,
        driver: ProcessorDriver,
        admission: CallAdmission,
        rate_limit: Callable[[Mode], RateLimit],
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        self.inner = driver
        self._admission = admission
        self._rate_limit = rate_limit
        self._max_age = max_age
        self._clock = clock
        # The key of the credentials' fingerprints: random, in this process only, so a fingerprint
        # means nothing outside it (and nothing inside it but "the same credentials").
        self._print_key = secrets.token_bytes(32)
        self._observations: dict[tuple[bytes, Target], _Observation] = {}
        # Verifications in flight, by what they verify: gone as each lands.
        self._verifications: dict[Hashable, _Flight] = {}
        self.signing_secret_source = driver.signing_secret_source
        self.permission_noun = driver.permission_noun

    # --- keys -----------------------------------------------------------------------

    def _fingerprint(self, credentials: Credentials) -> bytes:
        material = "\0".join(f"{k}={v}" for k, v in sorted(credentials.values.items()))
        return hmac.new(self._print_key, material.encode(), hashlib.sha256).digest()

    def _observation(self, credentials: Credentials, target: Target) -> _Observation:
        key = (self._fingerprint(credentials), target)
        now = self._clock()
        found = self._observations.get(key)
        if found is None:
            self._drop_stale(now)
            found = self._observations[key] = _Observation()
        found.used_at = now
        return found

    def _bucket(self, credentials: Credentials, target: Target) -> calls.AccountBucket:
        observation = self._observations.get((self._fingerprint(credentials), target))
        account: Hashable
        if observation is not None and observation.account is not None:
            mode, account_id = observation.account
            account = (self.processor, mode, "account", account_id)
        else:
            mode = target.mode
            account = (self.processor, mode, "credentials", self._fingerprint(credentials), target)
        return self._admission.bucket(account, self.processor, self._rate_limit(mode))

    async def _call(self, credentials: Credentials, target: Target, call: Awaitable[T]) -> T:
        """Run ``call`` with its requests counted against the account's budget."""
        bucket = self._bucket(credentials, target)
        with calls.scope(self._admission, bucket):
            try:
                return await call
            except RateLimited as limited:
                # The driver's requests paused the account already where they saw the 429; this
                # covers a driver that raises without having reported it.
                if not bucket.paused(self._clock()):
                    self._admission.pause(bucket, limited.retry_after)
                raise

    def _wrote(
        self,
        credentials: Credentials,
        target: Target,
        applied: Callable[[tuple[ObservedWebhook, ...]], tuple[ObservedWebhook, ...]] | None = None,
    ) -> None:
        """A write ended: ``applied`` puts what it did into the listing kept; without it (the write
        failed, and what it left is unknown) the listing goes. A listing in flight is not kept
        either way: it may have been read before the write."""
        observation = self._observations.get((self._fingerprint(credentials), target))
        if observation is None:
            return  # nothing listed, nothing in flight: nothing out of date
        observation.generation += 1
        observation.flight = None
        if applied is not None and observation.listing is not None:
            observation.listing = applied(observation.listing)
        else:
            observation.listing = None

    # --- pure: the driver's own ---------------------------------------------------------

    def target(self, spec: ProcessorConnectionSpec) -> Target:
        return self.inner.target(spec)

    def desired_webhook(
        self, spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]
    ) -> DesiredWebhook:
        return self.inner.desired_webhook(spec, tag, events)

    def compare(self, observed: ObservedWebhook, desired: DesiredWebhook) -> Comparison:
        return self.inner.compare(observed, desired)

    def required_permission(self, denied: str | None, required: Sequence[str]) -> str | None:
        return self.inner.required_permission(denied, required)

    def missing_permissions_advice(self, required: Sequence[str]) -> str | None:
        return self.inner.missing_permissions_advice(required)

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        return self.inner.credentials_from(data, key)

    # --- calls ------------------------------------------------------------------------

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        return await self._call(credentials, target, self.inner.resolve_events(credentials, target, events))

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        account = await self._joined(
            ("verify", self._fingerprint(credentials), target),
            lambda: self._call(credentials, target, self.inner.verify(credentials, target)),
        )
        # From now on the credentials' requests count against the account the processor named.
        self._observation(credentials, target).account = (account.mode, account.id)
        return account

    def remember_account(self, credentials: Credentials, target: Target, account: Account) -> None:
        """The account a verification reused from a connection's status named (nothing asked the
        processor): the credentials' requests count against it, as after :meth:`verify`."""
        self._observation(credentials, target).account = (account.mode, account.id)

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        return await self._joined(
            ("permissions", self._fingerprint(credentials), target, tuple(required)),
            lambda: self._call(
                credentials, target, self.inner.check_permissions(credentials, target, required)
            ),
        )

    async def _joined(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``, or join the same call already in flight (the connections of an account
        coming up together verify its key once, not once each, before the driver's cache has it)."""
        flight = self._verifications.get(key)
        if flight is None or flight.task.done():
            task: asyncio.Task[T] = asyncio.ensure_future(call())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            flight = self._verifications[key] = _Flight(task)

            def landed(_: object, key: Hashable = key, flight: _Flight = flight) -> None:
                if self._verifications.get(key) is flight:
                    del self._verifications[key]

            task.add_done_callback(landed)
        flight.waiters += 1
        try:
            result: T = await asyncio.shield(flight.task)
            return result
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():
                flight.task.cancel()  # nobody waits for it any more (see list_webhooks)

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        observation = self._observation(credentials, target)
        now = self._clock()
        since = _LISTED_SINCE.get()
        if isinstance(since, _FromFirstNeed):
            # Only what this pass lists (or joins in flight) from here on: a task copies the
            # context, so each is a pass of its own.
            since = math.nextafter(now, math.inf)
            _LISTED_SINCE.set(since)
        if (
            observation.listing is not None
            and now - observation.listed_at < self._max_age
            and (since is None or observation.listed_at >= since)
        ):
            metrics.account_listing(self.processor, "cached")
            return list(observation.listing)
        flight = observation.flight
        if flight is not None and not flight.task.done():
            metrics.account_listing(self.processor, "shared")
        else:
            metrics.account_listing(self.processor, "listed")
            flight = self._list(credentials, target, owner, observation)
        flight.waiters += 1
        try:
            # Shielded: a caller that gives up does not cancel the others' listing...
            return list(await asyncio.shield(flight.task))
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():
                # ...but the last one does: nobody waits for it, and an answer that never ends
                # must not hold a request slot (and every later need of the account) forever.
                flight.task.cancel()

    def _list(
        self,
        credentials: Credentials,
        target: Target,
        owner: Mapping[str, str] | None,
        observation: _Observation,
    ) -> _Flight:
        generation = observation.generation
        started = self._clock()

        async def listing() -> list[ObservedWebhook]:
            try:
                found = await self._call(
                    credentials, target, self.inner.list_webhooks(credentials, target, owner)
                )
            finally:
                if observation.flight is flight:
                    observation.flight = None
            if observation.generation == generation:
                observation.listing = tuple(found)
                observation.listed_at = started
            return found

        task = asyncio.ensure_future(listing())
        # Its error reaches every caller; none is left unretrieved when all have gone.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        flight = _Flight(task)
        observation.flight = flight
        return flight

    def _drop_stale(self, now: float) -> None:
        """Forget what nobody used within ``max_age`` (credentials replaced, connections gone quiet):
        what is kept follows the credentials in use, however many a tenant tries."""
        for key in [
            k for k, o in self._observations.items() if now - o.used_at >= self._max_age and o.flight is None
        ]:
            del self._observations[key]
        self._admission.forget_idle()

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        try:
            created = await self._call(
                credentials,
                target,
                self.inner.create_webhook(credentials, target, desired, idempotency_key=idempotency_key),
            )
        except BaseException:
            self._wrote(credentials, target)
            raise
        self._wrote(credentials, target, lambda listing: _put(listing, created.webhook))
        return created

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        try:
            updated = await self._call(
                credentials, target, self.inner.update_webhook(credentials, target, webhook_id, changes)
            )
        except BaseException:
            self._wrote(credentials, target)
            raise
        self._wrote(credentials, target, lambda listing: _put(listing, updated, replacing=webhook_id))
        return updated

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        try:
            await self._call(credentials, target, self.inner.delete_webhook(credentials, target, webhook_id))
        except BaseException:
            self._wrote(credentials, target)
            raise
        self._wrote(credentials, target, lambda listing: tuple(w for w in listing if w.id != webhook_id))

    # --- memory -------------------------------------------------------------------------

    def forget(self, credentials: Credentials, target: Target) -> None:
        """Drop what is kept for these credentials and target, and the driver's own cache.

        Another connection on the same account lists once more: what forgetting costs.
        """
        self._observations.pop((self._fingerprint(credentials), target), None)
        self._admission.forget_idle()
        self.inner.forget(credentials, target)

    def cached_entries(self) -> int:
        return self.inner.cached_entries() + len(self._observations)

    def paused_accounts(self) -> int:
        return self._admission.paused_accounts(self.processor)


def _put(
    listing: tuple[ObservedWebhook, ...], webhook: ObservedWebhook, *, replacing: str | None = None
) -> tuple[ObservedWebhook, ...]:
    """The listing with ``webhook`` in it, in place of the one it replaces (its own id by default)."""
    gone = {webhook.id, replacing or webhook.id}
    return (*(w for w in listing if w.id not in gone), webhook)


def account_drivers(
    drivers: Mapping[str, ProcessorDriver],
    rate_limits: Mapping[str, Callable[[Mode], RateLimit]],
    admission: CallAdmission,
    *,
    max_age: float = DEFAULT_MAX_AGE,
) -> dict[str, ProcessorDriver]:
    """Each processor's driver, wrapped: listings shared per account, requests within its budget."""
    wrapped: dict[str, ProcessorDriver] = {}
    for name, driver in drivers.items():
        account_driver = AccountDriver(name, driver, admission, rate_limits[name], max_age=max_age)
        metrics.track_paused_accounts(name, account_driver.paused_accounts)
        wrapped[name] = account_driver
    return wrapped

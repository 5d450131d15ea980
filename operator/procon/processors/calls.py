"""Admission of processor requests: a rate per account, a pause after a 429, a bound on requests in flight.

Processors limit requests per *account*, whichever key or connection sends
them (each processor's doc under docs/processors/, its "Rate limits" sections), so a
fleet of connections on one account must share one budget: each request
takes a slot from its account's bucket (:class:`AccountBucket`, a GCRA token
bucket: a steady rate and a small burst), and a 429 pauses the account's
bucket, for every connection on it, for the answer's ``Retry-After`` when it
carries one and a growing pause when not. A process-wide semaphore bounds the
requests in flight, so a restart that wakes every connection at once cannot
open thousands of sockets.

Drivers stay unaware of accounts: the caller (procon.reconcile.accounts)
sets which bucket the current task's requests belong to (:func:`scope`), and
each driver wraps every HTTP request it sends, retries included, in
:func:`admitted`. Outside a scope (a driver used on its own, as in its unit
tests) only nothing happens.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from procon import metrics

# A Retry-After longer than this is taken as this: a hostile or broken answer must not stop an
# account's connections for hours; a real limiter that wants longer answers 429 again.
MAX_RETRY_AFTER = 60.0
# Without a Retry-After: pause 1 s after a first 429, doubling with each 429 in a row, up to 30 s
# (the exponential backoff with jitter processors advise, each in its doc under docs/processors/).
FIRST_PAUSE = 1.0
MAX_PAUSE = 30.0
DEFAULT_MAX_CONCURRENT_CALLS = 32


@dataclass(frozen=True)
class RateLimit:
    """What procon allows itself per account: ``per_second`` on average, ``burst`` at once."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")


def retry_after_seconds(
    headers: Mapping[str, Any] | None, now: Callable[[], float] = time.time
) -> float | None:
    """The wait a ``Retry-After`` header asks for (RFC 9110: seconds, or an HTTP date), capped at
    :data:`MAX_RETRY_AFTER`; None without a readable one."""
    if not headers:
        return None
    raw = next((str(v) for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if raw is None:
        return None
    raw = raw.strip()
    seconds: float | None = None
    if raw.isdigit():
        seconds = float(raw)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(raw).timestamp() - now()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class AccountBucket:
    """One account's budget: requests at ``limit`` (GCRA), none at all while paused after a 429."""

    def __init__(self, processor: str, limit: RateLimit) -> None:
        self.processor = processor
        self.limit = limit
        self._interval = 1.0 / limit.per_second
        self._tolerance = (limit.burst - 1) * self._interval
        self._tat = 0.0  # the theoretical arrival time of the next request
        self.paused_until = 0.0
        self._refusals = 0  # 429s in a row, for the pause without Retry-After
        self.waiting = 0

    def reserve(self, now: float) -> float:
        """Take the next slot; returns when it is (``now`` or later)."""
        at = max(now, self._tat - self._tolerance, self.paused_until)
        self._tat = max(self._tat, at) + self._interval
        return at

    def pause(self, now: float, retry_after: float | None) -> float:
        """A 429: no request for ``retry_after`` seconds (a growing pause without one); then the
        steady rate, without a burst. Returns the pause."""
        self._refusals += 1
        if retry_after is None:
            retry_after = min(FIRST_PAUSE * 2.0 ** (self._refusals - 1), MAX_PAUSE)
        until = now + retry_after
        if until > self.paused_until:
            self.paused_until = until
        self._tat = max(self._tat, self.paused_until + self._tolerance)
        return retry_after

    def answered(self) -> None:
        """An answer that was not a 429: the next pause without Retry-After starts short again."""
        self._refusals = 0

    def paused(self, now: float) -> bool:
        return self.paused_until > now

    def idle(self, now: float) -> bool:
        """Whether forgetting it changes nothing: no one waits, not paused, and its burst is back."""
        return not self.waiting and not self.paused(now) and self._tat - self._tolerance <= now


class CallAdmission:
    """Every account's bucket, and the bound on requests in flight: one per operator process."""

    def __init__(
        self,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT_CALLS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self._in_flight = asyncio.Semaphore(max_concurrent)
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[Hashable, AccountBucket] = {}
        self.in_flight = 0

    def bucket(self, key: Hashable, processor: str, limit: RateLimit) -> AccountBucket:
        """The bucket of the account ``key`` (held in memory only; never shown)."""
        found = self._buckets.get(key)
        if found is None or found.limit != limit:
            found = self._buckets[key] = AccountBucket(processor, limit)
        return found

    def forget_idle(self) -> None:
        """Drop the buckets that hold nothing a new one would not: memory follows active accounts."""
        now = self._clock()
        for key in [k for k, b in self._buckets.items() if b.idle(now)]:
            del self._buckets[key]

    def entries(self) -> int:
        return len(self._buckets)

    def paused_accounts(self, processor: str) -> int:
        now = self._clock()
        return sum(1 for b in self._buckets.values() if b.processor == processor and b.paused(now))

    async def _wait_turn(self, bucket: AccountBucket) -> None:
        waited = 0.0
        bucket.waiting += 1
        try:
            while True:
                now = self._clock()
                at = bucket.reserve(now)
                if at <= now:
                    break
                waited += at - now
                await self._sleep(at - now)
                if not bucket.paused(self._clock()):
                    break  # the slot holds; else a 429 came meanwhile: wait for the pause
        finally:
            bucket.waiting -= 1
        if waited > 0:
            metrics.rate_limiter_waited(bucket.processor, "account", waited)

    @asynccontextmanager
    async def request(self, bucket: AccountBucket | None) -> AsyncIterator[Call]:
        """Wait for the account's turn, then for room among the requests in flight; hold the room
        while the request is sent and answered."""
        if bucket is not None:
            await self._wait_turn(bucket)
        if self._in_flight.locked():
            started = self._clock()
            await self._in_flight.acquire()
            if bucket is not None:
                metrics.rate_limiter_waited(bucket.processor, "concurrency", self._clock() - started)
        else:
            await self._in_flight.acquire()
        self.in_flight += 1
        try:
            yield Call(self, bucket)
        finally:
            self.in_flight -= 1
            self._in_flight.release()

    def pause(self, bucket: AccountBucket, retry_after: float | None) -> None:
        bucket.pause(self._clock(), retry_after)


class Call:
    """One admitted request: the driver reports a 429 through it."""

    def __init__(self, admission: CallAdmission | None, bucket: AccountBucket | None) -> None:
        self._admission = admission
        self._bucket = bucket

    def answered(
        self, status: int, headers: Mapping[str, Any] | None = None, *, rate_limited: bool | None = None
    ) -> None:
        """The processor answered ``status``: a refusal for the account's rate pauses the whole account.

        ``rate_limited`` says whether it was one, where the driver knows better than the status
        (a 429 about one busy object is not; an answer that names "too many requests" is); by
        default, a 429 is.
        """
        if self._admission is None or self._bucket is None:
            return
        if status == 429 if rate_limited is None else rate_limited:
            self._admission.pause(self._bucket, retry_after_seconds(headers))
        else:
            self._bucket.answered()


@dataclass(frozen=True)
class _Scope:
    admission: CallAdmission
    bucket: AccountBucket | None


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("procon_call_scope", default=None)


@contextmanager
def scope(admission: CallAdmission, bucket: AccountBucket | None) -> Iterator[None]:
    """The requests this task sends (and the tasks it starts) count against ``bucket``."""
    token = _SCOPE.set(_Scope(admission, bucket))
    try:
        yield
    finally:
        _SCOPE.reset(token)


@asynccontextmanager
async def admitted() -> AsyncIterator[Call]:
    """Around each HTTP request a driver sends: waits for its account's turn and for room in flight."""
    current = _SCOPE.get()
    if current is None:
        yield Call(None, None)
        return
    async with current.admission.request(current.bucket) as call:
        yield call

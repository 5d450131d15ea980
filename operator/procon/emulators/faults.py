"""Fault injection and request counting shared by the processor emulators.

A reconcile loop is only trustworthy if it survives the failures real processors
produce: 5xx answers, rate limiting, slow answers, and the nastiest one, a write
that was committed but whose answer never arrived. ``FaultPlan`` describes which
of these to produce; ``FaultInjector`` holds the plan (tests change it from
their own thread while the emulator serves), draws from a seedable random
generator, and logs every request so tests can count the calls the operator made.

Beside the processors' own faults, a plan can ask for *malformed answers*:
what a proxy, a load balancer or a broken network puts in the place of the
processor's answer (an HTML error page, a body cut short, one that never
ends). These are no processor's documented behaviour; they test that the
operator reads every answer defensively (see ``MalformedKind``).

``fault_middleware`` applies a plan to an aiohttp application. What a fault
looks like on the wire differs per processor, so the middleware takes an
``ErrorRenderer`` that builds the processor's own error response. Control routes
(``/_emulator/...``) are never faulted nor counted.

A write that commits and then fails comes in two kinds, and they differ for a
client that retries with an idempotency key:

- lost on the way back (``"error"``: a proxy's 5xx; ``"drop"``: the connection
  closes without an answer): the processor saved its success, so a replay of
  the key receives it;
- the processor's own 5xx after it began work (``"processor_error"``): a
  processor that keeps answers by idempotency key may save that 500 as the
  key's answer and replay it, marked as a replay, to every retry with the key
  (each emulator's processor doc says whether it does). An emulator with an
  idempotency layer applies this kind itself, where it saves answers; for one
  without (a processor whose writes take no key) it looks the same on the wire
  as a proxy's 5xx, and the middleware renders it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol, get_args

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

CONTROL_PREFIX = "/_emulator/"
UNMATCHED_ROUTE = "<unmatched>"

CommitFailureMode = Literal["error", "drop", "processor_error"]
# The commit failures that happen between the processor and the client.
LOST_ON_THE_WAY_BACK: tuple[CommitFailureMode, ...] = ("error", "drop")


class FaultKind(StrEnum):
    """What the emulator did instead of (or after) answering normally."""

    SERVER_ERROR = "server_error"  # answered 5xx before doing anything
    RATE_LIMITED = "rate_limited"  # answered 429 before doing anything
    LOCK_TIMEOUT = "lock_timeout"  # answered 429 "object busy" before doing anything
    COMMIT_THEN_FAIL = "commit_then_fail"  # committed, then a 5xx on the way back (a proxy's)
    DROPPED = "dropped"  # committed, then closed the connection without an answer
    PROCESSOR_ERROR = "processor_error"  # committed, then the processor's own 5xx (saved under its key)
    MALFORMED = "malformed"  # answered with something that is not the processor's answer


# Set on a request by an emulator that applied a fault itself, for the request log.
APPLIED_FAULT = web.RequestKey("applied_fault", FaultKind)


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject; the default plan injects none.

    Rates are shares of requests in [0, 1], drawn once per request in the order
    error, rate limit, lock timeout. ``*_should_retry`` sets the processor's
    "should the client retry" header on those answers (None: no header), where
    the processor has one. ``path_prefix`` limits latency and the random faults
    to matching paths. ``commit_then_fail`` counts down over the next successful
    requests whose method and path match: each is executed and committed, and
    then answered with a proxy's 5xx (mode "error"), not at all (mode "drop"), or
    the processor's own 5xx, saved under the idempotency key where the processor
    saves answers (mode "processor_error").
    """

    error_rate: float = 0.0
    server_error_should_retry: bool | None = None
    rate_limit_rate: float = 0.0
    rate_limit_should_retry: bool | None = None
    # A burst: the next this many requests under path_prefix are refused for the rate, whatever
    # the draw (a rate limiter's refusals come in runs, not as independent draws).
    rate_limit_count: int = 0
    # The Retry-After (seconds) sent with every rate-limit refusal; None: no header. HTTP's own
    # header (RFC 9110, "Retry-After"); ASSUMPTION: sent only when a test asks for it, for none of
    # the emulated processors documents it (each one's doc under docs/processors/ says so).
    rate_limit_retry_after: float | None = None
    lock_timeout_rate: float = 0.0
    # ASSUMPTION: lock timeouts are marked retryable, by a processor whose answers carry a retry
    # hint (the emulator rendering the hint says where that comes from).
    lock_timeout_should_retry: bool | None = True
    latency_seconds: float = 0.0
    # Each request waits latency_seconds plus a uniform draw up to this: calls to a processor
    # take tens to hundreds of milliseconds, varying, not a local emulator's microseconds. The
    # request is read whole first, so a client that goes away meanwhile does not stop it.
    latency_jitter_seconds: float = 0.0
    path_prefix: str = "/"
    commit_then_fail: int = 0
    commit_then_fail_mode: CommitFailureMode = "error"
    commit_then_fail_method: str = "POST"
    commit_then_fail_path_prefix: str = "/"
    seed: int | None = None
    # Malformed answers (see MalformedKind): "" for none; the next ``malformed_count`` requests
    # (None: every one) whose method (""; any) and path match get one.
    malformed: str = ""
    malformed_count: int | None = None
    malformed_method: str = ""
    malformed_path_prefix: str = "/"
    malformed_status: int = 200
    malformed_body: str = ""
    malformed_interval: float = 0.5

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "lock_timeout_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if self.error_rate + self.rate_limit_rate + self.lock_timeout_rate > 1.0:
            raise ValueError("error_rate + rate_limit_rate + lock_timeout_rate must not exceed 1")
        if self.latency_seconds < 0 or self.latency_jitter_seconds < 0:
            raise ValueError("latency_seconds and latency_jitter_seconds must not be negative")
        if self.commit_then_fail < 0:
            raise ValueError("commit_then_fail must not be negative")
        if self.rate_limit_count < 0:
            raise ValueError("rate_limit_count must not be negative")
        if self.rate_limit_retry_after is not None and self.rate_limit_retry_after < 0:
            raise ValueError("rate_limit_retry_after must not be negative")
        if self.commit_then_fail_mode not in get_args(CommitFailureMode):
            raise ValueError(
                f"commit_then_fail_mode must be one of {', '.join(get_args(CommitFailureMode))}, "
                f"not {self.commit_then_fail_mode!r}"
            )
        _check_malformed(self)

    def should_retry(self, fault: FaultKind) -> bool | None:
        """The retry hint to send with an answer for ``fault``."""
        if fault is FaultKind.RATE_LIMITED:
            return self.rate_limit_should_retry
        if fault is FaultKind.LOCK_TIMEOUT:
            return self.lock_timeout_should_retry
        return self.server_error_should_retry

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        """Build a plan from decoded JSON, rejecting unknown fields and wrong types."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"unknown fault plan fields: {', '.join(unknown)}")
        for name, value in data.items():
            _check_field_type(name, str(fields[name].type), value)
        return cls(**data)


def _check_field_type(name: str, annotation: str, value: Any) -> None:
    if annotation == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation == "int | None":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    elif annotation == "float | None":
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    elif annotation == "bool | None":
        ok = value is None or isinstance(value, bool)
    else:  # str and the mode literal
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"fault plan field {name} has the wrong type ({type(value).__name__})")


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received: ``route`` is the path template, ``status`` None if dropped.

    ``received`` and ``answered`` are ``time.monotonic()`` readings (one clock for every process on
    the machine), so a test can tell whether something it did, such as killing the client, fell
    while this request was being served.
    """

    method: str
    path: str
    route: str
    status: int | None
    fault: FaultKind | None
    received: float = 0.0
    answered: float = 0.0


@dataclass(frozen=True)
class InFlight:
    """A request being served: received, not answered yet."""

    method: str
    path: str
    received: float


class ExecutionGate:
    """Holds requests at the point where they would change state, while closed.

    Processors reject a second request that reuses an idempotency key while the
    first is still executing; a test makes that happen deterministically by
    closing the gate, sending one request, waiting until it is held, and sending
    the second. ``open()`` releases everything held.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._open = True
        self._waiting = 0

    @property
    def is_open(self) -> bool:
        with self._condition:
            return self._open

    @property
    def waiting(self) -> int:
        with self._condition:
            return self._waiting

    def close(self) -> None:
        with self._condition:
            self._open = False

    def open(self) -> None:
        with self._condition:
            self._open = True
            self._condition.notify_all()

    def wait_for_waiting(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` requests are held; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._waiting >= count, timeout)

    async def pass_through(self) -> None:
        """Return at once while open; otherwise wait (off the event loop) until opened."""
        with self._condition:
            if self._open:
                return
            self._waiting += 1
            self._condition.notify_all()
        try:
            await asyncio.to_thread(self._wait_until_open)
        finally:
            with self._condition:
                self._waiting -= 1
                self._condition.notify_all()

    def _wait_until_open(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._open)


class FaultInjector:
    """The live fault plan, its random generator and the request log; safe to use from any thread."""

    def __init__(self, plan: FaultPlan | None = None, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311 - fault draws need reproducibility, not secrecy
        self._plan = FaultPlan()
        self._commit_failures_left = 0
        self._rate_limits_left = 0
        self._malformed_left: int | None = None
        self._records: list[RequestRecord] = []
        self._in_flight: dict[int, InFlight] = {}
        self.hold = ExecutionGate()
        if plan is not None:
            self.plan = plan

    @property
    def plan(self) -> FaultPlan:
        """The current plan; ``commit_then_fail`` shows how many commit failures are still to come."""
        with self._lock:
            return self._current()

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._install(plan)

    def update(self, **changes: Any) -> FaultPlan:
        """Change some fields of the current plan and return the new plan."""
        with self._lock:
            plan = dataclasses.replace(self._current(), **changes)
            self._install(plan)
            return plan

    def clear(self) -> None:
        """Stop injecting faults (the request log is kept)."""
        self.plan = FaultPlan()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng.seed(seed)

    def _current(self) -> FaultPlan:
        return dataclasses.replace(
            self._plan,
            commit_then_fail=self._commit_failures_left,
            malformed_count=self._malformed_left,
            rate_limit_count=self._rate_limits_left,
        )

    def _install(self, plan: FaultPlan) -> None:
        self._plan = plan
        self._rate_limits_left = plan.rate_limit_count
        self._commit_failures_left = plan.commit_then_fail
        self._malformed_left = plan.malformed_count
        if plan.seed is not None:
            self._rng.seed(plan.seed)

    def draw_fault(self, path: str) -> tuple[FaultKind | None, FaultPlan]:
        """Decide whether the request to ``path`` is faulted before it is handled."""
        with self._lock:
            plan = self._plan
            if self._rate_limits_left > 0 and path.startswith(plan.path_prefix):
                self._rate_limits_left -= 1
                return FaultKind.RATE_LIMITED, plan
            total = plan.error_rate + plan.rate_limit_rate + plan.lock_timeout_rate
            if total <= 0 or not path.startswith(plan.path_prefix):
                return None, plan
            draw = self._rng.random()
        if draw < plan.error_rate:
            return FaultKind.SERVER_ERROR, plan
        if draw < plan.error_rate + plan.rate_limit_rate:
            return FaultKind.RATE_LIMITED, plan
        if draw < total:
            return FaultKind.LOCK_TIMEOUT, plan
        return None, plan

    def latency(self, plan: FaultPlan, path: str) -> float:
        """How long the request to ``path`` waits before it is handled."""
        if not path.startswith(plan.path_prefix):
            return 0.0
        if plan.latency_jitter_seconds <= 0:
            return plan.latency_seconds
        with self._lock:
            return plan.latency_seconds + self._rng.uniform(0.0, plan.latency_jitter_seconds)

    def claim_commit_failure(
        self, method: str, path: str, modes: Collection[CommitFailureMode] | None = None
    ) -> CommitFailureMode | None:
        """Use up one commit failure if the (already committed) request matches, and the plan's
        mode is one of ``modes`` (any when None)."""
        with self._lock:
            plan = self._plan
            if self._commit_failures_left <= 0:
                return None
            if modes is not None and plan.commit_then_fail_mode not in modes:
                return None
            if method.upper() != plan.commit_then_fail_method.upper():
                return None
            if not path.startswith(plan.commit_then_fail_path_prefix):
                return None
            self._commit_failures_left -= 1
            return plan.commit_then_fail_mode

    def claim_malformed(self, method: str, path: str) -> FaultPlan | None:
        """The plan, if the request to ``path`` gets a malformed answer (using up one of a count)."""
        with self._lock:
            plan = self._plan
            if not plan.malformed or self._malformed_left == 0:
                return None
            if plan.malformed_method and method.upper() != plan.malformed_method.upper():
                return None
            if not path.startswith(plan.malformed_path_prefix):
                return None
            if self._malformed_left is not None:
                self._malformed_left -= 1
            return plan

    def begin(self, request: InFlight) -> int:
        """Note a request that arrived; returns the token that ``record`` ends it with."""
        with self._lock:
            token = id(request)
            self._in_flight[token] = request
            return token

    def record(self, record: RequestRecord, token: int | None = None) -> None:
        with self._lock:
            if token is not None:
                self._in_flight.pop(token, None)
            self._records.append(record)

    @property
    def in_flight(self) -> list[InFlight]:
        """The requests being served now (received, not answered), oldest first."""
        with self._lock:
            return sorted(self._in_flight.values(), key=lambda r: r.received)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received since the last ``reset_counters()``, oldest first."""
        with self._lock:
            return list(self._records)

    @property
    def counters(self) -> Counter[tuple[str, str, int | None]]:
        """Request counts keyed by (method, route template, status)."""
        with self._lock:
            return Counter((r.method, r.route, r.status) for r in self._records)

    def count(
        self,
        method: str | None = None,
        route: str | None = None,
        status: int | None = None,
        *,
        fault: FaultKind | None = None,
    ) -> int:
        """How many logged requests match every filter given."""
        with self._lock:
            return sum(
                1
                for r in self._records
                if (method is None or r.method == method.upper())
                and (route is None or r.route == route)
                and (status is None or r.status == status)
                and (fault is None or r.fault is fault)
            )

    def reset_counters(self) -> None:
        with self._lock:
            self._records.clear()


class ErrorRenderer(Protocol):
    """Builds a processor's own answer for an injected fault (never called for DROPPED)."""

    def __call__(self, fault: FaultKind, should_retry: bool | None) -> web.Response: ...


def route_template(request: web.Request) -> str:
    """The matched route's path template, e.g. ``/v1/webhook_endpoints/{id}``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _drop_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def fault_middleware(
    injector: FaultInjector, render: ErrorRenderer, *, saves_answers: bool = False
) -> Middleware:
    """Middleware applying ``injector``'s plan and logging every non-control request.

    ``saves_answers``: the application has an idempotency layer and applies
    ``"processor_error"`` commit failures itself, where it saves answers.
    """
    modes: tuple[CommitFailureMode, ...] | None = LOST_ON_THE_WAY_BACK if saves_answers else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        route = route_template(request)
        arrival = InFlight(request.method, request.path, time.monotonic())
        token = injector.begin(arrival)

        def log(status: int | None, fault: FaultKind | None) -> None:
            record = RequestRecord(
                request.method, request.path, route, status, fault, arrival.received, time.monotonic()
            )
            injector.record(record, token)

        fault, plan = injector.draw_fault(request.path)
        delay = injector.latency(plan, request.path)
        if delay > 0:
            # The whole request is received before the processor takes its time, so a client that
            # goes away meanwhile (killed, timed out) does not stop it: it is served all the same.
            try:
                await request.read()
            except ConnectionResetError:
                # Gone before the request was whole: nothing arrived to act on, nobody to answer.
                log(None, None)
                return web.Response(status=400)
            await asyncio.sleep(delay)
        if fault is not None:
            answer = render(fault, plan.should_retry(fault))
            if fault is FaultKind.RATE_LIMITED and plan.rate_limit_retry_after is not None:
                answer.headers["Retry-After"] = f"{plan.rate_limit_retry_after:g}"
            log(answer.status, fault)
            return answer
        malformed = injector.claim_malformed(request.method, request.path)
        if malformed is not None and malformed.malformed not in AFTER_HANDLING:
            log(malformed.malformed_status, FaultKind.MALFORMED)
            return await malformed_answer(request, malformed, None)
        try:
            response = await handler(request)
        except web.HTTPException as error:
            log(error.status, request.get(APPLIED_FAULT))
            raise
        if malformed is not None and isinstance(response, web.Response):
            log(response.status, FaultKind.MALFORMED)
            return await malformed_answer(request, malformed, response)
        if 200 <= response.status < 300:
            # A loss between the processor and the client after the processor saved its answer: a
            # retry that reuses the idempotency key gets the real answer replayed.
            mode = injector.claim_commit_failure(request.method, request.path, modes)
            if mode == "drop":
                log(None, FaultKind.DROPPED)
                _drop_connection(request)
                return response
            if mode in ("error", "processor_error"):
                # ASSUMPTION (for "processor_error" here): without an idempotency layer, the
                # processor's own 5xx after committing reaches the client like a proxy's.
                kind = FaultKind.COMMIT_THEN_FAIL if mode == "error" else FaultKind.PROCESSOR_ERROR
                answer = render(kind, plan.should_retry(kind))
                log(answer.status, kind)
                return answer
        log(response.status, request.get(APPLIED_FAULT))
        return response

    return middleware


# --- malformed answers -------------------------------------------------------------------


class MalformedKind(StrEnum):
    """What a request gets in place of the processor's answer.

    ASSUMPTION: none of these is a processor's documented behaviour. They are
    what sits between an operator and a processor produces: a proxy's or load
    balancer's HTML page (with a 5xx, or a 200 from a captive portal), a body
    cut short by a dropped connection, an empty 200, a body that trickles or
    never ends. Each tests that the operator reads answers defensively.
    """

    HTML = "html"  # an HTML page with malformed_status, nothing done
    INVALID_JSON = "invalid-json"  # JSON cut off mid-object with malformed_status, nothing done
    EMPTY_200 = "empty-200"  # 200 and no body at all, nothing done
    BODY = "body"  # malformed_body as JSON with malformed_status, nothing done ("[]", "{}", wrong types)
    ENDLESS = "endless"  # 200 and a body that never ends, a chunk each malformed_interval, nothing done
    TRUNCATED = "truncated"  # the real answer (the request was carried out), cut in half
    SLOW = "slow"  # the real answer (the request was carried out), a byte each malformed_interval


# Kinds that carry out the request and then spoil its answer.
AFTER_HANDLING = frozenset({MalformedKind.TRUNCATED, MalformedKind.SLOW})

_PROXY_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _check_malformed(plan: FaultPlan) -> None:
    if plan.malformed and plan.malformed not in {k.value for k in MalformedKind}:
        kinds = ", ".join(k.value for k in MalformedKind)
        raise ValueError(f"malformed must be one of {kinds} (or empty), not {plan.malformed!r}")
    if plan.malformed_count is not None and plan.malformed_count < 0:
        raise ValueError("malformed_count must not be negative")
    if not 100 <= plan.malformed_status <= 599:
        raise ValueError(f"malformed_status must be an HTTP status, not {plan.malformed_status}")
    if plan.malformed_interval < 0:
        raise ValueError("malformed_interval must not be negative")


async def _stream(
    request: web.Request, status: int, content_type: str, chunks: Any, interval: float
) -> web.StreamResponse:
    """Send ``chunks`` one by one, ``interval`` apart, until they or the client run out."""
    response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
    await response.prepare(request)
    try:
        for chunk in chunks:
            await response.write(chunk)
            await asyncio.sleep(interval)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client gave up: what this answer is for
    return response


def _forever(chunk: bytes) -> Any:
    yield b'{"object": "list", "data": ['
    while True:
        yield chunk


async def malformed_answer(
    request: web.Request, plan: FaultPlan, real: web.Response | None
) -> web.StreamResponse:
    """The answer ``plan.malformed`` asks for; ``real`` is the processor's, for the kinds that spoil one."""
    kind = MalformedKind(plan.malformed)
    status = plan.malformed_status
    if kind is MalformedKind.HTML:
        page = _PROXY_PAGE.format(status=status)
        return web.Response(status=status, text=page, content_type="text/html")
    if kind is MalformedKind.INVALID_JSON:
        return web.Response(
            status=status, text='{"object": "list", "data": [{"id": ', content_type="application/json"
        )
    if kind is MalformedKind.EMPTY_200:
        return web.Response(status=200, body=b"", content_type="application/json")
    if kind is MalformedKind.BODY:
        return web.Response(status=status, text=plan.malformed_body, content_type="application/json")
    if kind is MalformedKind.ENDLESS:
        chunk = b" " * (64 * 1024 if plan.malformed_interval == 0 else 1)
        return await _stream(request, 200, "application/json", _forever(chunk), plan.malformed_interval)
    assert real is not None  # the kinds left spoil a real answer
    body = real.body if isinstance(real.body, bytes) else b""
    content_type = real.headers.get("Content-Type", "application/json")
    if kind is MalformedKind.TRUNCATED:
        spoiled = web.Response(status=real.status, body=body[: len(body) // 2])
        spoiled.headers["Content-Type"] = content_type
        return spoiled
    return await _stream(
        request,
        real.status,
        content_type,
        (body[i : i + 1] for i in range(len(body))),
        plan.malformed_interval,
    )

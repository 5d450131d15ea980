"""The Stripe driver: the official ``stripe`` SDK's async client over aiohttp.

One :class:`stripe.StripeClient` per API base, shared by every connection;
the key travels with each call (``options={"api_key": ...}``), so no
connection's key is ever stored on a shared object. The API base comes from
operator configuration only (``PROCON_STRIPE_API_BASE``): a namespace user
must not be able to send the operator's keys elsewhere.

Retries of transient failures (5xx, dropped connections, 409 idempotency
conflicts, 429 with ``Stripe-Should-Retry: true``, lock timeouts) are the
SDK's own: jittered exponential backoff, reusing the request's idempotency
key (docs/processors/stripe.md, "SDK retries"). What is still failing after them
becomes a :class:`TransientProcessorError`, and the reconciler backs off.

An error answered as a replay (``Idempotent-Replayed: true``) is Stripe's
saved answer to the key's first request: it will come back on every retry
with that key for a day (docs/processors/stripe.md, "Idempotency"), so it becomes
:class:`IdempotencyKeySpent` instead, and the reconciler moves to a new key.

Answers are not trusted to be Stripe's: a body is read up to a cap, and one
that is not JSON, lacks Stripe's error object, or lacks the fields a success
promises becomes a :class:`MalformedResponse` naming what was wrong, never a
``KeyError``; a listing that never ends is cut off after a few pages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import stripe

from procon import metrics
from procon.api.schema import Mode
from procon.http_proxy import proxy_from_environment
from procon.processors import calls, key_material
from procon.processors.base import (
    Account,
    Comparison,
    CreatedWebhook,
    Credentials,
    CredentialsRejected,
    DesiredWebhook,
    EndpointLimitReached,
    IdempotencyConflict,
    IdempotencyKeySpent,
    MalformedResponse,
    NotFound,
    ObservedWebhook,
    PermissionDenied,
    PermissionReport,
    ProcessorError,
    RateLimited,
    RequestRejected,
    SigningSecretSource,
    Target,
    TransientProcessorError,
    WebhookChanges,
)
from procon.processors.responses import ResponseTooLarge, describe_body, read_chunks_capped
from procon.processors.stripe import permissions as perms
from procon.processors.stripe import webhook as endpoints
from procon.processors.stripe.webhook import StripeEndpoint, StripeTarget
from procon.redaction import redact

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec

DEFAULT_API_BASE = "https://api.stripe.com"
API_KEY_FIELD = "apiKey"

_KEY_MODE = re.compile(r"^(?:sk|rk)_(test|live)_[A-Za-z0-9]+$")
# Both message shapes of a permission error (docs/processors/stripe.md, "Permission errors").
_PERMISSION_IN_MESSAGE = re.compile(r"'(?:rak_)?([a-z0-9_]+_(?:read|write))'")
_ACCOUNT_IN_MESSAGE = re.compile(r"on account '(acct_[A-Za-z0-9]+)'")
_ENDPOINT_LIMIT = re.compile(r"maximum of \d+ .*webhook endpoints", re.IGNORECASE)
# An account holds at most 16 webhook endpoints (docs/processors/stripe.md, "Answers that are not Stripe's")
# and procon lists 100 a page, so one page is the norm; a listing still going after this many never ends.
MAX_LIST_PAGES = 5
LIST_PAGE_SIZE = 100


def key_fingerprint(key: str) -> str:
    """A one-way fingerprint of a key, for caches: equal keys, equal prints; the key is not recoverable."""
    return hashlib.sha256(b"procon-stripe-key:" + key.encode()).hexdigest()[:24]


def mode_of_key(key: str) -> Mode | None:
    """A secret or restricted key's mode, from its ``_test_``/``_live_`` infix (docs/processors/stripe.md,
    "Keys and modes")."""
    match = _KEY_MODE.match(key)
    return Mode(match.group(1)) if match else None


class CappedAIOHTTPClient(stripe.AIOHTTPClient):
    """The SDK's aiohttp client, reading each answer up to a size cap, its proxy chosen once.

    aiohttp, not the SDK's default httpx: httpx's connection pool examines the socket of every
    pooled connection on each request, which cost about five times the CPU per request of
    aiohttp's connector, and a fleet's first pass sends thousands (docs/design/work-queue.md,
    "The processors' HTTP client").

    The SDK reads a whole body into memory however large; this reads at most
    :data:`procon.processors.responses.MAX_RESPONSE_BYTES` and raises
    :class:`ResponseTooLarge` past it (not retried: the same request would bring the same
    answer). A connection lost mid-body is the SDK's usual retryable connection error.

    The proxy is the environment's for the API base (:func:`procon.http_proxy.proxy_from_environment`),
    decided once as for the Kubernetes API client: aiohttp's ``trust_env`` would look it up again
    on every request. A redirect is not followed, and no cookie is kept.

    A session belongs to the event loop it was made in: a request from another loop (a CLI
    command or a test runs one loop after another) gets a session of that loop's own.
    """

    def __init__(self, api_base: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        # Per step, as the SDK's httpx client had it: a connection (a free one from the pool
        # included) within ``timeout``, and no read waiting longer; the reconcile's deadline
        # bounds the whole.
        self._request_timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._proxy_url = proxy_from_environment(api_base)
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def _loop_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for ended in [other for other in self._sessions if other.is_closed()]:
                del self._sessions[ended]  # its connections went with its loop
            # Verified against Stripe's own CA bundle, as the SDK's clients verify.
            verify: ssl.SSLContext | bool = False
            if self._verify_ssl_certs:
                verify = ssl.create_default_context(cafile=stripe.ca_bundle_path)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=verify),
                # Every account's requests share the session: no cookie one answer sets goes
                # with another's request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._sessions[loop] = session
        return session

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        doing = f"Stripe's answer to {method.upper()} {urlsplit(url).path}"
        # Each attempt, the SDK's retries included, waits for its account's turn (procon.processors.calls).
        async with calls.admitted() as call:
            try:
                async with self._loop_session().request(
                    method,
                    url,
                    headers=headers,
                    data=post_data,
                    timeout=self._request_timeout,
                    proxy=self._proxy_url,
                    # Requests (and the keys they carry) go to the API base alone; a redirect is an
                    # answer that is not Stripe's, read as such.
                    allow_redirects=False,
                ) as response:
                    try:
                        content = await read_chunks_capped(response.content.iter_any(), doing)
                    except ResponseTooLarge:
                        response.close()  # the rest of the body is never read: the connection goes
                        raise
            except ResponseTooLarge:
                raise
            except Exception as error:  # as the SDK's own client does: a retryable connection error
                self._handle_request_error(error)
            # A lock timeout is a 429 about one busy object, not the account's rate
            # (docs/processors/stripe.md, "Rate limits procon keeps to"): it pauses nobody.
            busy = response.status == 429 and b"lock_timeout" in content
            call.answered(response.status, response.headers, rate_limited=not busy and response.status == 429)
        return content, response.status, response.headers

    async def request_stream_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> NoReturn:
        """Not for procon: a streamed answer would go around the size cap and the account's turn."""
        raise NotImplementedError("procon's Stripe client reads answers whole, up to a cap")

    async def close_async(self) -> None:
        """Close the sessions of loops still open (this one's, at the operator's stop)."""
        sessions, self._sessions = self._sessions, {}
        for loop, session in sessions.items():
            if not loop.is_closed() and loop is asyncio.get_running_loop():
                await session.close()


@dataclass
class _CachedAccess:
    account: Account
    granted: frozenset[str]
    expires_at: float


class StripeDriver:
    """Talks to one Stripe API base on behalf of any number of connections."""

    signing_secret_source: SigningSecretSource = "processor"
    permission_noun = "permission"

    def __init__(
        self,
        api_base: str = DEFAULT_API_BASE,
        *,
        max_network_retries: int = 3,
        timeout: float = 30.0,
        permission_cache_ttl: float = 600.0,
        clock: Any = time.monotonic,
    ) -> None:
        self._http = CappedAIOHTTPClient(api_base, timeout=timeout)
        self._client = stripe.StripeClient(
            # The SDK requires a client-wide key; every call passes its own.
            "sk_test_unused_every_call_passes_its_own_key",
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        self._ttl = permission_cache_ttl
        self._clock = clock
        self._cache: dict[tuple[str, str | None], _CachedAccess] = {}
        self._lock = asyncio.Lock()
        self.api_base = api_base

    async def aclose(self) -> None:
        """Close this loop's connections to Stripe (at the operator's stop)."""
        await self._http.close_async()

    # --- what the spec means at Stripe (pure) -----------------------------------

    def target(self, spec: ProcessorConnectionSpec) -> Target:
        return endpoints.target(spec)

    def desired_webhook(
        self, spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]
    ) -> DesiredWebhook:
        return endpoints.desired(spec, tag, events)

    def compare(self, observed: ObservedWebhook, desired: DesiredWebhook) -> Comparison:
        return endpoints.compare(observed, desired)

    def required_permission(self, denied: str | None, required: Sequence[str]) -> str | None:
        return perms.as_required(denied, required)

    def missing_permissions_advice(self, required: Sequence[str]) -> str | None:
        link = perms.dashboard_link(list(required), "procon")
        return f"Grant them, or create a restricted key with exactly the required permissions: {link}"

    # --- calls ----------------------------------------------------------------

    def _options(
        self, credentials: Credentials, target: Target, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        # The key is redacted by its shape here, and by its value wherever the connection
        # using it speaks (the reconciler registers it for that connection).
        key = credentials[API_KEY_FIELD]
        options: dict[str, Any] = {"api_key": key}
        if _connected(target):
            options["stripe_account"] = _connected(target)
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        return options

    async def _request(
        self,
        method: str,
        path: str,
        credentials: Credentials,
        target: Target,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Mapping[str, Any]:
        body, _ = await self._request_with_replay(
            method, path, credentials, target, params, idempotency_key=idempotency_key
        )
        return body

    async def _request_with_replay(
        self,
        method: str,
        path: str,
        credentials: Credentials,
        target: Target,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> tuple[Mapping[str, Any], bool]:
        """The answer's body, and whether Stripe marked it as a replay.

        See docs/processors/stripe.md, "Idempotency".
        """
        options = self._options(credentials, target, idempotency_key)
        try:
            response = await self._client.raw_request_async(
                method.lower(), path, **dict(params or {}), **options
            )
        except stripe.StripeError as error:
            metrics.api_call("stripe", method, path, error.http_status or "error")
            _raise_translated(error)
        except ProcessorError:
            raise
        except Exception as error:
            # The SDK trips over some answers that are JSON but not Stripe's shape
            # (an "error" that is not an object, say): still a bad answer, not a bug here.
            metrics.api_call("stripe", method, path, "error")
            raise MalformedResponse(
                f"Stripe's answer to {method} {path} could not be read ({type(error).__name__})"
            ) from None
        metrics.api_call("stripe", method, path, getattr(response, "code", 200))
        body = response.data if hasattr(response, "data") else response
        if not isinstance(body, Mapping):
            raise MalformedResponse(
                f"Stripe answered {method} {path} with JSON that is not an object "
                f"({type(body).__name__}){_request_suffix(response)}"
            )
        return body, _header_is_true(getattr(response, "headers", None) or {}, "idempotent-replayed")

    # --- ProcessorDriver --------------------------------------------------------

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        field = key or API_KEY_FIELD
        raw = data.get(field) or ""
        if not raw.strip():
            raise CredentialsRejected("CredentialsKeyMissing", f"the Secret has no non-empty key {field!r}")
        checked = key_material.check(field, raw)
        return Credentials({API_KEY_FIELD: checked.value}, stripped=(field,) if checked.stripped else ())

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        # Stripe validates event names itself; an unknown one is refused at create.
        return tuple(sorted(events))

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        key = credentials.values.get(API_KEY_FIELD, "")
        mode = mode_of_key(key)
        if mode is None:
            raise CredentialsRejected(
                "InvalidCredentials",
                "the Secret does not hold a Stripe secret (sk_) or restricted (rk_) key",
            )
        if mode != target.mode:
            raise CredentialsRejected(
                "ModeMismatch",
                f"the key is a {mode.value}-mode key but the connection's mode is {target.mode.value}",
            )
        cached = self._cached(key, target)
        if cached:
            return cached.account
        account_id = await self._account_id(credentials, target)
        account = Account(id=account_id, mode=mode)
        self._remember(key, target, account, frozenset())
        return account

    async def _account_id(self, credentials: Credentials, target: Target) -> str:
        try:
            body = await self._request("GET", "/v1/account", credentials, target)
        except PermissionDenied as denied:
            # Restricted keys are usually refused GET /v1/account, but the
            # refusal names the account (docs/processors/stripe.md, "The account behind a key").
            if denied.account_id:
                return denied.account_id
            raise
        account_id = body.get("id")
        if not isinstance(account_id, str) or not account_id:
            raise MalformedResponse("Stripe answered GET /v1/account without an account id")
        return account_id

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        key = credentials[API_KEY_FIELD]
        cached = self._cached(key, target)
        already = cached.granted if cached else frozenset()
        missing: list[str] = []
        unverifiable: list[str] = []
        granted: set[str] = set()
        probes = 0
        is_secret_key = key.startswith("sk_")
        # A name Stripe does not publish is a mistake in the spec, whatever the key holds.
        unknown = [p for p in required if not perms.is_known(p)]
        for permission in required:
            if permission in unknown:
                continue
            if is_secret_key or permission in already or permission in perms.VERIFIED_BY_USE:
                granted.add(permission)
                continue
            probe = perms.probe_for(permission)
            if probe is None:
                unverifiable.append(permission)
                continue
            probes += 1
            if await self._probe(credentials, target, permission, probe):
                granted.add(permission)
            else:
                missing.append(permission)
        if cached:
            # Only grants are cached: a missing permission is probed again on the
            # next check, so a grant made in the Dashboard is noticed promptly.
            self._remember(key, target, cached.account, already | granted)
        return PermissionReport(
            missing=tuple(missing),
            unverifiable=tuple(unverifiable),
            unknown=tuple(unknown),
            granted=tuple(sorted(granted)),
            probes=probes,
        )

    async def _probe(
        self, credentials: Credentials, target: Target, permission: str, probe: perms.Probe
    ) -> bool:
        try:
            await self._request(probe.method, probe.path, credentials, target, probe.params)
        except PermissionDenied:
            return False
        except NotFound:
            return probe.granted_on == "granted-on-404"
        except RequestRejected:
            return probe.granted_on == "granted-on-400"
        return probe.granted_on == "granted-on-200"

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        webhooks: list[ObservedWebhook] = []
        starting_after: str | None = None
        for _ in range(MAX_LIST_PAGES):
            params: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
            if starting_after:
                params["starting_after"] = starting_after
            page = await self._request("GET", "/v1/webhook_endpoints", credentials, target, params)
            # A listing read wrong must never read as "no endpoints": procon would create a duplicate.
            data, has_more = page.get("data"), page.get("has_more")
            if not isinstance(data, list) or not isinstance(has_more, bool):
                raise MalformedResponse(
                    "Stripe answered GET /v1/webhook_endpoints without a list "
                    "(no 'data' array or no 'has_more' flag)"
                )
            observed = [_observed(item) for item in data]
            webhooks.extend(observed)
            if not has_more:
                return webhooks
            if not observed or observed[-1].id == starting_after:
                raise MalformedResponse(
                    "Stripe's listing of webhook endpoints said it had more but did not move on"
                )
            starting_after = observed[-1].id
        raise MalformedResponse(
            f"Stripe's listing of webhook endpoints did not end after {MAX_LIST_PAGES} pages of "
            f"{LIST_PAGE_SIZE}; an account holds at most 16"
        )

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        wanted = endpoints.as_desired(desired)
        params: dict[str, Any] = {
            "url": wanted.url,
            "enabled_events": list(wanted.events),
            "metadata": dict(wanted.metadata),
        }
        if wanted.description:
            params["description"] = wanted.description
        if wanted.api_version:
            params["api_version"] = wanted.api_version
        if wanted.connect:
            params["connect"] = True
        body, replayed = await self._request_with_replay(
            "POST", "/v1/webhook_endpoints", credentials, target, params, idempotency_key=idempotency_key
        )
        secret = body.get("secret")
        if not isinstance(secret, str) or not secret:
            raise MalformedResponse("Stripe created the webhook endpoint but returned no signing secret")
        return CreatedWebhook(webhook=_observed(body), signing_secret=secret, replayed=replayed)

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        wanted = endpoints.as_changes(changes)
        params: dict[str, Any] = {}
        if wanted.events is not None:
            params["enabled_events"] = list(wanted.events)
        if wanted.description is not None:
            params["description"] = wanted.description
        if wanted.enabled is not None:
            params["disabled"] = not wanted.enabled
        if wanted.metadata is not None:
            params["metadata"] = dict(wanted.metadata)
        body = await self._request("POST", f"/v1/webhook_endpoints/{webhook_id}", credentials, target, params)
        return _observed(body)

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        await self._request("DELETE", f"/v1/webhook_endpoints/{webhook_id}", credentials, target)

    # --- cache ------------------------------------------------------------------

    def _cached(self, key: str, target: Target) -> _CachedAccess | None:
        entry = self._cache.get((key_fingerprint(key), _connected(target)))
        if entry and entry.expires_at > self._clock():
            return entry
        return None

    def _remember(self, key: str, target: Target, account: Account, granted: frozenset[str]) -> None:
        cache_key = (key_fingerprint(key), _connected(target))
        existing = self._cache.get(cache_key)
        now = self._clock()
        expires_at = existing.expires_at if existing and existing.expires_at > now else None
        # Expired entries go here, so keys nobody uses any more do not pile up.
        self._cache = {k: entry for k, entry in self._cache.items() if entry.expires_at > now}
        self._cache[cache_key] = _CachedAccess(
            account=account, granted=granted, expires_at=expires_at or self._clock() + self._ttl
        )

    def forget(self, credentials: Credentials, target: Target) -> None:
        """Drop cached results for a key, for every account it acts on."""
        key = credentials.values.get(API_KEY_FIELD, "")
        printed = key_fingerprint(key)
        for cache_key in [k for k in self._cache if k[0] == printed]:
            del self._cache[cache_key]

    def cached_entries(self) -> int:
        return len(self._cache)


def _connected(target: Target) -> str | None:
    """The connected account a call acts on, if any."""
    return target.connected_account if isinstance(target, StripeTarget) else None


def _observed(item: Any) -> StripeEndpoint:
    """A webhook endpoint object as procon sees it; :class:`MalformedResponse` when it is not one."""
    if not isinstance(item, Mapping):
        raise MalformedResponse(
            f"Stripe listed a webhook endpoint that is not an object ({type(item).__name__})"
        )
    endpoint_id = item.get("id")
    if not isinstance(endpoint_id, str) or not endpoint_id:
        raise MalformedResponse("Stripe answered with a webhook endpoint without an id")

    def text(name: str, *, required: bool = False) -> str | None:
        value = item.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise MalformedResponse(f"Stripe's webhook endpoint {endpoint_id} has no string {name!r}")
        return value

    events = item.get("enabled_events")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise MalformedResponse(f"Stripe's webhook endpoint {endpoint_id} has no list of enabled_events")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise MalformedResponse(f"Stripe's webhook endpoint {endpoint_id} has metadata that is not an object")
    status = text("status") or "enabled"
    return StripeEndpoint(
        id=endpoint_id,
        url=text("url", required=True) or "",
        events=tuple(sorted(events)),
        description=text("description") or None,
        enabled=status == "enabled",
        metadata={str(k): str(v) for k, v in metadata.items()},
        api_version=text("api_version") or None,
        status=status,
        created=item["created"] if isinstance(item.get("created"), int) else None,
    )


def _header_is_true(headers: Mapping[str, Any], name: str) -> bool:
    return any(k.lower() == name and str(v).lower() == "true" for k, v in headers.items())


def _is_replay(error: stripe.StripeError) -> bool:
    """Whether the error is a saved answer replayed under its key.

    See docs/processors/stripe.md, "Idempotency".
    """
    return _header_is_true(error.headers or {}, "idempotent-replayed")


def _request_suffix(response: Any) -> str:
    request_id = (getattr(response, "headers", None) or {}).get("request-id")
    return f" (Stripe request {request_id})" if request_id else ""


def _without_stripe_error(error: stripe.StripeError, status: int) -> ProcessorError:
    """An error answer with no Stripe error object in it: a proxy's page, a cut or empty body.

    The body is never quoted: it is not Stripe's words, and may be anything.
    A 5xx, 429 or 409 is worth a retry as Stripe's own would be; any other
    status is a :class:`MalformedResponse` (transient too: see there).
    """
    body = error.http_body
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    # The SDK passes the answer's headers where the parsed body would go when the body is not JSON.
    headers = error.headers or (error.json_body if isinstance(error.json_body, Mapping) else None)
    if parsed is not None:
        described = f"HTTP {status} with JSON that is not Stripe's error object"
    else:
        described = describe_body(status, headers, body)
    request_id = error.request_id or (headers or {}).get("request-id")
    suffix = f" (Stripe request {request_id})" if request_id else ""
    if status == 429:
        return RateLimited(f"Stripe rate limit: {described}{suffix}", calls.retry_after_seconds(headers))
    if status >= 500 or status == 409:
        return TransientProcessorError(f"Stripe is unavailable: {described}{suffix}")
    return MalformedResponse(f"Stripe answered {described}{suffix}")


def _raise_translated(error: stripe.StripeError) -> NoReturn:
    """Map a Stripe SDK error to a driver error, with a redacted message."""
    status = error.http_status or 0
    if _is_replay(error):
        raise IdempotencyKeySpent(
            f"Stripe replayed the saved answer {status} to this idempotency key: "
            f"the key is spent{_request_suffix(error)}"
        ) from None
    err = getattr(error, "error", None)
    if err is None and isinstance(error, stripe.APIError):
        # The SDK's generic error for an answer it could not read as one of Stripe's.
        raise _without_stripe_error(error, status) from None
    code = getattr(err, "code", None) if err is not None else None
    raw_message = (
        (getattr(err, "message", None) if err is not None else None) or error.user_message or str(error)
    )
    message = redact(raw_message)
    request_id = error.request_id
    suffix = f" (Stripe request {request_id})" if request_id else ""

    if isinstance(error, stripe.APIConnectionError) or status >= 500 or status == 409:
        raise TransientProcessorError(f"Stripe is unavailable: {message}{suffix}") from None
    if status == 429 and code == "lock_timeout":
        raise TransientProcessorError(f"Stripe: {message}{suffix}") from None
    if isinstance(error, stripe.RateLimitError) or status == 429:
        # Stripe documents no Retry-After (docs/processors/stripe.md, "Rate limits procon keeps
        # to"); one that comes is honoured all the same.
        raise RateLimited(
            f"Stripe rate limit: {message}{suffix}", calls.retry_after_seconds(error.headers)
        ) from None
    if isinstance(error, stripe.AuthenticationError) or status == 401:
        if code == "api_key_expired":
            raise CredentialsRejected(
                "ExpiredCredentials", f"Stripe refused an expired key: {message}"
            ) from None
        raise CredentialsRejected("InvalidCredentials", f"Stripe refused the key: {message}") from None
    if isinstance(error, stripe.PermissionError) or status == 403:
        if (
            code == "account_invalid"
            or "Connect permissions" in raw_message
            or "other accounts" in raw_message
        ):
            raise CredentialsRejected("ConnectedAccountInaccessible", f"Stripe refused: {message}") from None
        permission = _PERMISSION_IN_MESSAGE.search(raw_message)
        account = _ACCOUNT_IN_MESSAGE.search(raw_message)
        raise PermissionDenied(
            f"Stripe refused: {message}",
            f"rak_{permission.group(1)}" if permission else None,
            account.group(1) if account else None,
        ) from None
    if isinstance(error, stripe.IdempotencyError):
        raise IdempotencyConflict(f"Stripe: {message}") from None
    if status == 404:
        raise NotFound(f"Stripe: {message}") from None
    if status == 400 and _ENDPOINT_LIMIT.search(raw_message):
        raise EndpointLimitReached(f"Stripe: {message}") from None
    if status == 400:
        raise RequestRejected(f"Stripe rejected the request: {message}") from None
    raise ProcessorError(f"Stripe answered {status}: {message}{suffix}") from None

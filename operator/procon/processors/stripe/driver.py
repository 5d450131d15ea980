"""The Stripe driver: the official ``stripe`` SDK's async client over httpx.

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
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import stripe

from procon import metrics
from procon.api.v1alpha1 import Mode
from procon.processors.base import (
    Account,
    CreatedWebhook,
    Credentials,
    CredentialsRejected,
    DesiredWebhook,
    EndpointLimitReached,
    IdempotencyConflict,
    IdempotencyKeySpent,
    NotFound,
    ObservedWebhook,
    PermissionDenied,
    PermissionReport,
    ProcessorError,
    RequestRejected,
    SigningSecretSource,
    Target,
    TransientProcessorError,
    WebhookChanges,
)
from procon.processors.stripe import permissions as perms
from procon.redaction import redact, register_secret

DEFAULT_API_BASE = "https://api.stripe.com"
API_KEY_FIELD = "apiKey"

_KEY_MODE = re.compile(r"^(?:sk|rk)_(test|live)_[A-Za-z0-9]+$")
# Both message shapes of a permission error (reference stripe.md §2).
_PERMISSION_IN_MESSAGE = re.compile(r"'(?:rak_)?([a-z0-9_]+_(?:read|write))'")
_ACCOUNT_IN_MESSAGE = re.compile(r"on account '(acct_[A-Za-z0-9]+)'")
_ENDPOINT_LIMIT = re.compile(r"maximum of \d+ .*webhook endpoints", re.IGNORECASE)


def key_fingerprint(key: str) -> str:
    """A one-way fingerprint of a key, for caches: equal keys, equal prints; the key is not recoverable."""
    return hashlib.sha256(b"procon-stripe-key:" + key.encode()).hexdigest()[:24]


def mode_of_key(key: str) -> Mode | None:
    """A secret or restricted key's mode, from its ``_test_``/``_live_`` infix (reference stripe.md §2)."""
    match = _KEY_MODE.match(key)
    return Mode(match.group(1)) if match else None


@dataclass
class _CachedAccess:
    account: Account
    granted: frozenset[str]
    expires_at: float


class StripeDriver:
    """Talks to one Stripe API base on behalf of any number of connections."""

    signing_secret_source: SigningSecretSource = "processor"

    def __init__(
        self,
        api_base: str = DEFAULT_API_BASE,
        *,
        max_network_retries: int = 3,
        timeout: float = 30.0,
        permission_cache_ttl: float = 600.0,
        clock: Any = time.monotonic,
    ) -> None:
        self._client = stripe.StripeClient(
            # The SDK requires a client-wide key; every call passes its own.
            "sk_test_unused_every_call_passes_its_own_key",
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
            http_client=stripe.HTTPXClient(timeout=timeout),
        )
        self._ttl = permission_cache_ttl
        self._clock = clock
        self._cache: dict[tuple[str, str | None], _CachedAccess] = {}
        self._lock = asyncio.Lock()
        self.api_base = api_base

    # --- calls ----------------------------------------------------------------

    def _options(
        self, credentials: Credentials, target: Target, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        key = credentials[API_KEY_FIELD]
        register_secret(key)
        options: dict[str, Any] = {"api_key": key}
        if target.connected_account:
            options["stripe_account"] = target.connected_account
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
        metrics.api_call("stripe", method, path, getattr(response, "code", 200))
        body = response.data if hasattr(response, "data") else response
        replayed = _header_is_true(getattr(response, "headers", None) or {}, "idempotent-replayed")
        return (body if isinstance(body, Mapping) else {}), replayed

    # --- ProcessorDriver --------------------------------------------------------

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        field = key or API_KEY_FIELD
        value = (data.get(field) or "").strip()
        if not value:
            raise CredentialsRejected("CredentialsKeyMissing", f"the Secret has no non-empty key {field!r}")
        return Credentials({API_KEY_FIELD: value})

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
            # refusal names the account (reference stripe.md §2 and §3).
            if denied.account_id:
                return denied.account_id
            raise
        account_id = body.get("id")
        if not isinstance(account_id, str):
            raise TransientProcessorError("Stripe answered GET /v1/account without an account id")
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
        for permission in required:
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
        while True:
            params: dict[str, Any] = {"limit": 100}
            if starting_after:
                params["starting_after"] = starting_after
            page = await self._request("GET", "/v1/webhook_endpoints", credentials, target, params)
            data = page.get("data") or []
            webhooks.extend(_observed(item) for item in data)
            if not page.get("has_more") or not data:
                return webhooks
            starting_after = str(data[-1]["id"])

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        params: dict[str, Any] = {
            "url": desired.url,
            "enabled_events": list(desired.events),
            "metadata": dict(desired.metadata),
        }
        if desired.description:
            params["description"] = desired.description
        if desired.api_version:
            params["api_version"] = desired.api_version
        if desired.connect:
            params["connect"] = True
        body, replayed = await self._request_with_replay(
            "POST", "/v1/webhook_endpoints", credentials, target, params, idempotency_key=idempotency_key
        )
        secret = body.get("secret")
        if not isinstance(secret, str):
            raise TransientProcessorError(
                "Stripe created the webhook endpoint but returned no signing secret"
            )
        register_secret(secret)
        return CreatedWebhook(webhook=_observed(body), signing_secret=secret, replayed=replayed)

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        params: dict[str, Any] = {}
        if changes.events is not None:
            params["enabled_events"] = list(changes.events)
        if changes.description is not None:
            params["description"] = changes.description
        if changes.enabled is not None:
            params["disabled"] = not changes.enabled
        if changes.metadata is not None:
            params["metadata"] = dict(changes.metadata)
        body = await self._request("POST", f"/v1/webhook_endpoints/{webhook_id}", credentials, target, params)
        return _observed(body)

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        await self._request("DELETE", f"/v1/webhook_endpoints/{webhook_id}", credentials, target)

    # --- cache ------------------------------------------------------------------

    def _cached(self, key: str, target: Target) -> _CachedAccess | None:
        entry = self._cache.get((key_fingerprint(key), target.connected_account))
        if entry and entry.expires_at > self._clock():
            return entry
        return None

    def _remember(self, key: str, target: Target, account: Account, granted: frozenset[str]) -> None:
        cache_key = (key_fingerprint(key), target.connected_account)
        existing = self._cache.get(cache_key)
        expires_at = existing.expires_at if existing and existing.expires_at > self._clock() else None
        self._cache[cache_key] = _CachedAccess(
            account=account, granted=granted, expires_at=expires_at or self._clock() + self._ttl
        )

    def forget(self, credentials: Credentials) -> None:
        """Drop cached results for a key (after a refusal proved them stale)."""
        key = credentials.values.get(API_KEY_FIELD, "")
        printed = key_fingerprint(key)
        for cache_key in [k for k in self._cache if k[0] == printed]:
            del self._cache[cache_key]


def _observed(item: Mapping[str, Any]) -> ObservedWebhook:
    status = str(item.get("status") or "enabled")
    return ObservedWebhook(
        id=str(item["id"]),
        url=str(item.get("url") or ""),
        events=tuple(sorted(item.get("enabled_events") or ())),
        description=item.get("description") or None,
        enabled=status == "enabled",
        metadata={str(k): str(v) for k, v in (item.get("metadata") or {}).items()},
        api_version=item.get("api_version") or None,
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


def _request_suffix(error: stripe.StripeError) -> str:
    return f" (Stripe request {error.request_id})" if error.request_id else ""


def _raise_translated(error: stripe.StripeError) -> NoReturn:
    """Map a Stripe SDK error to a driver error, with a redacted message."""
    status = error.http_status or 0
    if _is_replay(error):
        raise IdempotencyKeySpent(
            f"Stripe replayed the saved answer {status} to this idempotency key: "
            f"the key is spent{_request_suffix(error)}"
        ) from None
    err = getattr(error, "error", None)
    code = getattr(err, "code", None) if err is not None else None
    raw_message = (
        (getattr(err, "message", None) if err is not None else None) or error.user_message or str(error)
    )
    message = redact(raw_message)
    request_id = error.request_id
    suffix = f" (Stripe request {request_id})" if request_id else ""

    if isinstance(error, stripe.APIConnectionError) or status >= 500 or status == 409:
        raise TransientProcessorError(f"Stripe is unavailable: {message}{suffix}") from None
    if isinstance(error, stripe.RateLimitError) or status == 429:
        raise TransientProcessorError(f"Stripe rate limit: {message}{suffix}") from None
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

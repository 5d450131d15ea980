"""The Checkout.com driver: httpx against the Workflows API, OAuth or secret keys.

There is no async Checkout.com SDK (docs/processors/checkout.md,
"Calling the API without the SDK"), so the driver
speaks HTTP itself, with one ``httpx.AsyncClient`` shared by all
connections. The hosts come from operator configuration only
(``PROCON_CHECKOUT_API_BASE``/``PROCON_CHECKOUT_AUTH_BASE``, defaulting to
Checkout.com's sandbox or production hosts by ``spec.mode``); a connection's
``checkout.clientId`` only selects the account's prefixed subdomain of them
(docs/processors/checkout.md, "Hosts"). The client honours the usual proxy variables, like any
egress from a cluster.

A webhook is a *workflow*: one webhook action (URL and HMAC signature key)
and conditions on events, entities and processing channels. procon chooses
the signature key (Checkout.com uses the key the client provides and may mask it
on read: docs/processors/checkout.md, "Workflows as webhooks"), so the reconciler writes it to the Secret
first and this driver only ever sends it.

Around it: ``hosts`` (where Checkout.com is, what a key's shape says),
``http`` (what is worth a retry, what an error answer means), ``workflows``
(a webhook as a workflow and back; ownership is the workflow's name) and
``scopes`` (how each scope is checked).

Either base may also be a per-mode mapping: Checkout.com's sandbox and
production are separate hosts (docs/processors/checkout.md, "Hosts"), and only when the driver knows
both can it tell an OAuth access key of the other mode from an invalid one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from procon import metrics, redaction
from procon.api.schema import Mode
from procon.processors import calls, key_material
from procon.processors.base import (
    Account,
    Comparison,
    CreatedWebhook,
    Credentials,
    CredentialsRejected,
    DesiredWebhook,
    MalformedResponse,
    NotFound,
    ObservedWebhook,
    PermissionDenied,
    PermissionReport,
    RateLimited,
    RequestRejected,
    SigningSecretSource,
    Target,
    TransientProcessorError,
    WebhookChanges,
)
from procon.processors.checkout import scopes as scope_rules
from procon.processors.checkout import webhook as workflows
from procon.processors.checkout.hosts import (
    REAL_API,
    REAL_AUTH,
    BaseSetting,
    account_prefix,
    balances_base,
    is_previous_platform_key,
    mode_of_secret_key,
    per_mode,
    with_prefix,
)
from procon.processors.checkout.http import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    NOT_SENT,
    TRANSIENT_STATUSES,
    backoff_delay,
    is_idempotent,
    json_array,
    json_body,
    json_object,
    raise_for,
    request_id,
    unexpected,
)
from procon.processors.checkout.webhook import CheckoutTarget, CheckoutWorkflow
from procon.processors.checkout.workflows import observed_webhook, workflow_name
from procon.processors.responses import ResponseTooLarge, read_capped

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec

SECRET_KEY_FIELD = "secretKey"
ACCESS_KEY_ID_FIELD = "accessKeyId"
ACCESS_KEY_SECRET_FIELD = "accessKeySecret"

# A spec naming an event the kept catalog lacks reads it afresh, at most this often.
CATALOG_REREAD = 60.0
# Refresh a token this long before it expires.
TOKEN_MARGIN = 60.0
# ASSUMPTION: a token answer without expires_in lives an hour, the spec example's value; the real
# lifetime is not documented (docs/processors/checkout.md, "Access keys and tokens").
DEFAULT_TOKEN_LIFETIME = 3600.0


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float


class CheckoutDriver:
    """Talks to Checkout.com (or anything configured in its place) for any number of connections."""

    signing_secret_source: SigningSecretSource = "operator"
    permission_noun = "scope"

    def __init__(
        self,
        api_base: BaseSetting = None,
        auth_base: BaseSetting = None,
        *,
        timeout: float = 30.0,
        cache_ttl: float = 600.0,
        catalog_ttl: float = 86400.0,
        retries: int = 3,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_bases = per_mode(api_base, REAL_API)
        self._auth_bases = per_mode(auth_base, REAL_AUTH)
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._ttl = cache_ttl
        # The event-type catalog is Checkout.com's, not the key's: kept long (a drift check of an
        # unchanged connection reads it from here), read again when a spec names an event it lacks.
        self._catalog_ttl = catalog_ttl
        self._retries = retries
        self._backoff = (backoff_base, backoff_cap)
        self._draw = random.SystemRandom().random
        self._clock = clock
        self._sleep = sleep
        # Tokens by (fingerprint of access key id and secret, token host, scopes): a replaced
        # secret misses the cache at once instead of riding on the old secret's token.
        self._tokens: dict[tuple[str, str, frozenset[str]], _Token] = {}
        self._event_types: dict[tuple[str, str | None], tuple[float, list[dict[str, Any]]]] = {}
        # Scopes a secret key was seen to hold, by a one-way fingerprint of the key:
        # an unchanged key costs no probes until the entry expires. Missing scopes
        # are not cached, so a grant in the Dashboard is noticed on the next check.
        self._granted: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    # --- what the spec means at Checkout.com (pure) --------------------------------

    def target(self, spec: ProcessorConnectionSpec) -> Target:
        return workflows.target(spec)

    def desired_webhook(
        self, spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]
    ) -> DesiredWebhook:
        return workflows.desired(spec, tag, events)

    def compare(self, observed: ObservedWebhook, desired: DesiredWebhook) -> Comparison:
        return workflows.compare(observed, desired)

    def required_permission(self, denied: str | None, required: Sequence[str]) -> str | None:
        return denied

    def missing_permissions_advice(self, required: Sequence[str]) -> str | None:
        return None

    # --- plumbing ---------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _api(self, target: Target) -> str:
        return with_prefix(self._api_bases[target.mode], account_prefix(_client_id(target)))

    def _balances(self, target: Target) -> str | None:
        """The balances host: derived from the *unprefixed* API base, as it is never prefixed
        (docs/processors/checkout.md, "Hosts")."""
        return balances_base(self._api_bases[target.mode])

    def _auth(self, target: Target) -> str:
        return with_prefix(self._auth_bases[target.mode], account_prefix(_client_id(target)))

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried with jittered exponential backoff on 429, 5xx and transport errors.

        A request that is not idempotent (``POST /workflows``) is retried only when it cannot have
        been acted on: a connection that never opened, or a 429. After a 5xx or a dropped answer it
        may have been committed, and a retry could make a duplicate; so the 5xx is returned (``_call``
        raises it as transient) or the dropped answer raised as transient, the reconcile requeues,
        and the next one lists the workflows before it creates and cleans up what it finds.
        """
        path = urlsplit(url).path
        retry_unknown_outcome = is_idempotent(method, path)
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                # Each attempt waits for its account's turn (procon.processors.calls).
                async with calls.admitted() as call:
                    client = self._http()
                    streamed = await client.send(client.build_request(method, url, **kwargs), stream=True)
                    response = await read_capped(streamed, f"Checkout.com's answer to {method} {path}")
                    call.answered(response.status_code, response.headers)
            except ResponseTooLarge:
                metrics.api_call("checkout", method, path, "error")
                raise
            except httpx.TransportError as error:
                metrics.api_call("checkout", method, path, "error")
                if last or not (retry_unknown_outcome or isinstance(error, NOT_SENT)):
                    raise TransientProcessorError(
                        f"Checkout.com did not answer {method} {path}: {type(error).__name__}"
                    ) from None
            else:
                metrics.api_call("checkout", method, path, response.status_code)
                status = response.status_code
                # ASSUMPTION: a 429 is refused before anything is done, so even a create may be
                # retried after one (429 is rate limiting and concurrent duplicates, and nothing says
                # outright that nothing was committed: docs/processors/checkout.md, "Error answers").
                if status not in TRANSIENT_STATUSES or last or not (retry_unknown_outcome or status == 429):
                    return response
            await self._sleep(backoff_delay(attempt, *self._backoff, self._draw))
        raise AssertionError("unreachable")

    async def _authorization(self, credentials: Credentials, target: Target, scopes: Sequence[str]) -> str:
        if SECRET_KEY_FIELD in credentials.values:
            return f"Bearer {credentials[SECRET_KEY_FIELD]}"
        token = await self._token(credentials, target, scopes)
        return f"Bearer {token}"

    async def _token(self, credentials: Credentials, target: Target, scopes: Sequence[str]) -> str:
        """An OAuth token for exactly ``scopes``, cached until shortly before it expires."""
        auth = self._auth(target)
        cache_key = (_credential_fingerprint(credentials), auth, frozenset(scopes))
        now = self._clock()
        cached = self._tokens.get(cache_key)
        if cached and cached.expires_at > now:
            return cached.value
        response = await self._request_token(credentials, auth, scopes)
        if response.status_code == 200:
            body = json_object(response, "the token request")
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise MalformedResponse("Checkout.com answered the token request without an access_token")
            expires_in = body.get("expires_in")
            if expires_in is not None and (
                isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in < 0
            ):
                raise MalformedResponse(
                    "Checkout.com answered the token request with an expires_in that is not a number"
                )
            lifetime = float(expires_in or DEFAULT_TOKEN_LIFETIME)
            # Drop tokens that have expired (those of a replaced secret among them), and stop
            # redacting them: the register holds the tokens in use, not every token ever seen.
            for expired in [k for k, t in self._tokens.items() if t.expires_at <= now]:
                del self._tokens[expired]
                redaction.forget(_token_scope(expired))
            self._tokens[cache_key] = _Token(token, now + max(lifetime - TOKEN_MARGIN, 0.0))
            redaction.remember(_token_scope(cache_key), [token], shared=True)
            return token
        error = json_body(response).get("error")
        if error == "invalid_scope":
            raise PermissionDenied("Checkout.com refused the token: a requested scope is not granted", None)
        if response.status_code in (400, 401) and error in ("invalid_client", "unauthorized_client", None):
            raise CredentialsRejected(
                "InvalidCredentials", "Checkout.com refused the access key (invalid_client)"
            )
        if response.status_code == 406:
            raise CredentialsRejected(
                "InvalidCredentials", "Checkout.com does not know the account of checkout.clientId (406)"
            )
        if response.status_code == 429:
            raise RateLimited(
                f"Checkout.com rate limit (429) on the token request{request_id(response)}",
                calls.retry_after_seconds(response.headers),
            )
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientProcessorError(
                f"Checkout.com answered {response.status_code} to the token request{request_id(response)}"
            )
        raise unexpected(response, "token request")

    async def _request_token(
        self, credentials: Credentials, auth_base: str, scopes: Sequence[str]
    ) -> httpx.Response:
        """``POST /connect/token`` for ``scopes`` with HTTP Basic client authentication
        (docs/processors/checkout.md, "Access keys and tokens")."""
        basic = base64.b64encode(
            f"{credentials[ACCESS_KEY_ID_FIELD]}:{credentials[ACCESS_KEY_SECRET_FIELD]}".encode()
        ).decode()
        return await self._send(
            "POST",
            f"{auth_base}/connect/token",
            data={"grant_type": "client_credentials", "scope": " ".join(sorted(scopes))},
            headers={"Authorization": f"Basic {basic}"},
        )

    async def _known_to_other_mode(self, credentials: Credentials, target: Target) -> bool:
        """Whether the other mode's token host accepts the access key the target mode's refused.

        Sandbox and production are separate hosts (docs/processors/checkout.md, "Hosts"), so a sandbox key is
        simply unknown to production's token host, which answers ``invalid_client`` as for any bad
        key ("Access keys and tokens"). Asking the other host tells "wrong mode" from "invalid", at
        one request and only after a refusal. The other mode's account has another ``cli_`` id, so its
        unprefixed host is asked. ``invalid_scope`` also means the key authenticated there.
        Impossible (False) when both modes are configured to one host.
        """
        other = Mode.LIVE if target.mode is Mode.TEST else Mode.TEST
        if self._auth_bases[other] == self._auth_bases[target.mode]:
            return False
        try:
            response = await self._request_token(
                credentials, self._auth_bases[other], [scope_rules.WORKFLOWS_SCOPE]
            )
        except TransientProcessorError:
            return False
        if response.status_code == 200:
            # Never used, but a secret: one per access key, replaced by the next.
            token = str(json_body(response).get("access_token") or "")
            redaction.remember(
                f"checkout-token:other-mode:{_credential_fingerprint(credentials)}", [token], shared=True
            )
            return True
        return json_body(response).get("error") == "invalid_scope"

    async def _call(
        self,
        method: str,
        path: str,
        credentials: Credentials,
        target: Target,
        *,
        base: str | None = None,
        scopes: Sequence[str] = (scope_rules.WORKFLOWS_SCOPE,),
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Authorization": await self._authorization(credentials, target, scopes)}
        response = await self._send(method, (base or self._api(target)) + path, headers=headers, **kwargs)
        if response.status_code == 429:
            raise RateLimited(
                f"Checkout.com rate limit (429){request_id(response)}",
                calls.retry_after_seconds(response.headers),
            )
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientProcessorError(
                f"Checkout.com answered {response.status_code}{request_id(response)}"
            )
        return response

    # --- ProcessorDriver --------------------------------------------------------

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        if key:
            if not (data.get(key) or "").strip():
                raise CredentialsRejected("CredentialsKeyMissing", f"the Secret has no non-empty key {key!r}")
            return _checked({SECRET_KEY_FIELD: key}, data)
        if (data.get(SECRET_KEY_FIELD) or "").strip():
            return _checked({SECRET_KEY_FIELD: SECRET_KEY_FIELD}, data)
        if (data.get(ACCESS_KEY_ID_FIELD) or "").strip() and (
            data.get(ACCESS_KEY_SECRET_FIELD) or ""
        ).strip():
            return _checked(
                {ACCESS_KEY_ID_FIELD: ACCESS_KEY_ID_FIELD, ACCESS_KEY_SECRET_FIELD: ACCESS_KEY_SECRET_FIELD},
                data,
            )
        raise CredentialsRejected(
            "CredentialsKeyMissing",
            f"the Secret needs {SECRET_KEY_FIELD!r}, "
            f"or {ACCESS_KEY_ID_FIELD!r} and {ACCESS_KEY_SECRET_FIELD!r}",
        )

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        account = _client_id(target) or "classic"
        if SECRET_KEY_FIELD in credentials.values:
            if is_previous_platform_key(credentials[SECRET_KEY_FIELD]):
                raise CredentialsRejected(
                    "UnsupportedCredentials",
                    "the Secret holds a previous-platform (ABC) key: Workflows needs a current-platform "
                    "key (sk_sbox_... or sk_...) or an OAuth access key",
                )
            mode = mode_of_secret_key(credentials[SECRET_KEY_FIELD])
            if mode is None:
                raise CredentialsRejected(
                    "InvalidCredentials", "the Secret does not hold a Checkout.com secret key (sk_)"
                )
            if mode != target.mode:
                raise CredentialsRejected(
                    "ModeMismatch",
                    f"the key is a {'sandbox' if mode is Mode.TEST else 'production'} key "
                    f"but the connection's mode is {target.mode.value}",
                )
            # Validity shows in the scope probes: a key every probe refuses is invalid.
            return Account(id=account, mode=mode)
        # OAuth: the token endpoint of the connection's mode judges the access key; with
        # Checkout.com's own hosts (one per mode) its acceptance is what shows the mode.
        # Valid credentials without the workflows scope pass here: the permission check names it.
        try:
            await self._token(credentials, target, [scope_rules.WORKFLOWS_SCOPE])
        except PermissionDenied:
            pass
        except CredentialsRejected:
            if await self._known_to_other_mode(credentials, target):
                other = "production" if target.mode is Mode.TEST else "sandbox"
                raise CredentialsRejected(
                    "ModeMismatch",
                    f"the access key is a {other} key (Checkout.com's {other} token host accepts it) "
                    f"but the connection's mode is {target.mode.value}",
                ) from None
            raise
        return Account(id=account, mode=target.mode)

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        known, unknown = scope_rules.split_known(required)
        # procon itself needs to manage workflows, asked for or not.
        wanted = sorted({*known, scope_rules.WORKFLOWS_SCOPE})
        if SECRET_KEY_FIELD in credentials.values:
            return await self._probe_scopes(credentials, target, wanted, unknown)
        probes = 0

        async def grants(subset: Sequence[str]) -> bool:
            nonlocal probes
            probes += 1
            try:
                await self._token(credentials, target, subset)
            except PermissionDenied:
                return False
            return True

        missing = await scope_rules.find_missing(wanted, grants)
        return PermissionReport(
            missing=tuple(missing),
            unknown=tuple(unknown),
            granted=tuple(s for s in wanted if s not in missing),
            probes=probes,
        )

    async def _probe_scopes(
        self, credentials: Credentials, target: Target, wanted: Sequence[str], unknown: Sequence[str]
    ) -> PermissionReport:
        entity = _entities(target)[0] if _entities(target) else None
        cache_key = (_fingerprint(credentials[SECRET_KEY_FIELD]), self._api(target))
        cached = self._granted.get(cache_key)
        already = cached[1] if cached and cached[0] > self._clock() else frozenset()
        missing: list[str] = []
        unverifiable: list[str] = []
        granted: list[str] = [s for s in wanted if s in already]
        probes = 0
        for scope in wanted:
            if scope in already:
                continue
            probe = scope_rules.probe_for(scope, entity)
            base = self._balances(target) if probe is not None and probe.host == "balances" else None
            if probe is None or (probe.host == "balances" and base is None):
                unverifiable.append(scope)
                continue
            probes += 1
            response = await self._call(
                probe.method,
                probe.path,
                credentials,
                target,
                base=base,
                params=probe.params or None,
                json=probe.json,
            )
            # ASSUMPTION (401 or 403 for a missing scope is unconfirmed:
            # docs/processors/checkout.md, "Scopes and their probes"): both mean missing; anything else means
            # held.
            (missing if response.status_code in (401, 403) else granted).append(scope)
        if granted:
            now = self._clock()
            expires = cached[0] if cached and cached[0] > now else now + self._ttl
            self._granted = {k: v for k, v in self._granted.items() if v[0] > now}  # expired ones go
            self._granted[cache_key] = (expires, already | frozenset(granted))
        if missing and not granted:
            raise CredentialsRejected(
                "InvalidCredentials",
                "Checkout.com refused the secret key for every scope: it is invalid, expired, "
                "or holds none of " + ", ".join(missing),
            )
        return PermissionReport(
            missing=tuple(missing),
            unverifiable=tuple(unverifiable),
            unknown=tuple(unknown),
            granted=tuple(granted),
            probes=probes,
        )

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        """Event ids, with categories (``Gateway``, ``Disputes``...) expanded from the event types.

        A name the kept catalog lacks may be one Checkout.com added since: the catalog is read
        afresh once before the name is refused.
        """
        sources = await self._catalog(credentials, target)
        try:
            return self._resolved(sources, events)
        except RequestRejected:
            fresh = await self._catalog(credentials, target, fresh=True)
            if fresh is sources:
                raise
            return self._resolved(fresh, events)

    def _resolved(self, sources: list[dict[str, Any]], events: Sequence[str]) -> tuple[str, ...]:
        by_name = {str(s.get("display_name", "")).casefold(): s for s in sources}
        known = {str(e["id"]) for s in sources for e in s.get("events") or []}
        resolved: set[str] = set()
        for event in events:
            source = by_name.get(event.casefold())
            if source is not None:
                resolved.update(str(e["id"]) for e in source.get("events") or [])
            elif event in known:
                resolved.add(event)
            else:
                raise RequestRejected(
                    f"{event!r} is neither a Checkout.com event type nor a category "
                    f"({', '.join(sorted(str(s.get('display_name')) for s in sources))})"
                )
        return tuple(sorted(resolved))

    async def _catalog(
        self, credentials: Credentials, target: Target, *, fresh: bool = False
    ) -> list[dict[str, Any]]:
        """The event types, kept per host and client id; ``fresh``: unless read within a minute."""
        cache_key = (self._api(target), _client_id(target))
        cached = self._event_types.get(cache_key)
        now = self._clock()
        if cached and cached[0] > now:
            read_at = cached[0] - self._catalog_ttl
            if not fresh or now - read_at < CATALOG_REREAD:
                return cached[1]
        response = await self._call("GET", "/workflows/event-types", credentials, target)
        raise_for(response, "listing event types")
        sources = _event_sources(json_array(response, "listing event types"))
        now = self._clock()
        self._event_types = {k: v for k, v in self._event_types.items() if v[0] > now}  # expired ones go
        self._event_types[cache_key] = (now + self._catalog_ttl, sources)
        return sources

    def _source_map(self, sources: list[dict[str, Any]], events: Sequence[str]) -> dict[str, list[str]]:
        wanted = set(events)
        mapping: dict[str, list[str]] = {}
        for source in sources:
            ids = sorted(str(e["id"]) for e in source.get("events") or [] if str(e["id"]) in wanted)
            if ids:
                mapping[str(source["id"])] = ids
        return mapping

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        """Every workflow, each read in full: the list shows only id, name and active
        (docs/processors/checkout.md, "Workflows API").

        Nothing is cached across calls, ``owner`` notwithstanding: a workflow's URL shows only in
        its details, and nothing in the list changes when someone points a foreign workflow at
        our URL, so a cached copy would hide that conflict until it expired. The price is one
        ``GET /workflows/{id}`` per workflow on the account per list.
        """
        del owner  # see the docstring
        response = await self._call("GET", "/workflows", credentials, target)
        raise_for(response, "listing workflows")
        # ASSUMPTION: one answer holds every workflow; the spec has no pagination parameter
        # (whether GET /workflows paginates is unconfirmed: docs/processors/checkout.md, "Workflows API"). Its
        # size is capped like any answer.
        listing = json_object(response, "listing workflows")
        # The documented shape is {"data": [...]} (the same section); anything else is not a listing and
        # must never read as "no workflows", or procon would create a duplicate.
        ids: list[str] = []
        items = listing.get("data")
        for item in items if isinstance(items, list) else [None]:
            workflow_id = item.get("id") if isinstance(item, Mapping) else None
            if not isinstance(workflow_id, str) or not workflow_id:
                raise MalformedResponse("Checkout.com listed workflows without a list of objects with ids")
            ids.append(workflow_id)
        observed: list[ObservedWebhook] = []
        for workflow_id in ids:
            try:
                observed.append(await self._get_workflow(credentials, target, workflow_id))
            except NotFound:
                continue  # deleted between the list and the read
        return observed

    async def _get_workflow(
        self, credentials: Credentials, target: Target, workflow_id: str
    ) -> CheckoutWorkflow:
        response = await self._call("GET", f"/workflows/{workflow_id}", credentials, target)
        raise_for(response, f"reading workflow {workflow_id}")
        return observed_webhook(json_object(response, f"reading workflow {workflow_id}"))

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        # Workflows take no idempotency key (docs/processors/checkout.md, "Idempotency and retries"): a lost
        # answer leaves a workflow that the next reconcile finds by its name and deletes.
        wanted = workflows.as_desired(desired)
        if not wanted.signing_secret:
            raise ValueError("a Checkout.com workflow needs the signing key procon chose")
        sources = await self._catalog(credentials, target)
        body = {
            "name": workflow_name(wanted.metadata),
            "active": True,
            "conditions": self._conditions(
                sources, wanted.events, wanted.entities, wanted.processing_channels
            ),
            "actions": [
                {
                    "type": "webhook",
                    "url": wanted.url,
                    "signature": {"method": "HMACSHA256", "key": wanted.signing_secret},
                }
            ],
        }
        response = await self._call("POST", "/workflows", credentials, target, json=body)
        raise_for(response, "creating the workflow")
        workflow_id = json_object(response, "creating the workflow").get("id")
        if not isinstance(workflow_id, str) or not workflow_id:
            # Created, but which one is unknown: the next reconcile finds it by its name.
            raise MalformedResponse("Checkout.com created the workflow but answered without its id")
        detail = await self._get_workflow(credentials, target, workflow_id)
        return CreatedWebhook(webhook=detail, signing_secret=wanted.signing_secret)

    def _conditions(
        self,
        sources: list[dict[str, Any]],
        events: Sequence[str],
        entities: Sequence[str],
        channels: Sequence[str],
    ) -> list[dict[str, Any]]:
        conditions: list[dict[str, Any]] = [{"type": "event", "events": self._source_map(sources, events)}]
        if entities:
            conditions.append({"type": "entity", "entities": list(entities)})
        if channels:
            conditions.append({"type": "processing_channel", "processing_channels": list(channels)})
        return conditions

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        wanted = workflows.as_changes(changes)
        current = await self._get_workflow(credentials, target, webhook_id)
        if wanted.enabled is not None or wanted.metadata is not None:
            patch: dict[str, Any] = {"name": workflow_name(wanted.metadata or current.metadata)}
            if wanted.enabled is not None:
                patch["active"] = wanted.enabled
            response = await self._call("PATCH", f"/workflows/{webhook_id}", credentials, target, json=patch)
            raise_for(response, f"updating workflow {webhook_id}")
        if wanted.events is not None:
            sources = await self._catalog(credentials, target)
            await self._put_condition(
                credentials, target, current, "event", {"events": self._source_map(sources, wanted.events)}
            )
        if wanted.entities is not None:
            await self._put_condition(
                credentials, target, current, "entity", {"entities": list(wanted.entities)}
            )
        if wanted.processing_channels is not None:
            await self._put_condition(
                credentials,
                target,
                current,
                "processing_channel",
                {"processing_channels": list(wanted.processing_channels)},
            )
        if wanted.signing_secret is not None:
            action_id = current.parts.get("action")
            body = {
                "type": "webhook",
                "url": current.url,
                "signature": {"method": "HMACSHA256", "key": wanted.signing_secret},
            }
            response = await self._call(
                "PUT", f"/workflows/{webhook_id}/actions/{action_id}", credentials, target, json=body
            )
            raise_for(response, f"updating the action of workflow {webhook_id}")
        return await self._get_workflow(credentials, target, webhook_id)

    async def _put_condition(
        self,
        credentials: Credentials,
        target: Target,
        current: CheckoutWorkflow,
        kind: str,
        fields: dict[str, Any],
    ) -> None:
        condition_id = current.parts.get(f"condition:{kind}")
        empty = not next(iter(fields.values()))
        if condition_id and empty:
            response = await self._call(
                "DELETE", f"/workflows/{current.id}/conditions/{condition_id}", credentials, target
            )
        elif condition_id:
            response = await self._call(
                "PUT",
                f"/workflows/{current.id}/conditions/{condition_id}",
                credentials,
                target,
                json={"type": kind, **fields},
            )
        elif not empty:
            response = await self._call(
                "POST",
                f"/workflows/{current.id}/conditions",
                credentials,
                target,
                json={"type": kind, **fields},
            )
        else:
            return
        raise_for(response, f"updating the {kind} condition of workflow {current.id}")

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        response = await self._call("DELETE", f"/workflows/{webhook_id}", credentials, target)
        raise_for(response, f"deleting workflow {webhook_id}")

    # --- cache ------------------------------------------------------------------

    def forget(self, credentials: Credentials, target: Target) -> None:
        """Drop the tokens and scopes cached for these credentials, and the target's event catalog."""
        values = credentials.values
        if SECRET_KEY_FIELD in values:
            printed = _fingerprint(values[SECRET_KEY_FIELD])
            self._granted = {k: v for k, v in self._granted.items() if k[0] != printed}
        if ACCESS_KEY_ID_FIELD in values and ACCESS_KEY_SECRET_FIELD in values:
            printed = _credential_fingerprint(credentials)
            for dropped in [k for k in self._tokens if k[0] == printed]:
                del self._tokens[dropped]
                redaction.forget(_token_scope(dropped))  # no longer used, so never in a message
        self._event_types.pop((self._api(target), _client_id(target)), None)

    def cached_entries(self) -> int:
        return len(self._tokens) + len(self._granted) + len(self._event_types)


def _client_id(target: Target) -> str | None:
    return target.client_id if isinstance(target, CheckoutTarget) else None


def _entities(target: Target) -> tuple[str, ...]:
    return target.entities if isinstance(target, CheckoutTarget) else ()


def _event_sources(sources: list[Any]) -> list[dict[str, Any]]:
    """The event types answer, checked once so everything that reads it may index it freely."""
    for source in sources:
        if not (
            isinstance(source, dict)
            and isinstance(source.get("id"), str)
            and isinstance(source.get("events") or [], list)
            and all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in source.get("events") or [])
        ):
            raise MalformedResponse(
                "Checkout.com listed event types that are not sources with ids and events with ids"
            )
    return sources


def _checked(fields: Mapping[str, str], data: Mapping[str, str]) -> Credentials:
    """Credentials from the Secret's ``data``: each driver field from the Secret key it maps to, checked."""
    values: dict[str, str] = {}
    stripped: list[str] = []
    for name, secret_key in fields.items():
        checked = key_material.check(secret_key, data[secret_key])
        values[name] = checked.value
        if checked.stripped:
            stripped.append(secret_key)
    return Credentials(values, stripped=tuple(stripped))


def _fingerprint(key: str) -> str:
    """A one-way stand-in for a credential in cache keys: equal for equal keys, never the key itself."""
    return hashlib.sha256(b"procon-checkout-key:" + key.encode()).hexdigest()[:24]


def _token_scope(cache_key: tuple[str, str, frozenset[str]]) -> str:
    """The redaction scope of a cached token: procon obtained it, so it is redacted everywhere."""
    fingerprint, auth, scopes = cache_key
    return f"checkout-token:{fingerprint}:{_fingerprint(auth + ' ' + ' '.join(sorted(scopes)))}"


def _credential_fingerprint(credentials: Credentials) -> str:
    """The fingerprint of an access key's id *and* secret: a new secret is a new cache entry."""
    return _fingerprint(f"{credentials[ACCESS_KEY_ID_FIELD]}\0{credentials[ACCESS_KEY_SECRET_FIELD]}")

"""The Adyen driver: httpx against the Management API v3, one API key per connection.

Adyen's Python library is synchronous only (docs/processors/adyen.md,
"Client libraries"), so the driver speaks HTTP itself with one
``httpx.AsyncClient`` shared by all connections. The hosts come from operator
configuration only (:mod:`procon.processors.adyen.settings`), per mode.

What it does with Adyen:

- verify: ``GET /me`` on the host of the connection's mode. A key that host
  refuses but the other environment's host accepts is of the wrong
  environment; a credential switched off is invalid. The answer (its roles)
  is kept for a while by a one-way fingerprint of the key, so an unchanged
  drift check costs no ``/me``.
- roles: compared with :mod:`procon.processors.adyen.roles`; no call beyond ``/me``.
- webhooks: at the company or merchant level the spec names, every page.
  Ownership is the description (:mod:`procon.processors.adyen.webhooks`).
- the HMAC key: Adyen generates it (``POST .../generateHmac``); the driver
  creates a webhook *inactive*, has its key generated, and switches it on
  only once the caller has published the key: nothing is delivered signed
  with a key the receiver does not have (docs/processors/adyen.md, "Creating
  a webhook safely"). Which key a webhook has shows in its
  ``hmacKeyCheckValue``, so a key changed outside procon is seen without
  the key ever being read back.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from procon import metrics
from procon.api.schema import Mode
from procon.processors import calls, key_material
from procon.processors.adyen import roles as role_rules
from procon.processors.adyen import webhook as webhooks
from procon.processors.adyen.http import (
    NOT_FOUND_CODE,
    NOT_SENT,
    TRANSIENT_STATUSES,
    backoff_delay,
    error_code,
    invalid_fields,
    is_adyens,
    json_object,
    not_adyens,
    request_id,
    too_many_requests,
    unexpected,
)
from procon.processors.adyen.settings import REAL_API
from procon.processors.adyen.webhook import (
    AdyenChanges,
    AdyenDesired,
    AdyenTarget,
    AdyenWebhook,
    as_desired,
    create_body,
    event_codes,
    parse_webhook,
)
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
from procon.processors.responses import ResponseTooLarge, read_capped
from procon.redaction import redact

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec

API_KEY_FIELD = "apiKey"
HEADER = "X-API-Key"
# Adyen's maximum page size (docs/processors/adyen.md, "Listing and pagination").
PAGE_SIZE = 100
# A listing that goes on past this many pages (10,000 webhooks) is not an answer procon can use.
MAX_PAGES = 100
# generateHmac answers 64 hex digits (docs/processors/adyen.md, "HMAC keys"); procon accepts any
# even-length hex key of 16 to 128 bytes, since a receiver hex-decodes it, and nothing else.
_HMAC_KEY = re.compile(r"^(?:[0-9A-Fa-f]{2}){16,128}$")

LEVELS = ("companies", "merchants")


@dataclass(frozen=True)
class SigningKey:
    """A key Adyen just generated for a webhook, and the webhook as it is now (its check value)."""

    key: str = field(repr=False)
    webhook: AdyenWebhook


@dataclass(frozen=True)
class _Me:
    """What ``GET /me`` says about the credential behind a key; ``roles`` None when /me was refused."""

    roles: tuple[str, ...] | None
    username: str = ""
    level: str | None = None  # "companies" | "merchants" when the answer's links say


class AdyenDriver:
    """Talks to Adyen (or anything configured in its place) for any number of connections."""

    # Adyen generates the key and shows it once, like Stripe's secret: the reconciler publishes what
    # create_webhook returns, then applies what compare() still asks for (switching it on).
    signing_secret_source: SigningSecretSource = "processor"
    permission_noun = "role"

    def __init__(
        self,
        api_bases: Mapping[Mode, str] | None = None,
        *,
        timeout: float = 30.0,
        cache_ttl: float = 600.0,
        retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        bases = dict(REAL_API)
        bases.update(api_bases or {})
        self._bases = {mode: base.rstrip("/") for mode, base in bases.items()}
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._ttl = cache_ttl
        self._retries = retries
        self._draw = random.SystemRandom().random
        self._clock = clock
        self._sleep = sleep
        # GET /me answers by (fingerprint of the key, host): an unchanged key costs no /me until the
        # entry expires; a replaced key misses at once.
        self._me: dict[tuple[str, str], tuple[float, _Me]] = {}

    # --- plumbing ---------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        route: str,
        credentials: Credentials,
        *,
        retry_unknown_outcome: bool,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried with jittered exponential backoff on 429, 5xx and transport errors.

        ``route`` is the path with its ids replaced (``/companies/{account}/webhooks/{id}``): what
        metrics count, never an account name or an id. A request that may have been acted on when
        its answer is lost (creating a webhook: Adyen documents no idempotency for it) is retried
        only when it cannot have been: a connection never opened, or a 429. After a 5xx the next
        reconcile lists first and adopts what the create left.
        """
        headers = {HEADER: credentials[API_KEY_FIELD], "Accept": "application/json"}
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                # Each attempt waits for its account's turn (procon.processors.calls).
                async with calls.admitted() as call:
                    client = self._http()
                    request = client.build_request(method, url, headers=headers, **kwargs)
                    streamed = await client.send(request, stream=True)
                    response = await read_capped(streamed, f"Adyen's answer to {method} {route}")
                    call.answered(
                        response.status_code, response.headers, rate_limited=too_many_requests(response)
                    )
            except ResponseTooLarge:
                metrics.api_call("adyen", method, route, "error")
                raise
            except httpx.TransportError as error:
                metrics.api_call("adyen", method, route, "error")
                if last or not (retry_unknown_outcome or isinstance(error, NOT_SENT)):
                    raise TransientProcessorError(
                        f"Adyen did not answer {method} {route}: {type(error).__name__}"
                    ) from None
            else:
                metrics.api_call("adyen", method, route, response.status_code)
                status = response.status_code
                # ASSUMPTION: a 429 is refused before anything is done, so even a create may be
                # retried after one (docs/processors/adyen.md, "Rate limits": none are published).
                if status not in TRANSIENT_STATUSES or last or not (retry_unknown_outcome or status == 429):
                    return response
            await self._sleep(backoff_delay(attempt, self._draw))
        raise AssertionError("unreachable")

    async def _call(
        self,
        method: str,
        target: Target,
        path: str,
        route: str,
        credentials: Credentials,
        *,
        retry_unknown_outcome: bool = True,
        base: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        response = await self._send(
            method,
            (base or self._bases[target.mode]) + path,
            route,
            credentials,
            retry_unknown_outcome=retry_unknown_outcome,
            **kwargs,
        )
        if too_many_requests(response):
            raise RateLimited(
                f"Adyen rate limit ({response.status_code}) on {method} {route}{request_id(response)}",
                calls.retry_after_seconds(response.headers),
            )
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientProcessorError(
                f"Adyen answered {response.status_code} to {method} {route}{request_id(response)}"
            )
        return response

    def _refusal(
        self,
        response: httpx.Response,
        credentials: Credentials,
        target: AdyenTarget,
        doing: str,
        *,
        writes: bool,
    ) -> None:
        """Raise what a 401 or 403 means; anything else is left to the caller."""
        status = response.status_code
        if status not in (401, 403):
            return
        if not is_adyens(response):
            raise not_adyens(response, doing)
        cached = self._me.get((_fingerprint(credentials[API_KEY_FIELD]), self._bases[target.mode]))
        self._forget_key(credentials)  # whatever /me said is stale now
        needed = role_rules.WEBHOOKS_READ_WRITE if writes else role_rules.WEBHOOKS_READ
        if (
            status == 403
            and cached is not None
            and any(role_rules.grants(r, needed) for r in cached[1].roles or ())
        ):
            # Adyen refuses a missing role and an account out of the credential's reach alike
            # (docs/processors/adyen.md, "Errors"); /me just showed the role held, so it is the account.
            raise CredentialsRejected(
                "AccountInaccessible",
                f"Adyen refused {doing} (403 {error_code(response)}) though the API credential holds "
                f"{needed!r}: it has no access to {target.described}",
            )
        if status == 401:
            raise CredentialsRejected(
                "InvalidCredentials",
                f"Adyen refused the API key while {doing} ({error_code(response)}): it is invalid, revoked, "
                "or its credential is switched off",
            )
        raise PermissionDenied(
            f"Adyen refused {doing} (403 {error_code(response)}): the API credential lacks the role "
            f"{needed!r} or access to {target.described}",
            needed,
        )

    # --- ProcessorDriver: pure ----------------------------------------------------

    def target(self, spec: ProcessorConnectionSpec) -> Target:
        return webhooks.target(spec)

    def desired_webhook(
        self, spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]
    ) -> DesiredWebhook:
        return webhooks.desired(spec, tag, events)

    def compare(self, observed: ObservedWebhook, desired: DesiredWebhook) -> Comparison:
        return webhooks.compare(observed, desired)

    def required_permission(self, denied: str | None, required: Sequence[str]) -> str | None:
        """A refused listing names "Webhooks read"; what procon needs, and what to grant, is the write
        (which grants the read)."""
        if denied and role_rules.role_key(denied) == role_rules.role_key(role_rules.WEBHOOKS_READ):
            return role_rules.WEBHOOKS_READ_WRITE
        return denied

    def missing_permissions_advice(self, required: Sequence[str]) -> str | None:
        return (
            "Add the roles to the API credential in the Customer Area (Developers > API credentials), "
            "or with the Management API's apiCredentials endpoints"
        )

    # --- ProcessorDriver: calls ----------------------------------------------------

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        field_name = key or API_KEY_FIELD
        if not (data.get(field_name) or "").strip():
            raise CredentialsRejected(
                "CredentialsKeyMissing", f"the Secret has no non-empty key {field_name!r} (an Adyen API key)"
            )
        checked = key_material.check(field_name, data[field_name])
        return Credentials({API_KEY_FIELD: checked.value}, stripped=(field_name,) if checked.stripped else ())

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        """Event codes as written; only their shape is checked: Adyen adds codes, and receivers must
        accept codes they do not know (docs/processors/adyen.md, "Event codes")."""
        try:
            return event_codes(events)
        except ValueError as error:
            raise RequestRejected(redact(str(error))) from None

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        adyen = _adyen(target)
        if not adyen.account:
            raise CredentialsRejected(
                "AdyenAccountMissing",
                "spec.adyen must name the account the webhook lives on: companyAccount or merchantAccount",
            )
        me = await self._read_me(credentials, adyen)
        if me.level is not None and me.level != adyen.level and adyen.level == "companies":
            # ASSUMPTION: a merchant-level credential reaches no company's webhooks
            # (docs/processors/adyen.md, "API credentials and roles").
            raise CredentialsRejected(
                "AccountInaccessible",
                f"the API key belongs to a merchant-level credential ({me.username}); managing the "
                f"webhooks of {adyen.described} needs a company-level credential",
            )
        return Account(id=adyen.account, mode=adyen.mode)

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        adyen = _adyen(target)
        me = await self._read_me(credentials, adyen)
        checked = role_rules.check(me.roles or (), required, needed=(role_rules.WEBHOOKS_READ_WRITE,))
        if checked.missing or checked.unknown:
            # Missing roles are not cached: a grant in the Customer Area is seen on the next check.
            self._forget_key(credentials)
        return PermissionReport(missing=checked.missing, unknown=checked.unknown, granted=checked.granted)

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        del owner  # every call lists afresh: a cached list would hide a foreign webhook at our URL
        return list(await self.list_configurations(credentials, _adyen(target)))

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        """Create the webhook switched off and have Adyen generate its HMAC key; return both.

        The webhook delivers nothing until the caller, having published the key, applies what
        :meth:`compare` still asks for (switching it on, recording the key's check value), so no
        event is ever signed with a key the receiver lacks (docs/processors/adyen.md, "Creating a
        webhook safely").

        ``idempotency_key`` is not sent: Adyen documents none for the Management API
        (docs/processors/adyen.md, "Idempotency"). A replay is a new create; what an interrupted
        create left is an owned, switched-off webhook whose key is not published, which the
        planner deletes.
        """
        del idempotency_key
        adyen = _adyen(target)
        created = await self.create_inactive(credentials, adyen, as_desired(desired))
        signing = await self.generate_key(credentials, adyen, created.id)
        return CreatedWebhook(webhook=signing.webhook, signing_secret=signing.key, replayed=False)

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        if changes.signing_secret is not None:
            # The planner asks for a key only where procon chooses it; Adyen generates its own.
            raise ValueError("Adyen generates HMAC keys itself: a webhook cannot be given one")
        fields = changes.fields if isinstance(changes, AdyenChanges) else {}
        adyen = _adyen(target)
        if not fields:
            return await self.get(credentials, adyen, webhook_id)
        return await self.patch(credentials, adyen, webhook_id, fields)

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        adyen = _adyen(target)
        response = await self._call(
            "DELETE", adyen, self._webhook_path(adyen, webhook_id), self._route(adyen, "/{id}"), credentials
        )
        self._refusal(response, credentials, adyen, f"deleting webhook {_shown(webhook_id)}", writes=True)
        self._raise_if_gone(response, webhook_id)
        if response.status_code >= 300:
            raise self._rejected_or_unexpected(response, f"deleting webhook {_shown(webhook_id)}")

    # --- Adyen's own operations ---------------------------------------------------

    async def list_configurations(self, credentials: Credentials, target: AdyenTarget) -> list[AdyenWebhook]:
        """Every webhook at the target's account, every page (procon's own and everyone else's)."""
        found: dict[str, AdyenWebhook] = {}
        page = 1
        while True:
            response = await self._call(
                "GET",
                target,
                self._account_path(target) + "/webhooks",
                self._route(target, ""),
                credentials,
                params={"pageNumber": str(page), "pageSize": str(PAGE_SIZE)},
            )
            self._refusal(
                response, credentials, target, f"listing the webhooks of {target.described}", writes=False
            )
            if response.status_code == 422 and error_code(response) == NOT_FOUND_CODE:
                raise CredentialsRejected(
                    "AccountInaccessible",
                    f"Adyen does not know {target.described}, or the API key's credential cannot see it "
                    f"({NOT_FOUND_CODE})",
                )
            if response.status_code != 200:
                raise self._rejected_or_unexpected(response, f"listing the webhooks of {target.described}")
            listing = json_object(response, "the webhook listing")
            pages = listing.get("pagesTotal")
            items = listing.get("data")
            if isinstance(pages, bool) or not isinstance(pages, int) or pages < 0:
                raise MalformedResponse("Adyen listed webhooks without a number of pages (pagesTotal)")
            if items is None and pages == 0:
                items = []
            if not isinstance(items, list):
                # Never "no webhooks": procon would create a duplicate.
                raise MalformedResponse("Adyen listed webhooks without a list of them (data)")
            for item in items:
                webhook = parse_webhook(item)
                found.setdefault(webhook.id, webhook)
            # Stop at pagesTotal rather than wait for an empty page; an empty page ends it early
            # (webhooks deleted since the first page moved the rest up).
            if page >= pages or not items:
                return list(found.values())
            page += 1
            if page > MAX_PAGES:
                raise MalformedResponse(f"Adyen's webhook listing did not end after {MAX_PAGES} pages")

    async def get(self, credentials: Credentials, target: AdyenTarget, webhook_id: str) -> AdyenWebhook:
        doing = f"reading webhook {_shown(webhook_id)}"
        response = await self._call(
            "GET", target, self._webhook_path(target, webhook_id), self._route(target, "/{id}"), credentials
        )
        self._refusal(response, credentials, target, doing, writes=False)
        self._raise_if_gone(response, webhook_id)
        if response.status_code != 200:
            raise self._rejected_or_unexpected(response, doing)
        return self._parsed_as(webhook_id, json_object(response, doing))

    async def create_inactive(
        self, credentials: Credentials, target: AdyenTarget, desired: AdyenDesired
    ) -> AdyenWebhook:
        """Create the webhook switched off: it delivers nothing until :meth:`patch` turns it on."""
        doing = f"creating a webhook on {target.described}"
        response = await self._call(
            "POST",
            target,
            self._account_path(target) + "/webhooks",
            self._route(target, ""),
            credentials,
            retry_unknown_outcome=False,
            json=create_body(desired),
        )
        self._refusal(response, credentials, target, doing, writes=True)
        if response.status_code == 422 and error_code(response) == NOT_FOUND_CODE:
            raise CredentialsRejected(
                "AccountInaccessible", f"Adyen does not know {target.described} ({NOT_FOUND_CODE})"
            )
        # Adyen answers a create with 200 (docs/processors/adyen.md, "Webhook configurations").
        if response.status_code not in (200, 201):
            raise self._rejected_or_unexpected(response, doing)
        body = json_object(response, doing)
        if not isinstance(body.get("id"), str) or not body.get("id"):
            # Created, but which one is unknown: the next reconcile finds it by its marker.
            raise MalformedResponse("Adyen created the webhook but answered without its id")
        return parse_webhook(body)

    async def generate_key(
        self, credentials: Credentials, target: AdyenTarget, webhook_id: str
    ) -> SigningKey:
        """Have Adyen generate a new HMAC key for the webhook; the old one stops being used.

        Retried like a read: if an earlier attempt generated a key whose answer was lost, the
        next one replaces it, and the key answered last is the webhook's (docs/processors/adyen.md,
        "HMAC keys"). The webhook is read afterwards for the new key's check value.
        """
        doing = f"generating the HMAC key of webhook {_shown(webhook_id)}"
        response = await self._call(
            "POST",
            target,
            self._webhook_path(target, webhook_id) + "/generateHmac",
            self._route(target, "/{id}/generateHmac"),
            credentials,
        )
        self._refusal(response, credentials, target, doing, writes=True)
        self._raise_if_gone(response, webhook_id)
        if response.status_code != 200:
            raise self._rejected_or_unexpected(response, doing)
        key = json_object(response, doing).get("hmacKey")
        if not isinstance(key, str) or not _HMAC_KEY.match(key):
            raise MalformedResponse(f"Adyen answered {doing} without an HMAC key of hex digits")
        webhook = await self.get(credentials, target, webhook_id)
        if webhook.check_value is None:
            raise MalformedResponse(
                f"Adyen generated an HMAC key for webhook {_shown(webhook_id)} "
                "but reports no hmacKeyCheckValue"
            )
        return SigningKey(key, webhook)

    async def patch(
        self, credentials: Credentials, target: AdyenTarget, webhook_id: str, fields: Mapping[str, Any]
    ) -> AdyenWebhook:
        """Change ``fields`` of the webhook; Adyen answers with the whole configuration."""
        doing = f"updating webhook {_shown(webhook_id)}"
        response = await self._call(
            "PATCH",
            target,
            self._webhook_path(target, webhook_id),
            self._route(target, "/{id}"),
            credentials,
            json=dict(fields),
        )
        self._refusal(response, credentials, target, doing, writes=True)
        self._raise_if_gone(response, webhook_id)
        if response.status_code != 200:
            raise self._rejected_or_unexpected(response, doing)
        return self._parsed_as(webhook_id, json_object(response, doing))

    # --- /me ------------------------------------------------------------------------

    async def _read_me(self, credentials: Credentials, target: AdyenTarget) -> _Me:
        base = self._bases[target.mode]
        cache_key = (_fingerprint(credentials[API_KEY_FIELD]), base)
        cached = self._me.get(cache_key)
        now = self._clock()
        if cached and cached[0] > now:
            return cached[1]
        response = await self._call("GET", target, "/me", "/me", credentials)
        if response.status_code == 401:
            if not is_adyens(response):
                raise not_adyens(response, "GET /me")
            if await self._known_to_other_environment(credentials, target):
                other = Mode.LIVE if target.mode is Mode.TEST else Mode.TEST
                raise CredentialsRejected(
                    "ModeMismatch",
                    f"the API key is a {other.value} key (Adyen's {other.value} host accepts it) but the "
                    f"connection's mode is {target.mode.value}",
                )
            raise CredentialsRejected(
                "InvalidCredentials",
                f"Adyen refused the API key ({error_code(response)}): it is invalid or revoked, or was "
                f"made in another environment",
            )
        if response.status_code == 403:
            if not is_adyens(response):
                raise not_adyens(response, "GET /me")
            # ASSUMPTION: a key without any Management API role is refused /me with 403: valid, but
            # holding none of the roles procon needs (docs/processors/adyen.md, "The credential
            # behind a key (GET /me)").
            return _Me(roles=None)
        if response.status_code != 200:
            raise unexpected(response, "to GET /me")
        me = _parse_me(json_object(response, "GET /me"))
        self._me = {k: v for k, v in self._me.items() if v[0] > now}  # expired ones go
        self._me[cache_key] = (now + self._ttl, me)
        return me

    async def _known_to_other_environment(self, credentials: Credentials, target: AdyenTarget) -> bool:
        """Whether the other environment's host accepts the key the target's refused.

        Test and live keys come from separate Customer Areas, each working with its own hosts only
        (docs/processors/adyen.md, "Test and live"). Asking the other host tells "wrong
        environment" from "invalid", at one request and only after a refusal. Impossible (False)
        when both modes are configured to one host.
        """
        other = Mode.LIVE if target.mode is Mode.TEST else Mode.TEST
        if self._bases[other] == self._bases[target.mode]:
            return False
        try:
            response = await self._call("GET", target, "/me", "/me", credentials, base=self._bases[other])
        except TransientProcessorError:
            return False
        # A 403 there is a key that host knows, without a Management API role.
        return response.status_code == 200 or (response.status_code == 403 and is_adyens(response))

    def _forget_key(self, credentials: Credentials) -> None:
        printed = _fingerprint(credentials[API_KEY_FIELD])
        self._me = {k: v for k, v in self._me.items() if k[0] != printed}

    # --- paths and answers ----------------------------------------------------------

    @staticmethod
    def _account_path(target: AdyenTarget) -> str:
        if target.level not in LEVELS or not target.account:
            raise ValueError(f"not an Adyen account: {target.level}/{target.account}")
        return f"/{target.level}/{quote(target.account, safe='')}"

    def _webhook_path(self, target: AdyenTarget, webhook_id: str) -> str:
        return f"{self._account_path(target)}/webhooks/{quote(webhook_id, safe='')}"

    @staticmethod
    def _route(target: AdyenTarget, rest: str) -> str:
        return f"/{target.level}/{{account}}/webhooks{rest}"

    @staticmethod
    def _raise_if_gone(response: httpx.Response, webhook_id: str) -> None:
        """An unknown webhook id answers 422 with ``30_112`` (or 404, for a path Adyen cannot route)."""
        status = response.status_code
        if (status == 422 and error_code(response) == NOT_FOUND_CODE) or (
            status == 404 and is_adyens(response)
        ):
            raise NotFound(f"Adyen: webhook {_shown(webhook_id)} is not there")

    @staticmethod
    def _rejected_or_unexpected(response: httpx.Response, doing: str) -> Exception:
        status = response.status_code
        if status in (400, 422) and is_adyens(response):
            fields = invalid_fields(response)
            detail = f"{error_code(response)}" + (f", invalid: {', '.join(fields)}" if fields else "")
            return RequestRejected(redact(f"Adyen rejected {doing} ({detail}){request_id(response)}"))
        if status >= 400 and not is_adyens(response):
            return not_adyens(response, doing)
        return unexpected(response, doing)

    @staticmethod
    def _parsed_as(webhook_id: str, body: Mapping[str, Any]) -> AdyenWebhook:
        webhook = parse_webhook(body)
        if webhook.id != webhook_id:
            raise MalformedResponse(f"Adyen answered for webhook {_shown(webhook_id)} with another webhook")
        return webhook

    # --- cache ------------------------------------------------------------------------

    def forget(self, credentials: Credentials, target: Target) -> None:
        """Drop what /me said about these credentials."""
        if API_KEY_FIELD in credentials.values:
            self._forget_key(credentials)

    def cached_entries(self) -> int:
        return len(self._me)


def _adyen(target: Target) -> AdyenTarget:
    if not isinstance(target, AdyenTarget):
        raise TypeError("the Adyen driver needs an AdyenTarget (built from spec.adyen)")
    return target


def _parse_me(body: Mapping[str, Any]) -> _Me:
    """The credential /me describes; :class:`MalformedResponse` when the answer is not one, and
    :class:`CredentialsRejected` when the credential is switched off."""
    roles = body.get("roles")
    active = body.get("active")
    if (
        not isinstance(roles, list)
        or not all(isinstance(r, str) for r in roles)
        or not isinstance(active, bool)
    ):
        raise MalformedResponse("Adyen answered GET /me without the credential's roles and state")
    if not active:
        raise CredentialsRejected(
            "InvalidCredentials",
            "the API key's credential is switched off in Adyen's Customer Area (active: false)",
        )
    username = body.get("username")
    links = body.get("_links")
    level: str | None = None
    if isinstance(links, Mapping):
        has_company, has_merchant = "company" in links, "merchant" in links
        if has_company != has_merchant:
            level = "companies" if has_company else "merchants"
    return _Me(
        roles=tuple(r[:200] for r in roles[:500]),
        username=username[:128] if isinstance(username, str) else "",
        level=level,
    )


def _shown(webhook_id: str) -> str:
    """An id as shown in a message: Adyen's shape is short; a hostile one is cut."""
    return redact(webhook_id[:64])


def _fingerprint(key: str) -> str:
    """A one-way stand-in for an API key in cache keys: equal for equal keys, never the key itself."""
    return hashlib.sha256(b"procon-adyen-key:" + key.encode()).hexdigest()[:24]

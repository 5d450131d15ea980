"""The Adyen emulator's aiohttp application: the Management API's ``/me``, accounts and webhooks.

Served paths, under ``/v3`` (and ``/v1``, where ``sslVersion`` stands for
``encryptionProtocol``), as in docs/processors/adyen.md ("Webhook
configurations"):

- ``GET /me``; ``GET /companies``; ``GET /companies/{companyId}/merchants``;
- for ``/companies/{companyId}`` and ``/merchants/{merchantId}`` alike:
  ``GET``/``POST /webhooks``, ``GET``/``PATCH``/``DELETE /webhooks/{webhookId}``,
  ``POST /webhooks/{webhookId}/generateHmac``, ``POST /webhooks/{webhookId}/test``.

Which environment a request is for comes from its address, as Adyen's test and
live hosts differ (docs/processors/adyen.md, "Test and live"); a key of the other
environment is refused there with a 401, as "a test key does not work" in live:

- a path prefix ``/test`` or ``/live`` (``http://127.0.0.1:PORT/live/v3``): a base URL
  per environment with no proxy or name resolution at all;
- else a ``Host`` whose first label is ``management-test`` or ``management-live``
  (``management-live.adyen.com``, or ``management-live.adyen.test`` through the
  emulator as HTTP proxy or its transport);
- any other address serves the environment of the key, unless the
  ``default_environment`` setting names one.

Middleware order, outermost first (the shared shape is ``procon.emulators.app``, without answer headers):

1. fault injection (5xx, 429 and latency before anything else; commit-then-fail after);
2. authentication (``X-API-Key``), then the handler; ``AdyenError`` becomes
   Adyen's error body here, with a ``requestId``.

Handlers check the role first, then that the key reaches the account, then that
the webhook exists; state-changing requests pass the hold gate just before they
change anything. ``Idempotency-Key`` is ignored: the Management API spec declares
it nowhere (docs/processors/adyen.md, "Idempotency"), so a retried create makes
a second webhook.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from procon.emulators.adyen import errors, notifications, roles, webhooks
from procon.emulators.adyen.control import control_routes
from procon.emulators.adyen.errors import AdyenError
from procon.emulators.adyen.state import (
    AccountRef,
    AdyenState,
    Credential,
    Delivery,
    Environment,
    HostEnvironment,
    Level,
    Webhook,
)
from procon.emulators.app import emulator_app, read_json
from procon.emulators.faults import ErrorRenderer, FaultInjector, FaultKind

LOG = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
# ASSUMPTION: the content type of Adyen's JSON answers, charset included.
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
VERSIONS = "v1|v3"
HOST_LABELS = {"management-test": Environment.TEST, "management-live": Environment.LIVE}

STATE = web.AppKey("adyen_state", AdyenState)
FAULTS = web.AppKey("adyen_faults", FaultInjector)


@dataclass(frozen=True)
class Caller:
    """The authenticated credential and the environment the request is served in."""

    credential: Credential
    environment: Environment


_CALLER = web.RequestKey("adyen_caller", Caller)


def create_app(state: AdyenState, faults: FaultInjector | None = None) -> web.Application:
    """An application serving ``state``; ``faults`` (a fresh injector if None) drives fault injection."""
    injector = faults if faults is not None else FaultInjector()
    app = emulator_app(
        state,
        injector,
        render_fault=fault_renderer(state),
        api_middleware=_api_middleware,
        control_routes=control_routes(state),
    )
    app[STATE] = state
    app[FAULTS] = injector
    _add_api_routes(app)
    return app


# Responses


def json_response(status: int, body: Any) -> web.Response:
    response = web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode())
    response.headers["Content-Type"] = JSON_CONTENT_TYPE
    return response


def error_response(error: AdyenError, state: AdyenState) -> web.Response:
    body = error.body(errors.new_request_id(), wrap_invalid_fields=state.settings.wrap_invalid_fields)
    return json_response(error.status, body)


def fault_renderer(state: AdyenState) -> ErrorRenderer:
    """Adyen's answers for injected faults: ``00_500`` errors, "too many requests" for rate limiting."""

    def render(fault: FaultKind, should_retry: bool | None) -> web.Response:
        if fault in (FaultKind.RATE_LIMITED, FaultKind.LOCK_TIMEOUT):
            # ASSUMPTION: a lock timeout is Stripe's notion; the nearest Adyen answer is "too many requests".
            return error_response(errors.too_many_requests(state.settings.rate_limit_status), state)
        return error_response(errors.server_error(), state)

    return render


# Authentication and environments


def host_environment(host: str, default: HostEnvironment) -> Environment | None:
    """The environment a ``Host`` names (None: either), from its first label."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    label = name.split(".", 1)[0].lower()
    if label in HOST_LABELS:
        return HOST_LABELS[label]
    return None if default is HostEnvironment.ANY else Environment(default.value)


def path_environment(path: str) -> Environment | None:
    """The environment a path's first segment names (``/live/v3/me``), if any."""
    first = path.lstrip("/").split("/", 1)[0]
    return Environment(first) if first in (Environment.TEST.value, Environment.LIVE.value) else None


def authenticate(state: AdyenState, api_key: str | None, host: str, path: str = "/") -> Caller:
    """The credential behind ``X-API-Key``, in the host's environment; 401 ``00_401`` otherwise."""
    if not api_key:
        raise errors.unauthorized()
    credential = state.by_api_key(api_key)
    if credential is None:
        raise errors.unauthorized()
    wanted = path_environment(path) or host_environment(host, state.settings.default_environment)
    if wanted is not None and credential.environment is not wanted:
        # Test and live are separate systems: a key of one is unknown to the other.
        raise errors.unauthorized()
    return Caller(credential, credential.environment)


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        # ASSUMPTION: authentication comes before routing, so an unknown path with a bad key is a 401.
        request[_CALLER] = authenticate(
            state, request.headers.get(API_KEY_HEADER), request.host, request.path
        )
        return await handler(request)
    except AdyenError as error:
        return error_response(error, state)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        # ASSUMPTION: a known path with another method is answered as an unknown path.
        return error_response(errors.unroutable(), state)
    except Exception:
        LOG.exception("the Adyen emulator failed on %s %s", request.method, request.path)
        return error_response(errors.server_error(), state)


# Request helpers


def _caller(request: web.Request) -> Caller:
    if _CALLER not in request:
        raise RuntimeError("the API middleware did not authenticate this request")
    return request[_CALLER]


def _require(request: web.Request, accepted: frozenset[str]) -> Caller:
    """The caller, if its credential is active and holds one of the ``accepted`` roles; else 401 or 403."""
    caller = _caller(request)
    if not caller.credential.active:
        # ASSUMPTION: a deactivated credential's key authenticates nothing but /me (which shows it inactive).
        raise errors.unauthorized()
    if not roles.holds_any(caller.credential.roles, accepted):
        raise errors.forbidden()
    return caller


def _base(request: web.Request) -> str:
    """The scheme, host, environment prefix and version the client called: links point back at them."""
    environment = request.match_info.get("environment")
    prefix = f"/{environment}" if environment else ""
    return f"{request.scheme}://{request.host}{prefix}/{request.match_info['version']}"


async def _json_body(request: web.Request) -> Any:
    return await read_json(request, errors.malformed_body)


def _unreachable(state: AdyenState) -> AdyenError:
    if state.settings.unreachable_account_status == 403:
        return errors.forbidden()
    return errors.entity_not_found()


def _account(request: web.Request, caller: Caller) -> AccountRef:
    """The webhook store the path names, if this key reaches it (docs: "API credentials and roles")."""
    state = request.app[STATE]
    level = Level.COMPANY if request.match_info["level"] == "companies" else Level.MERCHANT
    account = request.match_info["account"]
    credential = caller.credential
    if level is Level.COMPANY:
        if credential.level is Level.MERCHANT:
            raise errors.forbidden()  # a merchant-level key reaches no company path
        if account != credential.account or account not in state.companies:
            raise _unreachable(state)
    else:
        company = state.company_of_merchant(account)
        if company is None or company.id != credential.company:
            raise _unreachable(state)
        if credential.level is Level.MERCHANT and account != credential.account:
            raise _unreachable(state)
        if credential.level is Level.COMPANY and credential.merchants and account not in credential.merchants:
            raise _unreachable(state)
    return AccountRef(caller.environment, level, account)


def _context(request: web.Request, where: AccountRef) -> webhooks.Context:
    state = request.app[STATE]
    company = (
        state.companies.get(where.account)
        if where.level is Level.COMPANY
        else state.company_of_merchant(where.account)
    )
    return webhooks.Context(
        level=where.level,
        environment=where.environment,
        account=where.account,
        company_merchants=frozenset(company.merchants if company else ()),
        settings=state.settings,
        version=request.match_info["version"],
    )


def _webhook(state: AdyenState, where: AccountRef, webhook_id: str) -> Webhook:
    """The store's webhook, or 422 ``30_112``: another account's webhooks do not exist for it."""
    with state.lock:
        webhook = state.webhooks.get(webhook_id)
    if webhook is None or webhook.where != where:
        raise errors.entity_not_found()
    return webhook


async def _before_write(request: web.Request) -> None:
    await request.app[FAULTS].hold.pass_through()


# Routes


def _add_api_routes(app: web.Application) -> None:
    for prefix in ("", "/{environment:test|live}"):
        _add_routes_under(app, prefix)


def _add_routes_under(app: web.Application, prefix: str) -> None:
    router = app.router
    version = f"{prefix}/{{version:{VERSIONS}}}"
    store = f"{version}/{{level:companies|merchants}}/{{account}}/webhooks"
    router.add_get(f"{version}/me", _me)
    router.add_get(f"{version}/companies", _companies)
    router.add_get(f"{version}/companies/{{company_id}}/merchants", _merchants)
    router.add_get(store, _list_webhooks)
    router.add_post(store, _create_webhook)
    router.add_get(f"{store}/{{webhook_id}}", _get_webhook)
    router.add_patch(f"{store}/{{webhook_id}}", _update_webhook)
    router.add_delete(f"{store}/{{webhook_id}}", _delete_webhook)
    router.add_post(f"{store}/{{webhook_id}}/generateHmac", _generate_hmac)
    router.add_post(f"{store}/{{webhook_id}}/test", _test_webhook)


# The credential and its accounts


async def _me(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    credential = caller.credential
    if not roles.has_management_role(credential.roles):
        # "You can make this request with any of the Management API roles."
        status = state.settings.me_without_management_role_status
        raise errors.forbidden() if status == 403 else errors.unauthorized()
    return json_response(200, me_body(credential, _base(request)))


def me_body(credential: Credential, base: str) -> dict[str, Any]:
    """``MeApiCredential``: no ``companyId`` field; ``_links.company`` or ``_links.merchant`` by level."""
    account = webhooks.account_path(credential.level, credential.account)
    # ASSUMPTION: the credential's own links sit under its account's apiCredentials, as in the spec's paths.
    href = f"{base}/{account}/apiCredentials/{credential.id}"
    links: dict[str, Any] = {
        "self": {"href": href},
        "allowedOrigins": {"href": f"{href}/allowedOrigins"},
        "generateApiKey": {"href": f"{href}/generateApiKey"},
        "generateClientKey": {"href": f"{href}/generateClientKey"},
        credential.level.value: {"href": f"{base}/{account}"},
    }
    return {
        "id": credential.id,
        "username": credential.username,
        "clientKey": credential.client_key,
        "allowedIpAddresses": list(credential.allowed_ip_addresses),
        "roles": list(credential.roles),
        "active": credential.active,
        "description": credential.description,
        "allowedOrigins": [],
        "companyName": credential.company,
        "_links": links,
    }


def _listing(request: web.Request, items: list[dict[str, Any]], href: str) -> dict[str, Any]:
    number, size = webhooks.page_request(request.query, request.app[STATE].settings)
    body = webhooks.page(items, number, size, href, "")
    body.pop("accountReference")
    return body


async def _companies(request: web.Request) -> web.Response:
    """The companies the key reaches: none for a merchant-level key (how Adyen's plugin tells the level)."""
    caller = _require(request, roles.ACCOUNT_READERS)
    base = _base(request)
    credential = caller.credential
    items = []
    if credential.level is Level.COMPANY:
        href = f"{base}/companies/{credential.account}"
        # ASSUMPTION: the fields of a company in the list (docs/processors/adyen.md names only the call).
        items.append(
            {
                "id": credential.account,
                "name": credential.account,
                "status": "Active",
                "_links": {
                    "self": {"href": href},
                    "apiCredentials": {"href": f"{href}/apiCredentials"},
                    "webhooks": {"href": f"{href}/webhooks"},
                },
            }
        )
    return json_response(200, _listing(request, items, f"{base}/companies"))


async def _merchants(request: web.Request) -> web.Response:
    """The company's merchant accounts, "only … merchant accounts that your API credential has access to"."""
    state, caller = request.app[STATE], _require(request, roles.ACCOUNT_READERS)
    credential = caller.credential
    company_id = request.match_info["company_id"]
    if credential.level is Level.MERCHANT:
        raise errors.forbidden()
    company = state.companies.get(company_id)
    if company is None or company_id != credential.account:
        raise _unreachable(state)
    base = _base(request)
    visible = [m for m in company.merchants if not credential.merchants or m in credential.merchants]
    # ASSUMPTION: the fields of a merchant account in the list; companyId is seen in captured answers.
    items = [
        {
            "id": m,
            "name": m,
            "companyId": company.id,
            "status": "Active",
            "_links": {"self": {"href": f"{base}/merchants/{m}"}},
        }
        for m in visible
    ]
    return json_response(200, _listing(request, items, f"{base}/companies/{company_id}/merchants"))


# Webhooks


async def _list_webhooks(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_READERS)
    where = _account(request, caller)
    number, size = webhooks.page_request(request.query, state.settings)
    base = _base(request)
    with state.lock:
        items = [webhooks.to_api(w, base) for w in state.webhooks_of(where)]
    href = f"{base}/{webhooks.account_path(where.level, where.account)}/webhooks"
    return json_response(200, webhooks.page(items, number, size, href, where.account))


async def _create_webhook(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_WRITERS)
    where = _account(request, caller)
    context = _context(request, where)
    parsed = webhooks.parse(await _json_body(request), context, creating=True)
    await _before_write(request)
    with state.lock:
        limit = state.settings.webhook_limit
        if limit is not None and len(state.webhooks_of(where)) >= limit:
            # ASSUMPTION: no limit is documented; one set by the fixture is refused as a validation error.
            raise errors.validation([], detail=f"The account has reached its limit of {limit} webhooks")
        webhook = state.add_webhook(where, webhooks.new_config(parsed, context), parsed.password)
        # Create answers 200 (not 201) with the full webhook.
        return json_response(200, webhooks.to_api(webhook, _base(request)))


async def _get_webhook(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_READERS)
    webhook = _webhook(state, _account(request, caller), request.match_info["webhook_id"])
    with state.lock:
        return json_response(200, webhooks.to_api(webhook, _base(request)))


async def _update_webhook(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_WRITERS)
    where = _account(request, caller)
    webhook = _webhook(state, where, request.match_info["webhook_id"])
    parsed = webhooks.parse(await _json_body(request), _context(request, where), creating=False)
    await _before_write(request)
    with state.lock:
        webhook = _webhook(state, where, webhook.id)
        webhooks.apply_update(webhook, parsed)
        # The answer is the full configuration, not just what changed.
        return json_response(200, webhooks.to_api(webhook, _base(request)))


async def _delete_webhook(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_WRITERS)
    where = _account(request, caller)
    webhook = _webhook(state, where, request.match_info["webhook_id"])
    await _before_write(request)
    with state.lock:
        _webhook(state, where, webhook.id)
        state.webhooks.pop(webhook.id, None)
    return web.Response(status=204)


async def _generate_hmac(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_WRITERS)
    where = _account(request, caller)
    webhook = _webhook(state, where, request.match_info["webhook_id"])
    await _before_write(request)
    with state.lock:
        webhook = _webhook(state, where, webhook.id)
        if webhook.hmac_failures_left > 0:
            # A setting: generateHmac right after a create failing, which Adyen's plugin retries for.
            webhook.hmac_failures_left -= 1
            raise errors.server_error()
        key = state.generate_hmac(webhook)
    return json_response(200, {"hmacKey": key})


async def _test_webhook(request: web.Request) -> web.Response:
    """Send test notifications, signed with the webhook's key, and report how the endpoint answered."""
    state, caller = request.app[STATE], _require(request, roles.WEBHOOK_WRITERS)
    where = _account(request, caller)
    webhook = _webhook(state, where, request.match_info["webhook_id"])
    context = _context(request, where)
    with state.lock:
        company_merchants = tuple(sorted(context.company_merchants))
        covered = webhooks.covered_merchants(webhook, company_merchants)
        url, key = str(webhook.config["url"]), webhook.hmac_key
        auth = (webhook.config.get("username") or "", webhook.password) if webhook.password else None
    test = webhooks.parse_test(await _json_body(request), webhook, covered)
    results = []
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=notifications.TIMEOUT_SECONDS)
    ) as session:
        for merchant in test.merchant_ids:
            for event_code in test.types:
                results.append(
                    await _send(
                        state, session, webhook.id, url, merchant, event_code, test, key, auth, caller
                    )
                )
    return json_response(200, {"data": results})


async def _send(
    state: AdyenState,
    session: aiohttp.ClientSession,
    webhook_id: str,
    url: str,
    merchant: str,
    event_code: str,
    test: webhooks.TestRequest,
    key: str | None,
    auth: tuple[str, str] | None,
    caller: Caller,
) -> dict[str, Any]:
    custom = test.notification if event_code == webhooks.CUSTOM else None
    item = notifications.test_item(merchant, event_code, custom)
    body = notifications.notification_body(item, caller.environment is Environment.LIVE, key)
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        # With a username and password set, Adyen sends them as HTTP Basic authentication.
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    started = time.monotonic()
    status: int | None = None
    output = ""
    error: str | None = None
    try:
        async with session.post(url, data=body, headers=headers) as answer:
            output = (await answer.text())[:1000]
            status = answer.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as failure:
        error = f"{type(failure).__name__}: {failure}"
        output = error
    elapsed = int((time.monotonic() - started) * 1000)
    state.record_delivery(
        Delivery(webhook_id, url, merchant, str(item["eventCode"]), body, status, error, key is not None)
    )
    return {
        "merchantId": merchant,
        "output": output,
        "requestSent": body,
        "responseCode": str(status) if status is not None else "",
        "responseTime": f"{elapsed} ms",
        # "success" means the endpoint answered 2xx.
        "status": "success" if status is not None and 200 <= status < 300 else "failed",
    }

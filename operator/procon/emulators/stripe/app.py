"""The Stripe emulator's aiohttp application: routes, middleware, and the idempotency layer.

Middleware order, outermost first, mirrors where Stripe does things (the
shared shape is ``procon.emulators.app``):

1. ``Request-Id`` on every answer, faults and errors included;
2. fault injection (5xx, 429 and latency before anything else; commit-then-fail after);
3. authentication and ``Stripe-Account``, then the handler; ``StripeError``
   becomes Stripe's JSON error body here.

Handlers check the endpoint's permission before reading parameters, and writes
go through ``_execute_write``, which applies ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler

from procon.emulators.app import emulator_app
from procon.emulators.faults import APPLIED_FAULT, CommitFailureMode, FaultInjector, FaultKind
from procon.emulators.stripe import access, catalog, errors, probes, webhooks
from procon.emulators.stripe.access import Caller
from procon.emulators.stripe.control import control_routes
from procon.emulators.stripe.errors import StripeError
from procon.emulators.stripe.forms import FormValue, fingerprint, parse_form
from procon.emulators.stripe.idempotency import Outcome, SavedResponse
from procon.emulators.stripe.keys import KeyKind
from procon.emulators.stripe.state import AccountEndpointPolicy, StripeState, random_id
from procon.emulators.stripe.validation import check_known, parse_expand, parse_list_params

LOG = logging.getLogger(__name__)

STATE = web.AppKey("stripe_state", StripeState)
FAULTS = web.AppKey("stripe_faults", FaultInjector)
_CALLER = web.RequestKey("stripe_caller", Caller)
_REQUEST_ID = web.RequestKey("stripe_request_id", str)


def create_app(state: StripeState, faults: FaultInjector | None = None) -> web.Application:
    """An application serving ``state``; ``faults`` (a fresh injector if None) drives fault injection."""
    injector = faults if faults is not None else FaultInjector()
    app = emulator_app(
        state,
        injector,
        answer_headers=_answer_headers,
        render_fault=render_fault,
        api_middleware=_api_middleware,
        control_routes=control_routes(state),
        saves_answers=True,
    )
    app[STATE] = state
    app[FAULTS] = injector
    _add_api_routes(app)
    return app


# Responses


def stripe_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    """JSON the way Stripe sends it (pretty-printed, application/json)."""
    response = web.Response(status=status, body=json.dumps(body, indent=2).encode(), headers=headers)
    response.content_type = "application/json"  # without "; charset=...", as Stripe sends it
    return response


def error_response(error: StripeError) -> web.Response:
    return stripe_response(error.status, error.body(), error.headers)


def render_fault(fault: FaultKind, should_retry: bool | None) -> web.Response:
    """Stripe's answer for an injected fault, with ``Stripe-Should-Retry`` when the plan sets one.

    ASSUMPTION: lock timeouts are marked retryable by default (``FaultPlan.lock_timeout_should_retry``;
    docs/processors/stripe.md, "Rate limits and retryable answers").
    """
    if fault is FaultKind.RATE_LIMITED:
        error = errors.rate_limited()
    elif fault is FaultKind.LOCK_TIMEOUT:
        error = errors.lock_timeout()
    else:
        error = errors.api_error()
    response = error_response(error)
    if should_retry is not None:
        response.headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return response


# Middleware


def _answer_headers(request: web.Request) -> dict[str, str]:
    request_id = random_id("req_", 14)  # ASSUMPTION: 14 characters, as in observed IDs (req_Zb0EgUuheEd4gf)
    request[_REQUEST_ID] = request_id
    # ASSUMPTION: answers echo the API version used: the request's Stripe-Version, else the newest known.
    return {
        "Request-Id": request_id,
        "Stripe-Version": request.headers.get("Stripe-Version") or catalog.latest_api_version(),
        "Cache-Control": "no-cache, no-store",
    }


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    response: web.StreamResponse
    try:
        key = access.authenticate(state, request.headers.get("Authorization"))
        # ASSUMPTION: authentication comes before routing, so an unknown URL without a key is a 401.
        request[_CALLER] = access.resolve_caller(state, key, request.headers.get("Stripe-Account"))
        response = await handler(request)
    except StripeError as error:
        response = error_response(error)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        response = error_response(errors.unrecognized_url(request.method, request.path))
    except Exception:
        LOG.exception("the Stripe emulator failed on %s %s", request.method, request.path)
        response = error_response(errors.api_error())
    idempotency_key = request.headers.get("Idempotency-Key")
    if request.method == "POST" and idempotency_key:
        # ASSUMPTION: POST answers echo the Idempotency-Key header (stripe-mock does; Stripe is believed to).
        response.headers["Idempotency-Key"] = idempotency_key
    return response


# Request helpers


def _caller(request: web.Request) -> Caller:
    if _CALLER not in request:
        raise RuntimeError("the API middleware did not authenticate this request")
    return request[_CALLER]


def _request_id(request: web.Request) -> str:
    return request[_REQUEST_ID]  # set by the outermost middleware for every API request


async def _params(request: web.Request) -> dict[str, FormValue]:
    """Query parameters, plus the form body of a POST; bracket notation nested."""
    pairs = parse_qsl(request.query_string, keep_blank_values=True)
    if request.method == "POST":
        # ASSUMPTION: a POST's query parameters count too; the body is read as a form whatever its type.
        pairs += parse_qsl(await request.text(), keep_blank_values=True)
    return parse_form(pairs)


async def _execute_write(
    request: web.Request,
    caller: Caller,
    params: Mapping[str, FormValue],
    execute: Callable[[], dict[str, Any]],
) -> web.Response:
    """Run a state-changing request once per idempotency key.

    Without a key (or for DELETE, where Stripe ignores it) the request just runs.
    With one: a saved answer is replayed, other parameters are a 400, a request
    still executing is a 409. Only answers from execution are saved: 2xx and
    5xx, never the 4xx of validation (docs/processors/stripe.md, "Idempotency").

    A planned "processor_error" commit failure happens here: the write is
    done, and then Stripe's own 500 is the answer, saved under the key like
    any answer from execution, and so replayed to every retry with the key.
    """
    state, faults = request.app[STATE], request.app[FAULTS]
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        await faults.hold.pass_through()
        body = execute()
        _fail_after_commit(request)
        return stripe_response(200, body)
    scope = caller.idempotency_scope
    decision = state.idempotency.begin(scope, key, fingerprint(request.method, request.path, params))
    if decision.outcome is Outcome.IN_FLIGHT:
        raise errors.idempotency_key_in_use()
    if decision.outcome is Outcome.MISMATCH:
        raise errors.idempotency_key_reused(key)
    if decision.outcome is Outcome.REPLAY and decision.saved is not None:
        saved = decision.saved
        # ASSUMPTION: a replay carries a new Request-Id and names the first one in Original-Request.
        replay_headers = {"Idempotent-Replayed": "true", "Original-Request": saved.request_id}
        return stripe_response(saved.status, saved.body, replay_headers)
    request_id = _request_id(request)
    try:
        await faults.hold.pass_through()
        body = execute()
        _fail_after_commit(request)
    except StripeError as error:
        # ASSUMPTION: every 4xx raised while executing (validation, the endpoint cap, a 404) counts as
        # "failed validation" and is not saved; only 5xx are.
        if error.status >= 500:
            state.idempotency.save(scope, key, SavedResponse(error.status, error.body(), request_id))
        else:
            state.idempotency.abandon(scope, key)
        raise
    except BaseException:
        state.idempotency.abandon(scope, key)
        raise
    state.idempotency.save(scope, key, SavedResponse(200, body, request_id))
    return stripe_response(200, body, {"Original-Request": request_id})


_SAVED_COMMIT_FAILURES: tuple[CommitFailureMode, ...] = ("processor_error",)


def _fail_after_commit(request: web.Request) -> None:
    """Raise Stripe's own 500 for a committed write, if the fault plan asks for one."""
    if request.app[FAULTS].claim_commit_failure(request.method, request.path, _SAVED_COMMIT_FAILURES):
        request[APPLIED_FAULT] = FaultKind.PROCESSOR_ERROR
        raise errors.api_error()


# Routes


def _add_api_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/v1/account", _get_account)
    router.add_get("/v1/accounts", _list_connected_accounts)
    router.add_get("/v1/balance", _get_balance)
    for probe in probes.LIST_PROBES:
        router.add_get(probe.path, _list_probe_handler(probe))
        if probe.required_to_create:
            router.add_post(probe.path, _create_probe_handler(probe))
    for object_probe in probes.OBJECT_PROBES:
        router.add_get(object_probe.collection + "/{id}", _object_probe_handler(object_probe))
    for write_probe in probes.WRITE_OBJECT_PROBES:
        router.add_post(write_probe.collection + "/{id}", _write_object_probe_handler(write_probe))
    router.add_get("/v1/webhook_endpoints", _list_endpoints)
    router.add_post("/v1/webhook_endpoints", _create_endpoint)
    router.add_get("/v1/webhook_endpoints/{id}", _retrieve_endpoint)
    router.add_post("/v1/webhook_endpoints/{id}", _update_endpoint)
    router.add_delete("/v1/webhook_endpoints/{id}", _delete_endpoint)


async def _get_account(request: web.Request) -> web.Response:
    """The account acted on; what restricted keys get depends on the fixture (Stripe changed it over time)."""
    state, caller = request.app[STATE], _caller(request)
    if caller.key.kind is KeyKind.RESTRICTED:
        if state.settings.account_endpoint_with_restricted_key is AccountEndpointPolicy.FORBIDDEN:
            raise access.denied(state, caller, probes.ACCOUNT_KYC_PERMISSION)
        # ASSUMPTION: "allowed" follows the documented mapping GET /v1/account -> connected_account_read.
        access.require(state, caller, probes.CONNECTED_ACCOUNTS_PERMISSION)
    check_known(await _params(request), {"expand"})
    with state.lock:
        account = state.accounts[caller.account_id]
    return stripe_response(200, account.to_api())


async def _list_connected_accounts(request: web.Request) -> web.Response:
    """A platform's connected accounts; an empty list for any other account."""
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, probes.CONNECTED_ACCOUNTS_PERMISSION)
    params = await _params(request)
    check_known(params, probes.CONNECTED_ACCOUNTS_LIST_PARAMS)
    options = parse_list_params(params)
    with state.lock:
        account = state.accounts[caller.account_id]
        connected = [state.accounts[a] for a in account.connected_accounts if a in state.accounts]
    page, has_more = webhooks.paginate(connected, options, key=lambda a: a.id, noun="account")
    return stripe_response(200, webhooks.list_object("/v1/accounts", [a.to_api() for a in page], has_more))


async def _get_balance(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, probes.BALANCE_PERMISSION)
    check_known(await _params(request), {"expand"})
    with state.lock:
        account = state.accounts[caller.account_id]
    return stripe_response(200, probes.balance(account, caller.livemode))


def _list_probe_handler(probe: probes.ListProbe) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state, caller = request.app[STATE], _caller(request)
        params = await _params(request)
        needed = probe.permission
        if probe.path == "/v1/balance_transactions" and "data.source" in parse_expand(params):
            # ASSUMPTION (unconfirmed): refused without the permission even when empty
            # (docs/processors/stripe.md, "Which request probes which permission").
            needed = probes.BALANCE_SOURCE_PERMISSION  # it implies balance_read too
        access.require(state, caller, needed)
        # Unknown parameters are refused as Stripe does (report types take no limit); the values of
        # known filters are not checked, as the lists are always empty (ASSUMPTION: a filter naming
        # an object that does not exist yields an empty list rather than an error).
        check_known(params, probe.accepts)
        if probe.paginated:
            parse_list_params(params)
        else:
            parse_expand(params)
        return stripe_response(200, webhooks.list_object(probe.path, []))

    return handler


def _create_probe_handler(probe: probes.ListProbe) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state, caller = request.app[STATE], _caller(request)
        # ASSUMPTION: the write permission is checked before parameters are validated.
        access.require(state, caller, probe.write_permission)
        raise probes.missing_create_parameter(probe, await _params(request))

    return handler


def _object_probe_handler(probe: probes.ObjectProbe) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state, caller = request.app[STATE], _caller(request)
        # ASSUMPTION (unconfirmed, see docs/processors/stripe.md, "Which request probes which permission"):
        # the permission is checked before the lookup,
        # so a key without it gets 403 and a key with it 404 for an unknown ID.
        access.require(state, caller, probe.permission)
        check_known(await _params(request), probe.accepts)
        raise errors.resource_missing(probe.noun, request.match_info["id"])

    return handler


def _write_object_probe_handler(probe: probes.ObjectProbe) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state, caller = request.app[STATE], _caller(request)
        # ASSUMPTION (as for retrieves): the write permission is checked before the lookup, and the
        # lookup before the parameters; the emulator holds no such objects, so every ID is missing.
        access.require(state, caller, probe.permission)
        raise errors.resource_missing(probe.noun, request.match_info["id"])

    return handler


WEBHOOK_READ = "rak_webhook_read"
WEBHOOK_WRITE = "rak_webhook_write"


async def _list_endpoints(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, WEBHOOK_READ)
    return stripe_response(200, webhooks.list_page(state, caller, await _params(request)))


async def _retrieve_endpoint(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, WEBHOOK_READ)
    body = webhooks.retrieve(state, caller, request.match_info["id"], await _params(request))
    return stripe_response(200, body)


async def _create_endpoint(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, WEBHOOK_WRITE)
    params = await _params(request)
    return await _execute_write(request, caller, params, lambda: webhooks.create(state, caller, params))


async def _update_endpoint(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, WEBHOOK_WRITE)
    params, endpoint_id = await _params(request), request.match_info["id"]
    return await _execute_write(
        request, caller, params, lambda: webhooks.update(state, caller, endpoint_id, params)
    )


async def _delete_endpoint(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    access.require(state, caller, WEBHOOK_WRITE)
    params, endpoint_id = await _params(request), request.match_info["id"]
    return await _execute_write(
        request, caller, params, lambda: webhooks.delete(state, caller, endpoint_id, params)
    )

"""The Checkout.com emulator's aiohttp application: routes, middleware, deliveries.

One server plays every Checkout.com host procon talks to: the API
(``api.checkout.com``), the OAuth token endpoint (``access.checkout.com``), the
balances host (``balances.checkout.com``), and each account's prefixed variant
(``{prefix}.api...``, ``{prefix}.access...``), told apart by the ``Host``
header (see ``hosts``). Paths decide what is served: ``/connect/token`` is
the token endpoint on every host, ``/balances`` is served only on the balances
host, everything else is the API.

Middleware order, outermost first (the shared shape is ``procon.emulators.app``):

1. ``Cko-Request-Id`` and ``Cko-Version`` on every answer, faults and errors included;
2. fault injection (5xx, 429 and latency before anything else; commit-then-fail after);
3. authentication (except on the token endpoint), then the handler;
   ``CheckoutError`` becomes Checkout.com's answer here.

Handlers check scopes before reading parameters; state-changing requests pass
the hold gate just before they change anything.

``Cko-Idempotency-Key`` is deliberately ignored: Checkout.com documents it for
payments, captures, refunds, voids and transfers only, and not for Workflows
(docs/processors/checkout.md, "Idempotency and retries"), so replaying a ``POST /workflows`` would hide the
duplicates a real retry creates. That is why procon stores the signing key
before it creates a workflow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from procon.emulators.app import emulator_app, read_json
from procon.emulators.checkout import auth, delivery, errors, hosts, probes, scopes, workflows
from procon.emulators.checkout.auth import Caller
from procon.emulators.checkout.catalog import events_by_source, source_of
from procon.emulators.checkout.control import control_routes
from procon.emulators.checkout.errors import CheckoutError
from procon.emulators.checkout.state import CheckoutState, Mode, new_condition
from procon.emulators.checkout.workflows import Workflow
from procon.emulators.faults import ErrorRenderer, FaultInjector, FaultKind

LOG = logging.getLogger(__name__)

TOKEN_PATH = "/connect/token"
# ASSUMPTION: a fixed Cko-Version in the shape of observed ones (e.g. "1.1683.0+8b0fbe7").
CKO_VERSION = "1.1683.0+8b0fbe7"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"  # as observed on Checkout.com's answers

STATE = web.AppKey("checkout_state", CheckoutState)
FAULTS = web.AppKey("checkout_faults", FaultInjector)
_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("checkout_delivery_tasks")
_CALLER = web.RequestKey("checkout_caller", Caller)
_REQUEST_ID = web.RequestKey("checkout_request_id", str)


def create_app(state: CheckoutState, faults: FaultInjector | None = None) -> web.Application:
    """An application serving ``state``; ``faults`` (a fresh injector if None) drives fault injection."""
    injector = faults if faults is not None else FaultInjector()
    app = emulator_app(
        state,
        injector,
        answer_headers=_answer_headers,
        render_fault=fault_renderer(state),
        api_middleware=_api_middleware,
        control_routes=control_routes(state),
    )
    app[STATE] = state
    app[FAULTS] = injector
    app[_TASKS] = set()
    app.on_cleanup.append(_cancel_deliveries)
    _add_api_routes(app)
    return app


# Responses


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(
        status=status, body=json.dumps(body, separators=(",", ":")).encode(), headers=headers
    )
    response.headers["Content-Type"] = JSON_CONTENT_TYPE
    return response


def empty_response(status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


def error_response(error: CheckoutError, request_id: str) -> web.Response:
    body = error.body(request_id)
    if body is None:
        return empty_response(error.status, error.headers)
    return json_response(error.status, body, error.headers)


def fault_renderer(state: CheckoutState) -> ErrorRenderer:
    """Checkout.com's answers for injected faults: bodiless 500s and 429s (it has no retry-hint header)."""

    def render(fault: FaultKind, should_retry: bool | None) -> web.Response:
        if fault in (FaultKind.RATE_LIMITED, FaultKind.LOCK_TIMEOUT):
            # ASSUMPTION: a lock timeout is Stripe's notion; the nearest Checkout.com answer is the 429 it
            # documents for "too many requests or duplicate request detected".
            error = errors.rate_limited(state.settings.rate_limit_retry_after)
        else:
            error = errors.server_error()
        return empty_response(error.status, error.headers)

    return render


# Middleware


def _answer_headers(request: web.Request) -> dict[str, str]:
    # Observed Cko-Request-Id values are UUIDs.
    # ASSUMPTION: error bodies' request_id repeats it (the spec's examples show another shape).
    request_id = str(uuid.uuid4())
    request[_REQUEST_ID] = request_id
    return {"Cko-Request-Id": request_id, "Cko-Version": CKO_VERSION}


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        if request.path != TOKEN_PATH:
            # ASSUMPTION: authentication comes before routing, so an unknown path without a credential is a
            # 401 and with one a 404.
            request[_CALLER] = auth.authenticate(
                state, request.headers.get("Authorization"), request.host, time.time()
            )
        return await handler(request)
    except CheckoutError as error:
        return error_response(error, request[_REQUEST_ID])
    except web.HTTPNotFound:
        return error_response(errors.not_found(), request[_REQUEST_ID])
    except web.HTTPMethodNotAllowed:
        return error_response(errors.method_not_allowed(), request[_REQUEST_ID])
    except Exception:
        LOG.exception("the Checkout.com emulator failed on %s %s", request.method, request.path)
        return error_response(errors.server_error(), request[_REQUEST_ID])


# Request helpers


def _caller(request: web.Request) -> Caller:
    if _CALLER not in request:
        raise RuntimeError("the API middleware did not authenticate this request")
    return request[_CALLER]


def _base(request: web.Request) -> str:
    """The scheme and host the client called: links point back at them (the Node SDK's fixtures show it)."""
    return f"{request.scheme}://{request.host}"


async def _json_body(request: web.Request) -> Any:
    return await read_json(request, errors.malformed_body)


def _query(request: web.Request) -> dict[str, str]:
    return dict(request.query)


def _catalog(state: CheckoutState) -> dict[str, frozenset[str]]:
    return events_by_source(state.settings.event_sources)


def _owned_workflow(state: CheckoutState, caller: Caller, workflow_id: str) -> Workflow:
    """The caller's workflow, or a 404 (another account's or mode's workflows do not exist for it)."""
    with state.lock:
        workflow = state.workflows.get(workflow_id)
    if workflow is None or workflow.client_id != caller.client.id or workflow.mode != caller.mode:
        raise errors.not_found()
    return workflow


async def _before_write(request: web.Request) -> None:
    await request.app[FAULTS].hold.pass_through()


def _created(item_id: str, href: str) -> web.Response:
    return json_response(201, {"id": item_id, "_links": {"self": {"href": href}}})


# Routes


def _add_api_routes(app: web.Application) -> None:
    router = app.router
    router.add_post(TOKEN_PATH, _token)
    # Fixed paths first: aiohttp tries resources in the order they were added.
    router.add_get("/workflows/event-types", _event_types)
    router.add_get("/workflows/events/subject/{subject_id}", _subject_events)
    router.add_get("/workflows/events/{event_id}", _event)
    router.add_get("/workflows", _list_workflows)
    router.add_post("/workflows", _create_workflow)
    router.add_get("/workflows/{workflow_id}", _get_workflow)
    router.add_patch("/workflows/{workflow_id}", _patch_workflow)
    router.add_delete("/workflows/{workflow_id}", _delete_workflow)
    router.add_post("/workflows/{workflow_id}/conditions", _add_condition)
    router.add_put("/workflows/{workflow_id}/conditions/{condition_id}", _put_condition)
    router.add_delete("/workflows/{workflow_id}/conditions/{condition_id}", _delete_condition)
    router.add_post("/workflows/{workflow_id}/actions", _add_action)
    router.add_put("/workflows/{workflow_id}/actions/{action_id}", _put_action)
    router.add_delete("/workflows/{workflow_id}/actions/{action_id}", _delete_action)
    router.add_post("/workflows/{workflow_id}/test", _test_workflow)
    router.add_get("/disputes", _disputes)
    router.add_get("/reports", _reports)
    router.add_get("/financial-actions", _financial_actions)
    # The balances API lives on its own host (balances.checkout.com): the handler refuses other hosts.
    router.add_get("/balances/{entity_id}", _balances)
    router.add_post("/payments/search", _payment_search)
    router.add_get("/payments/{payment_id}", _payment)
    router.add_get("/files/{file_id}", _file)


# The token endpoint


async def _token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    # ASSUMPTION: the body is read as a form whatever its declared content type.
    form = dict(parse_qsl((await request.read()).decode("utf-8", "replace"), keep_blank_values=True))
    answer = auth.issue_token(
        state,
        host=request.host,
        issuer=_base(request),
        authorization=request.headers.get("Authorization"),
        form=form,
        now=time.time(),
    )
    # RFC 6749 section 5.1: token answers must not be cached.
    return json_response(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})


# Workflows


async def _event_types(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    # ASSUMPTION: the scopes of the other Workflows operations.
    auth.require(state, caller, scopes.WORKFLOWS)
    return json_response(200, [source.to_api() for source in state.settings.event_sources])


async def _list_workflows(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    base = _base(request)
    with state.lock:
        # ASSUMPTION: no pagination (the spec has no parameter for it), oldest first.
        items = [
            workflows.workflow_summary(w, base) for w in state.workflows_of(caller.client.id, caller.mode)
        ]
    return json_response(200, {"data": items})


async def _create_workflow(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    spec = workflows.parse_create(await _json_body(request), _catalog(state))
    # No idempotency: a retried POST creates a second workflow, as Checkout.com's would (see the module doc).
    await _before_write(request)
    with state.lock:
        limit = state.settings.workflow_limit
        if limit is not None and len(state.workflows_of(caller.client.id, caller.mode)) >= limit:
            # ASSUMPTION: the limit (a setting) is refused with a 422 naming it.
            raise errors.validation([workflows.WORKFLOW_LIMIT_EXCEEDED])
        workflow = state.add_workflow(caller.client.id, caller.mode, spec)
    return _created(workflow.id, workflows.workflow_href(_base(request), workflow.id))


async def _get_workflow(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    with state.lock:
        body = workflows.workflow_to_api(workflow, _base(request), mask=state.settings.mask_secrets_on_read)
    return json_response(200, body)


async def _patch_workflow(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    patch = workflows.parse_patch(await _json_body(request), _catalog(state))
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        if patch.name is not None:
            workflow.name = patch.name
        if patch.active is not None:
            workflow.active = patch.active
        if patch.conditions is not None:
            workflow.conditions = [new_condition(c) for c in patch.conditions]
        if patch.actions is not None:
            workflow.actions = [state.new_action(a) for a in patch.actions]
        # The spec's patch-workflow-response: name and active.
        return json_response(200, {"name": workflow.name, "active": workflow.active})


async def _delete_workflow(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    await _before_write(request)
    with state.lock:
        state.workflows.pop(workflow.id, None)
    return empty_response(204)


async def _add_condition(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    spec = workflows.parse_one_condition(await _json_body(request), _catalog(state))
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        workflows.check_condition_types([c.spec.type for c in workflow.conditions] + [spec.type])
        condition = new_condition(spec)
        workflow.conditions.append(condition)
    href = f"{workflows.workflow_href(_base(request), workflow.id)}/conditions/{condition.id}"
    return _created(condition.id, href)


async def _put_condition(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    condition_id = request.match_info["condition_id"]
    _condition_of(workflow, condition_id)
    spec = workflows.parse_one_condition(await _json_body(request), _catalog(state))
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        condition = _condition_of(workflow, condition_id)
        # ASSUMPTION: PUT replaces the condition whole and may change its type, unless that repeats a type.
        others = [c.spec.type for c in workflow.conditions if c.id != condition_id]
        workflows.check_condition_types([*others, spec.type])
        condition.spec = spec
    return empty_response(200)  # the spec documents no body


async def _delete_condition(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    condition_id = request.match_info["condition_id"]
    _condition_of(workflow, condition_id)
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        _condition_of(workflow, condition_id)
        if len(workflow.conditions) == 1:
            # ASSUMPTION: a workflow keeps at least one condition (its schema's minItems: 1).
            raise errors.validation([workflows.CONDITIONS_REQUIRED])
        workflow.conditions = [c for c in workflow.conditions if c.id != condition_id]
    return empty_response(204)


async def _add_action(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    spec = workflows.parse_one_action(await _json_body(request))
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        action = state.new_action(spec)
        workflow.actions.append(action)
    return _created(action.id, f"{workflows.workflow_href(_base(request), workflow.id)}/actions/{action.id}")


async def _put_action(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    action_id = request.match_info["action_id"]
    _action_of(workflow, action_id)
    spec = workflows.parse_one_action(await _json_body(request))
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        # ASSUMPTION: PUT replaces the action whole: headers or signature left out are removed.
        _action_of(workflow, action_id).spec = state.note_action(spec)
    return empty_response(200)  # "200, no body documented"


async def _delete_action(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    action_id = request.match_info["action_id"]
    _action_of(workflow, action_id)
    await _before_write(request)
    with state.lock:
        workflow = _owned_workflow(state, caller, workflow.id)
        _action_of(workflow, action_id)
        if len(workflow.actions) == 1:
            # ASSUMPTION: a workflow keeps at least one action (its schema's minItems: 1).
            raise errors.validation([workflows.ACTIONS_REQUIRED])
        workflow.actions = [a for a in workflow.actions if a.id != action_id]
    # ASSUMPTION: 204, as for conditions (200 or 204, inferred from the SDKs).
    return empty_response(204)


def _condition_of(workflow: Workflow, condition_id: str) -> workflows.Condition:
    try:
        return workflow.condition(condition_id)
    except KeyError:
        raise errors.not_found() from None


def _action_of(workflow: Workflow, action_id: str) -> workflows.Action:
    try:
        return workflow.action(action_id)
    except KeyError:
        raise errors.not_found() from None


# Tests and events


async def _test_workflow(request: web.Request) -> web.Response:
    """``POST /workflows/{id}/test`` (sandbox only): 204, then one event per type to each webhook action."""
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.WORKFLOWS)
    workflow = _owned_workflow(state, caller, request.match_info["workflow_id"])
    if caller.client.mode is not Mode.SANDBOX:
        raise errors.not_found()  # ASSUMPTION: the sandbox-only operation does not exist in production
    body = await _json_body(request)
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    event_types = body.get("event_types")
    sources = state.settings.event_sources
    with state.lock:
        subscribed = workflow.subscribed_events()
    # ASSUMPTION: the event types must be ones the workflow subscribes to (any known type for a workflow
    # without an event condition); anything else is the documented event_types_invalid.
    if (
        not isinstance(event_types, list)
        or not event_types
        or not all(isinstance(t, str) and source_of(sources, t) is not None for t in event_types)
        or (subscribed is not None and not set(event_types) <= subscribed)
    ):
        raise errors.validation([workflows.EVENT_TYPES_INVALID])
    base = _base(request)
    pending = []
    with state.lock:
        for event_type in dict.fromkeys(event_types):
            event = delivery.new_event(caller.client.id, caller.mode, event_type, sources)
            state.add_event(event)
            # ASSUMPTION: a test runs whether or not the workflow is active, ignoring its entity filters.
            pending += [delivery.prepare(event, workflow, action, base) for action in workflow.actions]
    _schedule(request.app, pending)
    return empty_response(204)  # "Workflow test initiated"


def _schedule(app: web.Application, pending: Iterable[delivery.PendingDelivery]) -> None:
    items = list(pending)
    if not items:
        return
    task = asyncio.get_running_loop().create_task(_deliver(app[STATE], items))
    tasks = app[_TASKS]
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _deliver(state: CheckoutState, pending: list[delivery.PendingDelivery]) -> None:
    timeout = aiohttp.ClientTimeout(total=delivery.TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for item in pending:
            try:
                async with session.post(item.url, data=item.body, headers=item.headers) as response:
                    await response.read()
                    state.record_delivery(item.done(response.status, None))
            except (aiohttp.ClientError, TimeoutError) as error:
                state.record_delivery(item.done(None, f"{type(error).__name__}: {error}"))


async def _cancel_deliveries(app: web.Application) -> None:
    tasks: set[asyncio.Task[None]] = app[_TASKS]
    for task in list(tasks):
        task.cancel()


def _own_event(state: CheckoutState, caller: Caller, event_id: str) -> delivery.Event:
    with state.lock:
        event = state.events.get(event_id)
    # ASSUMPTION: an unknown event is a bodiless 404, as the other lookups are.
    if event is None or event.client_id != caller.client.id or event.mode != caller.mode:
        raise errors.not_found()
    return event


async def _event(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.FLOW_EVENTS)
    event = _own_event(state, caller, request.match_info["event_id"])
    return json_response(200, event.to_api(_base(request)))


async def _subject_events(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.FLOW_EVENTS)
    subject_id = request.match_info["subject_id"]
    with state.lock:
        found = [
            e
            for e in state.events.values()
            if e.subject_id == subject_id and e.client_id == caller.client.id and e.mode == caller.mode
        ]
    if not found:
        raise errors.not_found()  # the spec: 404 "Subject not found"
    base = _base(request)
    return json_response(200, {"data": [event.summary(base) for event in found]})


# Scope probes


async def _disputes(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.DISPUTES_VIEW)
    return json_response(200, probes.disputes_page(_query(request)))


async def _reports(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.REPORTS_VIEW)
    return json_response(200, probes.reports_list(_query(request), _base(request)))


async def _financial_actions(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.FINANCIAL_ACTIONS_VIEW)
    return json_response(200, probes.financial_actions_list(_query(request), _base(request)))


async def _balances(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    if not hosts.is_balances_host(request.host):
        # Balances are served only on the balances host (docs/processors/checkout.md, "Hosts"), never on the
        # API hosts. ASSUMPTION (undocumented): another host answers as for any unknown path, a bodiless
        # 404 after authentication, before any scope check.
        raise errors.not_found()
    auth.require(state, caller, scopes.BALANCES_VIEW)
    auth.require_entity(state, caller, request.match_info["entity_id"])
    return json_response(200, probes.balances())


async def _payment_search(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.PAYMENTS_SEARCH)
    return json_response(200, probes.payment_search(await _json_body(request)))


async def _payment(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    # ASSUMPTION: the scope is checked before the lookup, so a credential without it gets 401/403 and one
    # with it a 404 for the emulator's (always unknown) payments.
    auth.require(state, caller, scopes.PAYMENT_DETAILS)
    raise errors.not_found()


async def _file(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], _caller(request)
    auth.require(state, caller, scopes.FILES_RETRIEVE)
    raise errors.not_found()  # the spec: 404 "File not found"

"""The shape every emulator's aiohttp application has; the processor supplies what differs.

Middleware, outermost first, mirrors where a processor does things:

1. the headers the processor puts on every answer (a request id, a version),
   faults and errors included, if it has any;
2. fault injection (``faults.fault_middleware``: 5xx, 429 and latency before
   anything else; commit-then-fail after), rendered as the processor's own errors;
3. the processor's API middleware: authentication, then the handler, its
   errors turned into the processor's error bodies.

The control API (``control``) passes through all three untouched: it is never
faulted, counted or authenticated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from procon.emulators.base import EmulatorState
from procon.emulators.control import ControlRoute, add_control_routes
from procon.emulators.faults import CONTROL_PREFIX, ErrorRenderer, FaultInjector, fault_middleware

# The headers for one API request's answer; it may note what it chose on the request (its request id).
AnswerHeaders = Callable[[web.Request], Mapping[str, str]]


def _is_control(request: web.Request) -> bool:
    return request.path.startswith(CONTROL_PREFIX)


def answer_headers_middleware(answer_headers: AnswerHeaders) -> Middleware:
    """Put ``answer_headers(request)`` on every API answer, an ``HTTPException``'s included."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_control(request):
            return await handler(request)
        headers = answer_headers(request)
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    return middleware


async def read_json(request: web.Request, malformed: Callable[[], Exception]) -> Any:
    """A JSON API request's body (None when empty); raises ``malformed()``, the processor's error, when
    it is not JSON."""
    raw = await request.read()
    try:
        return json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise malformed() from None


def api_only(api_middleware: Middleware) -> Middleware:
    """``api_middleware`` for API requests; control requests go straight to their handler."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_control(request):
            return await handler(request)
        return await api_middleware(request, handler)

    return middleware


def emulator_app(
    state: EmulatorState,
    faults: FaultInjector,
    *,
    answer_headers: AnswerHeaders | None = None,
    render_fault: ErrorRenderer,
    api_middleware: Middleware,
    control_routes: Iterable[ControlRoute] = (),
    saves_answers: bool = False,
) -> web.Application:
    """An application with the shared middleware and control API; the caller adds its API routes.

    ``answer_headers``: None for a processor that puts no header of its own on every answer.

    ``saves_answers``: the processor has an idempotency layer and applies
    ``"processor_error"`` commit failures itself (see ``faults.fault_middleware``).
    """
    middlewares = [
        fault_middleware(faults, render_fault, saves_answers=saves_answers),
        api_only(api_middleware),
    ]
    if answer_headers is not None:
        middlewares.insert(0, answer_headers_middleware(answer_headers))
    app = web.Application(middlewares=middlewares)
    add_control_routes(app, state, faults, control_routes)
    return app

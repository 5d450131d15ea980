"""The control API under ``/_emulator/`` that every emulator has: never faulted, no processor auth, JSON.

It lets tests that run an emulator in another process (``procon emulate
<name>``) do what in-process tests do through the ``Emulator`` object:

- ``GET state`` (secrets masked), ``POST reset``;
- ``GET``/``PUT faults`` (a ``FaultPlan`` as JSON), ``GET``/``DELETE requests``.

An emulator adds its own routes (keys, webhooks changed out of band) as
``ControlRoute``s, ``settings_routes`` among them if its fixture has settings;
every handler is guarded the same way: a lookup failure is a 404 and bad
input a 400, each with ``{"error": message}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from procon.emulators.base import EmulatorState, reset_emulator
from procon.emulators.faults import CONTROL_PREFIX, FaultInjector, FaultPlan, RequestRecord

ControlHandler = Callable[[web.Request], Awaitable[web.Response]]


class JsonSettings(Protocol):
    """An emulator's fixture settings (what an unconfirmed behaviour looks like), shown as JSON."""

    def to_json(self) -> dict[str, Any]: ...


SettingsT = TypeVar("SettingsT", bound=JsonSettings)


class SettingsHolder(Protocol[SettingsT]):
    """A state whose settings can change at run time (until ``reset()``)."""

    settings: SettingsT

    @property
    def lock(self) -> AbstractContextManager[Any]: ...


@dataclass(frozen=True)
class ControlRoute:
    """One route of an emulator's own control API: ``path`` is below ``/_emulator/``."""

    method: str
    path: str
    handler: ControlHandler


def json_answer(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda value: json.dumps(value, indent=2))


def guarded(handler: ControlHandler) -> ControlHandler:
    """Turn lookup failures into 404 and bad input into 400, with ``{"error": message}``."""

    async def guard(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except KeyError as error:
            return json_answer({"error": str(error.args[0]) if error.args else "not found"}, status=404)
        except (ValueError, TypeError) as error:  # FixtureError and json.JSONDecodeError are ValueErrors
            return json_answer({"error": str(error)}, status=400)

    return guard


async def read_body(request: web.Request) -> Any:
    """The decoded JSON body; ``{}`` when there is none."""
    if not request.can_read_body:
        return {}
    return await request.json()


async def read_object(request: web.Request, expected: str) -> dict[str, Any]:
    """The JSON body, which must be an object; ``expected`` says what in the 400 otherwise."""
    body = await read_body(request)
    if not isinstance(body, dict):
        raise ValueError(f"expected {expected}")
    return body


def settings_routes(
    state: SettingsHolder[SettingsT], parse: Callable[[Any, SettingsT], SettingsT]
) -> list[ControlRoute]:
    """``GET``/``PUT settings``: ``parse(body, current)`` gives the settings a ``PUT`` body asks for."""

    async def get_settings(_: web.Request) -> web.Response:
        return json_answer(state.settings.to_json())

    async def put_settings(request: web.Request) -> web.Response:
        body = await read_object(request, "a JSON object of settings")
        with state.lock:
            state.settings = parse(body, state.settings)
            return json_answer(state.settings.to_json())

    return [ControlRoute("GET", "settings", get_settings), ControlRoute("PUT", "settings", put_settings)]


def _record(record: RequestRecord) -> dict[str, Any]:
    return {
        "method": record.method,
        "path": record.path,
        "route": record.route,
        "status": record.status,
        "fault": record.fault.value if record.fault else None,
    }


def add_control_routes(
    app: web.Application, state: EmulatorState, faults: FaultInjector, routes: Iterable[ControlRoute] = ()
) -> None:
    """Register the shared control API and an emulator's own ``routes`` on ``app``."""

    async def get_state(_: web.Request) -> web.Response:
        return json_answer(state.snapshot())

    async def reset(_: web.Request) -> web.Response:
        reset_emulator(state, faults)
        return json_answer(state.snapshot())

    async def get_faults(_: web.Request) -> web.Response:
        return json_answer(faults.plan.to_json())

    async def put_faults(request: web.Request) -> web.Response:
        faults.plan = FaultPlan.from_json(await read_object(request, "a JSON object of FaultPlan fields"))
        return json_answer(faults.plan.to_json())

    async def get_requests(_: web.Request) -> web.Response:
        counters = [
            {"method": method, "route": route, "status": status, "count": count}
            for (method, route, status), count in sorted(faults.counters.items(), key=str)
        ]
        return json_answer({"requests": [_record(r) for r in faults.requests], "counters": counters})

    async def delete_requests(_: web.Request) -> web.Response:
        faults.reset_counters()
        return json_answer({"requests": [], "counters": []})

    shared = [
        ControlRoute("GET", "state", get_state),
        ControlRoute("POST", "reset", reset),
        ControlRoute("GET", "faults", get_faults),
        ControlRoute("PUT", "faults", put_faults),
        ControlRoute("GET", "requests", get_requests),
        ControlRoute("DELETE", "requests", delete_requests),
    ]
    for route in [*shared, *routes]:
        app.router.add_route(route.method, CONTROL_PREFIX + route.path, guarded(route.handler))

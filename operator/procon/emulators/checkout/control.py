"""The emulator's own control API under ``/_emulator/``: never faulted, no Checkout.com auth, JSON in and out.

It lets tests that run the emulator in another process (``procon emulate
checkout``) do what in-process tests do through ``CheckoutEmulator``:

- ``GET state`` (keys, header values and signing keys masked), ``POST reset``;
- ``GET``/``PUT faults``, ``GET``/``DELETE requests``, ``GET``/``PUT settings``;
- ``POST clients`` (a fixture-shaped ``{"clients": [...]}``);
- ``POST keys/{key}/grant`` and ``.../revoke`` (a list of scopes), ``.../expire``,
  ``DELETE keys/{key}`` (the key is deleted: it authenticates nothing);
- ``POST tokens/expire`` (``{"key": "ack_..."}`` optional), ``GET tokens`` (every token issued);
- ``GET``/``POST workflows`` (``?client_id=&mode=``; ``{"client_id", ...body}``),
  ``GET``/``PATCH``/``DELETE workflows/{id}``: out-of-band changes, secrets unmasked;
- ``POST events`` (``{"client_id", "type", ...}``: raise and deliver an event), ``GET deliveries``.

Keys are named by access key id, full secret key or masked secret key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from procon.emulators.checkout import events, manage
from procon.emulators.checkout.fixture import FixtureError, parse_clients, parse_settings
from procon.emulators.checkout.state import CheckoutState
from procon.emulators.faults import CONTROL_PREFIX, FaultInjector, FaultPlan, RequestRecord


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda value: json.dumps(value, indent=2))


def _guarded(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Turn lookup failures into 404 and bad input into 400, with ``{"error": message}``."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except KeyError as error:
            return _json({"error": str(error.args[0]) if error.args else "not found"}, status=404)
        except (ValueError, TypeError) as error:  # FixtureError and json.JSONDecodeError are ValueErrors
            return _json({"error": str(error)}, status=400)

    return guarded


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    return await request.json()


async def _object(request: web.Request, expected: str) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise ValueError(f"expected {expected}")
    return body


def _scope_list(body: Any) -> list[str]:
    """``["flow", ...]`` or ``{"scopes": [...]}``."""
    names = body.get("scopes") if isinstance(body, dict) else body
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("expected a list of scopes or {'scopes': [...]}")
    return names


def _record(record: RequestRecord) -> dict[str, Any]:
    return {
        "method": record.method,
        "path": record.path,
        "route": record.route,
        "status": record.status,
        "fault": record.fault.value if record.fault else None,
    }


def add_control_routes(app: web.Application, state: CheckoutState, faults: FaultInjector) -> None:
    """Register the control API on ``app``."""

    async def get_state(_: web.Request) -> web.Response:
        return _json(state.snapshot())

    async def reset(_: web.Request) -> web.Response:
        state.reset()
        faults.clear()
        faults.reset_counters()
        faults.hold.open()
        return _json(state.snapshot())

    async def get_faults(_: web.Request) -> web.Response:
        return _json(faults.plan.to_json())

    async def put_faults(request: web.Request) -> web.Response:
        faults.plan = FaultPlan.from_json(await _object(request, "a JSON object of FaultPlan fields"))
        return _json(faults.plan.to_json())

    async def get_requests(_: web.Request) -> web.Response:
        counters = [
            {"method": method, "route": route, "status": status, "count": count}
            for (method, route, status), count in sorted(faults.counters.items(), key=str)
        ]
        return _json({"requests": [_record(r) for r in faults.requests], "counters": counters})

    async def delete_requests(_: web.Request) -> web.Response:
        faults.reset_counters()
        return _json({"requests": [], "counters": []})

    async def get_settings(_: web.Request) -> web.Response:
        return _json(state.settings.to_json())

    async def put_settings(request: web.Request) -> web.Response:
        body = await _object(request, "a JSON object of settings")
        with state.lock:
            state.settings = parse_settings(body, state.settings)
            return _json(state.settings.to_json())

    async def add_clients(request: web.Request) -> web.Response:
        body = await _object(request, "{'clients': [...]} in the fixture's format")
        try:
            specs = parse_clients(body.get("clients"))
        except FixtureError as error:
            raise ValueError(str(error)) from None
        state.add_clients(specs)
        return _json(state.snapshot())

    async def grant(request: web.Request) -> web.Response:
        names = _scope_list(await _body(request))
        return _json(state.grant(request.match_info["key"], names).describe())

    async def revoke(request: web.Request) -> web.Response:
        names = _scope_list(await _body(request))
        return _json(state.revoke(request.match_info["key"], names).describe())

    async def expire(request: web.Request) -> web.Response:
        return _json(state.expire(request.match_info["key"]).describe())

    async def delete_key(request: web.Request) -> web.Response:
        return _json(state.revoke_key(request.match_info["key"]).describe())

    async def expire_tokens(request: web.Request) -> web.Response:
        body = await _body(request)
        key = body.get("key") if isinstance(body, dict) else None
        if key is not None and not isinstance(key, str):
            raise ValueError("key must be an access key id")
        return _json({"expired": state.expire_tokens(key)})

    async def get_tokens(_: web.Request) -> web.Response:
        with state.lock:
            return _json({"issued": list(state.issued_tokens)})

    async def list_workflows(request: web.Request) -> web.Response:
        client_id = request.query.get("client_id")
        with state.lock:
            found = [
                manage.to_json(w)
                for w in sorted(state.workflows.values(), key=lambda w: w.sequence)
                if (client_id is None or w.client_id == client_id)
                and ("mode" not in request.query or w.mode == request.query["mode"])
            ]
        return _json({"data": found})

    async def create_workflow(request: web.Request) -> web.Response:
        body = await _object(request, "{'client_id': 'cli_...', 'mode': ..., <a POST /workflows body>}")
        client_id, mode = body.pop("client_id", None), body.pop("mode", None)
        if not isinstance(client_id, str) or (mode is not None and not isinstance(mode, str)):
            raise ValueError("client_id must be a client id and mode sandbox or production")
        with state.lock:
            return _json(manage.to_json(manage.create_workflow(state, client_id, body, mode)), status=201)

    async def get_workflow(request: web.Request) -> web.Response:
        with state.lock:
            return _json(manage.to_json(state.workflow(request.match_info["id"])))

    async def change_workflow(request: web.Request) -> web.Response:
        body = await _object(request, "a JSON object of workflow fields")
        with state.lock:
            return _json(manage.to_json(manage.update_workflow(state, request.match_info["id"], body)))

    async def delete_workflow(request: web.Request) -> web.Response:
        workflow = manage.delete_workflow(state, request.match_info["id"])
        return _json({"id": workflow.id, "deleted": True})

    async def emit_event(request: web.Request) -> web.Response:
        body = await _object(request, "{'client_id': 'cli_...', 'type': 'payment_approved', ...}")
        client_id, event_type = body.get("client_id"), body.get("type")
        options = {k: body.get(k) for k in ("subject_id", "entity_id", "processing_channel_id")}
        data = body.get("data")
        if (
            not isinstance(client_id, str)
            or not isinstance(event_type, str)
            or not all(v is None or isinstance(v, str) for v in options.values())
            or (data is not None and not isinstance(data, dict))
        ):
            raise ValueError("client_id and type are required strings; data an object")
        # Delivering blocks (and may call this very server), so it runs off the event loop.
        done = await asyncio.to_thread(
            events.emit,
            state,
            client_id,
            event_type,
            subject_id=options["subject_id"],
            entity_id=options["entity_id"],
            processing_channel_id=options["processing_channel_id"],
            data=data,
        )
        return _json({"deliveries": [d.to_json() for d in done]})

    async def get_deliveries(_: web.Request) -> web.Response:
        with state.lock:
            return _json({"deliveries": [d.to_json() for d in state.deliveries]})

    prefix = CONTROL_PREFIX.rstrip("/")
    router = app.router
    router.add_get(f"{prefix}/state", _guarded(get_state))
    router.add_post(f"{prefix}/reset", _guarded(reset))
    router.add_get(f"{prefix}/faults", _guarded(get_faults))
    router.add_put(f"{prefix}/faults", _guarded(put_faults))
    router.add_get(f"{prefix}/requests", _guarded(get_requests))
    router.add_delete(f"{prefix}/requests", _guarded(delete_requests))
    router.add_get(f"{prefix}/settings", _guarded(get_settings))
    router.add_put(f"{prefix}/settings", _guarded(put_settings))
    router.add_post(f"{prefix}/clients", _guarded(add_clients))
    router.add_post(f"{prefix}/keys/{{key}}/grant", _guarded(grant))
    router.add_post(f"{prefix}/keys/{{key}}/revoke", _guarded(revoke))
    router.add_post(f"{prefix}/keys/{{key}}/expire", _guarded(expire))
    router.add_delete(f"{prefix}/keys/{{key}}", _guarded(delete_key))
    router.add_post(f"{prefix}/tokens/expire", _guarded(expire_tokens))
    router.add_get(f"{prefix}/tokens", _guarded(get_tokens))
    router.add_get(f"{prefix}/workflows", _guarded(list_workflows))
    router.add_post(f"{prefix}/workflows", _guarded(create_workflow))
    router.add_get(f"{prefix}/workflows/{{id}}", _guarded(get_workflow))
    router.add_patch(f"{prefix}/workflows/{{id}}", _guarded(change_workflow))
    router.add_delete(f"{prefix}/workflows/{{id}}", _guarded(delete_workflow))
    router.add_post(f"{prefix}/events", _guarded(emit_event))
    router.add_get(f"{prefix}/deliveries", _guarded(get_deliveries))

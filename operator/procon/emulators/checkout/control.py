"""The Checkout.com emulator's own control routes under ``/_emulator/``, beside the shared ones.

They let tests that run the emulator in another process (``procon emulate
checkout``) do what in-process tests do through ``CheckoutEmulator``
(the shared routes: ``GET state`` with keys, header values and signing keys
masked, ``POST reset``, ``GET``/``PUT faults``, ``GET``/``DELETE requests``):

- ``GET``/``PUT settings``;
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
from typing import Any

from aiohttp import web

from procon.emulators.checkout import events, manage
from procon.emulators.checkout.fixture import parse_clients, parse_settings
from procon.emulators.checkout.state import CheckoutState
from procon.emulators.control import ControlRoute, json_answer, read_body, read_object, settings_routes
from procon.emulators.fixtures import FixtureError


def _scope_list(body: Any) -> list[str]:
    """``["flow", ...]`` or ``{"scopes": [...]}``."""
    names = body.get("scopes") if isinstance(body, dict) else body
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("expected a list of scopes or {'scopes': [...]}")
    return names


def control_routes(state: CheckoutState) -> list[ControlRoute]:
    """Routes for settings, clients, keys, tokens, workflows, events and deliveries."""

    async def add_clients(request: web.Request) -> web.Response:
        body = await read_object(request, "{'clients': [...]} in the fixture's format")
        try:
            specs = parse_clients(body.get("clients"))
        except FixtureError as error:
            raise ValueError(str(error)) from None
        state.add_clients(specs)
        return json_answer(state.snapshot())

    async def grant(request: web.Request) -> web.Response:
        names = _scope_list(await read_body(request))
        return json_answer(state.grant(request.match_info["key"], names).describe())

    async def revoke(request: web.Request) -> web.Response:
        names = _scope_list(await read_body(request))
        return json_answer(state.revoke(request.match_info["key"], names).describe())

    async def expire(request: web.Request) -> web.Response:
        return json_answer(state.expire(request.match_info["key"]).describe())

    async def delete_key(request: web.Request) -> web.Response:
        return json_answer(state.revoke_key(request.match_info["key"]).describe())

    async def expire_tokens(request: web.Request) -> web.Response:
        body = await read_body(request)
        key = body.get("key") if isinstance(body, dict) else None
        if key is not None and not isinstance(key, str):
            raise ValueError("key must be an access key id")
        return json_answer({"expired": state.expire_tokens(key)})

    async def get_tokens(_: web.Request) -> web.Response:
        with state.lock:
            return json_answer({"issued": list(state.issued_tokens)})

    async def list_workflows(request: web.Request) -> web.Response:
        client_id = request.query.get("client_id")
        with state.lock:
            found = [
                manage.to_json(w)
                for w in sorted(state.workflows.values(), key=lambda w: w.sequence)
                if (client_id is None or w.client_id == client_id)
                and ("mode" not in request.query or w.mode == request.query["mode"])
            ]
        return json_answer({"data": found})

    async def create_workflow(request: web.Request) -> web.Response:
        body = await read_object(request, "{'client_id': 'cli_...', 'mode': ..., <a POST /workflows body>}")
        client_id, mode = body.pop("client_id", None), body.pop("mode", None)
        if not isinstance(client_id, str) or (mode is not None and not isinstance(mode, str)):
            raise ValueError("client_id must be a client id and mode sandbox or production")
        with state.lock:
            return json_answer(
                manage.to_json(manage.create_workflow(state, client_id, body, mode)), status=201
            )

    async def get_workflow(request: web.Request) -> web.Response:
        with state.lock:
            return json_answer(manage.to_json(state.workflow(request.match_info["id"])))

    async def change_workflow(request: web.Request) -> web.Response:
        body = await read_object(request, "a JSON object of workflow fields")
        with state.lock:
            return json_answer(manage.to_json(manage.update_workflow(state, request.match_info["id"], body)))

    async def delete_workflow(request: web.Request) -> web.Response:
        workflow = manage.delete_workflow(state, request.match_info["id"])
        return json_answer({"id": workflow.id, "deleted": True})

    async def emit_event(request: web.Request) -> web.Response:
        body = await read_object(request, "{'client_id': 'cli_...', 'type': 'payment_approved', ...}")
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
        return json_answer({"deliveries": [d.to_json() for d in done]})

    async def get_deliveries(_: web.Request) -> web.Response:
        with state.lock:
            return json_answer({"deliveries": [d.to_json() for d in state.deliveries]})

    return [
        *settings_routes(state, parse_settings),
        ControlRoute("POST", "clients", add_clients),
        ControlRoute("POST", "keys/{key}/grant", grant),
        ControlRoute("POST", "keys/{key}/revoke", revoke),
        ControlRoute("POST", "keys/{key}/expire", expire),
        ControlRoute("DELETE", "keys/{key}", delete_key),
        ControlRoute("POST", "tokens/expire", expire_tokens),
        ControlRoute("GET", "tokens", get_tokens),
        ControlRoute("GET", "workflows", list_workflows),
        ControlRoute("POST", "workflows", create_workflow),
        ControlRoute("GET", "workflows/{id}", get_workflow),
        ControlRoute("PATCH", "workflows/{id}", change_workflow),
        ControlRoute("DELETE", "workflows/{id}", delete_workflow),
        ControlRoute("POST", "events", emit_event),
        ControlRoute("GET", "deliveries", get_deliveries),
    ]

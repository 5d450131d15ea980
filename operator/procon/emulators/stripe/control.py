"""The Stripe emulator's own control routes under ``/_emulator/``, beside the shared ones.

They let tests that run the emulator in another process (``procon emulate
stripe``) do what in-process tests do through ``StripeEmulator``: change keys
and change endpoints out of band. Keys are named by their full value or their
masked form; answers show them masked.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from procon.emulators.control import ControlRoute, json_answer, read_body, read_object
from procon.emulators.stripe.state import StripeState, endpoint_fields


def _permission_change(body: Any) -> tuple[list[str], bool]:
    """``["rak_x", ...]`` or ``{"permissions": [...], "connect": false}``."""
    if isinstance(body, list):
        names, connect = body, False
    elif isinstance(body, dict):
        names, connect = body.get("permissions", []), body.get("connect", False)
    else:
        raise ValueError("expected a list of permissions or {'permissions': [...], 'connect': bool}")
    if (
        not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
        or not isinstance(connect, bool)
    ):
        raise ValueError("permissions must be a list of names and connect a boolean")
    return names, connect


def control_routes(state: StripeState) -> list[ControlRoute]:
    """Routes for keys and webhook endpoints."""

    async def grant(request: web.Request) -> web.Response:
        names, connect = _permission_change(await read_body(request))
        return json_answer(state.grant(request.match_info["key"], names, connect=connect).describe())

    async def revoke(request: web.Request) -> web.Response:
        names, connect = _permission_change(await read_body(request))
        return json_answer(state.revoke(request.match_info["key"], names, connect=connect).describe())

    async def expire(request: web.Request) -> web.Response:
        return json_answer(state.expire(request.match_info["key"]).describe())

    async def create_endpoint(request: web.Request) -> web.Response:
        body = await read_object(
            request, "{'account': 'acct_...', 'livemode': false, 'url': ..., 'enabled_events': [...]}"
        )
        account, livemode, connect = (
            body.pop("account", None),
            body.pop("livemode", False),
            body.pop("connect", False),
        )
        if not isinstance(account, str) or not isinstance(livemode, bool) or not isinstance(connect, bool):
            raise ValueError("account must be an account ID, livemode and connect booleans")
        fields = endpoint_fields(body)
        if "url" not in fields or "enabled_events" not in fields:
            raise ValueError("url and enabled_events are required")
        with state.lock:
            if account not in state.accounts:
                raise KeyError(f"no account {account}")
            endpoint = state.add_endpoint(account, livemode, connect=connect, **fields)
            return json_answer(endpoint.to_api(include_secret=True))

    async def change_endpoint(request: web.Request) -> web.Response:
        body = await read_object(request, "a JSON object of endpoint fields")
        with state.lock:
            return json_answer(state.change_endpoint(request.match_info["id"], body).to_api())

    async def delete_endpoint(request: web.Request) -> web.Response:
        endpoint = state.remove_endpoint(request.match_info["id"])
        return json_answer({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})

    return [
        ControlRoute("POST", "keys/{key}/grant", grant),
        ControlRoute("POST", "keys/{key}/revoke", revoke),
        ControlRoute("POST", "keys/{key}/expire", expire),
        ControlRoute("POST", "webhook_endpoints", create_endpoint),
        ControlRoute("POST", "webhook_endpoints/{id}", change_endpoint),
        ControlRoute("DELETE", "webhook_endpoints/{id}", delete_endpoint),
    ]

"""The emulator's own control API under ``/_emulator/``: never faulted, no Stripe auth, JSON in and out.

It lets tests that run the emulator in another process (``procon emulate
stripe``) do what in-process tests do through ``StripeEmulator``: read the state,
set faults, change keys, count requests, and change endpoints out of band.
Keys are named by their full value or their masked form; answers show them masked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from procon.emulators.faults import CONTROL_PREFIX, FaultInjector, FaultPlan, RequestRecord
from procon.emulators.stripe.state import StripeState, endpoint_fields


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
        except (ValueError, TypeError) as error:
            return _json({"error": str(error)}, status=400)

    return guarded


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    return await request.json()


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


def _record(record: RequestRecord) -> dict[str, Any]:
    return {
        "method": record.method,
        "path": record.path,
        "route": record.route,
        "status": record.status,
        "fault": record.fault.value if record.fault else None,
    }


def add_control_routes(app: web.Application, state: StripeState, faults: FaultInjector) -> None:
    """Register the control API on ``app``."""

    async def get_state(_: web.Request) -> web.Response:
        return _json(state.snapshot())

    async def get_faults(_: web.Request) -> web.Response:
        return _json(faults.plan.to_json())

    async def put_faults(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object of FaultPlan fields")
        faults.plan = FaultPlan.from_json(body)
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

    async def grant(request: web.Request) -> web.Response:
        names, connect = _permission_change(await _body(request))
        return _json(state.grant(request.match_info["key"], names, connect=connect).describe())

    async def revoke(request: web.Request) -> web.Response:
        names, connect = _permission_change(await _body(request))
        return _json(state.revoke(request.match_info["key"], names, connect=connect).describe())

    async def expire(request: web.Request) -> web.Response:
        return _json(state.expire(request.match_info["key"]).describe())

    async def reset(_: web.Request) -> web.Response:
        state.reset()
        faults.clear()
        faults.reset_counters()
        faults.hold.open()
        return _json(state.snapshot())

    async def create_endpoint(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise ValueError(
                "expected {'account': 'acct_...', 'livemode': false, 'url': ..., 'enabled_events': [...]}"
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
            return _json(endpoint.to_api(include_secret=True))

    async def change_endpoint(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object of endpoint fields")
        with state.lock:
            return _json(state.change_endpoint(request.match_info["id"], body).to_api())

    async def delete_endpoint(request: web.Request) -> web.Response:
        endpoint = state.remove_endpoint(request.match_info["id"])
        return _json({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})

    prefix = CONTROL_PREFIX.rstrip("/")
    router = app.router
    router.add_get(f"{prefix}/state", _guarded(get_state))
    router.add_get(f"{prefix}/faults", _guarded(get_faults))
    router.add_put(f"{prefix}/faults", _guarded(put_faults))
    router.add_get(f"{prefix}/requests", _guarded(get_requests))
    router.add_delete(f"{prefix}/requests", _guarded(delete_requests))
    router.add_post(f"{prefix}/keys/{{key}}/grant", _guarded(grant))
    router.add_post(f"{prefix}/keys/{{key}}/revoke", _guarded(revoke))
    router.add_post(f"{prefix}/keys/{{key}}/expire", _guarded(expire))
    router.add_post(f"{prefix}/reset", _guarded(reset))
    router.add_post(f"{prefix}/webhook_endpoints", _guarded(create_endpoint))
    router.add_post(f"{prefix}/webhook_endpoints/{{id}}", _guarded(change_endpoint))
    router.add_delete(f"{prefix}/webhook_endpoints/{{id}}", _guarded(delete_endpoint))

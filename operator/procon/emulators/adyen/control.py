"""The emulator's own control API under ``/_emulator/``: never faulted, no Adyen auth, JSON in and out.

It lets tests that run the emulator in another process (``procon emulate
adyen``) do what in-process tests do through ``AdyenEmulator``:

- ``GET state`` (keys masked), ``POST reset``;
- ``GET``/``PUT faults``, ``GET``/``DELETE requests``, ``GET``/``PUT settings``;
- ``POST credentials`` (fixture-shaped ``{"companies": [...], "credentials": [...]}``);
- ``POST credentials/{name}/grant`` and ``.../revoke`` (a list of roles), ``PUT .../roles``,
  ``POST .../deactivate`` and ``.../activate`` (name: id or username);
- ``GET webhooks`` (``?environment=&level=&account=``), ``POST webhooks``
  (``{"environment", "company"|"merchant", ...a create body}``), ``GET``/``PATCH``/``DELETE
  webhooks/{id}``, ``POST webhooks/{id}/hmac`` (``{"hmacKey": ...}`` optional): out-of-band
  changes, HMAC keys unmasked;
- ``GET hmac-keys`` (every key generated since start), ``GET deliveries``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from procon.emulators.adyen import manage
from procon.emulators.adyen.fixture import FixtureError, parse_companies, parse_credentials, parse_settings
from procon.emulators.adyen.state import AdyenState
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


def _role_list(body: Any) -> list[str]:
    """``["Management API - Webhooks read", ...]`` or ``{"roles": [...]}``."""
    names = body.get("roles") if isinstance(body, dict) else body
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("expected a list of roles or {'roles': [...]}")
    return names


def _record(record: RequestRecord) -> dict[str, Any]:
    return {
        "method": record.method,
        "path": record.path,
        "route": record.route,
        "status": record.status,
        "fault": record.fault.value if record.fault else None,
    }


def add_control_routes(app: web.Application, state: AdyenState, faults: FaultInjector) -> None:
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

    async def add_credentials(request: web.Request) -> web.Response:
        body = await _object(request, "{'companies': [...], 'credentials': [...]} in the fixture's format")
        try:
            with state.lock:
                companies = parse_companies(body.get("companies"), state.companies)
                credentials = parse_credentials(
                    body.get("credentials"), companies, tuple(state.credentials.values())
                )
                state.add_credentials(companies.values(), credentials)
        except FixtureError as error:
            raise ValueError(str(error)) from None
        return _json(state.snapshot())

    async def grant(request: web.Request) -> web.Response:
        roles = _role_list(await _body(request))
        return _json(state.grant(request.match_info["name"], roles).describe())

    async def revoke(request: web.Request) -> web.Response:
        roles = _role_list(await _body(request))
        return _json(state.revoke(request.match_info["name"], roles).describe())

    async def set_roles(request: web.Request) -> web.Response:
        roles = _role_list(await _body(request))
        return _json(state.set_roles(request.match_info["name"], roles).describe())

    async def deactivate(request: web.Request) -> web.Response:
        return _json(state.set_active(request.match_info["name"], False).describe())

    async def activate(request: web.Request) -> web.Response:
        return _json(state.set_active(request.match_info["name"], True).describe())

    async def list_webhooks(request: web.Request) -> web.Response:
        query = request.query
        with state.lock:
            found = [
                manage.view(w)
                for w in sorted(state.webhooks.values(), key=lambda w: w.sequence)
                if all(
                    name not in query or query[name] == value
                    for name, value in (
                        ("environment", w.where.environment.value),
                        ("level", w.where.level.value),
                        ("account", w.where.account),
                    )
                )
            ]
        return _json({"data": found})

    async def create_webhook(request: web.Request) -> web.Response:
        body = await _object(request, "{'environment': 'test', 'company'|'merchant': ..., <a create body>}")
        at = manage.where(
            str(body.pop("environment", "test")), body.pop("company", None), body.pop("merchant", None)
        )
        return _json(manage.view(manage.create(state, at, body)), status=201)

    async def get_webhook(request: web.Request) -> web.Response:
        with state.lock:
            return _json(manage.view(state.webhook(request.match_info["id"])))

    async def change_webhook(request: web.Request) -> web.Response:
        body = await _object(request, "a JSON object of webhook fields")
        with state.lock:
            return _json(manage.view(manage.update(state, request.match_info["id"], body)))

    async def delete_webhook(request: web.Request) -> web.Response:
        webhook = manage.delete(state, request.match_info["id"])
        return _json({"id": webhook.id, "deleted": True})

    async def set_hmac(request: web.Request) -> web.Response:
        body = await _object(request, "{'hmacKey': '<hex>'} or {}")
        key = body.get("hmacKey")
        if key is not None and not isinstance(key, str):
            raise ValueError("hmacKey must be a hexadecimal string")
        manage.set_hmac_key(state, request.match_info["id"], key)
        with state.lock:
            return _json(manage.view(state.webhook(request.match_info["id"])))

    async def get_hmac_keys(_: web.Request) -> web.Response:
        with state.lock:
            return _json({"generated": list(state.hmac_keys_seen)})

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
    router.add_post(f"{prefix}/credentials", _guarded(add_credentials))
    router.add_post(f"{prefix}/credentials/{{name}}/grant", _guarded(grant))
    router.add_post(f"{prefix}/credentials/{{name}}/revoke", _guarded(revoke))
    router.add_put(f"{prefix}/credentials/{{name}}/roles", _guarded(set_roles))
    router.add_post(f"{prefix}/credentials/{{name}}/deactivate", _guarded(deactivate))
    router.add_post(f"{prefix}/credentials/{{name}}/activate", _guarded(activate))
    router.add_get(f"{prefix}/webhooks", _guarded(list_webhooks))
    router.add_post(f"{prefix}/webhooks", _guarded(create_webhook))
    router.add_get(f"{prefix}/webhooks/{{id}}", _guarded(get_webhook))
    router.add_patch(f"{prefix}/webhooks/{{id}}", _guarded(change_webhook))
    router.add_delete(f"{prefix}/webhooks/{{id}}", _guarded(delete_webhook))
    router.add_post(f"{prefix}/webhooks/{{id}}/hmac", _guarded(set_hmac))
    router.add_get(f"{prefix}/hmac-keys", _guarded(get_hmac_keys))
    router.add_get(f"{prefix}/deliveries", _guarded(get_deliveries))

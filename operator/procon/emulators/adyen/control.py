"""The Adyen emulator's own control routes under ``/_emulator/``, beside the shared ones.

They let tests that run the emulator in another process (``procon emulate
adyen``) do what in-process tests do through ``AdyenEmulator`` (the shared
routes: ``GET state`` with keys masked, ``POST reset``, ``GET``/``PUT faults``,
``GET``/``DELETE requests``):

- ``GET``/``PUT settings``;
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

from typing import Any

from aiohttp import web

from procon.emulators.adyen import manage
from procon.emulators.adyen.fixture import parse_companies, parse_credentials, parse_settings
from procon.emulators.adyen.state import AdyenState
from procon.emulators.control import ControlRoute, json_answer, read_body, read_object, settings_routes
from procon.emulators.fixtures import FixtureError


def _role_list(body: Any) -> list[str]:
    """``["Management API - Webhooks read", ...]`` or ``{"roles": [...]}``."""
    names = body.get("roles") if isinstance(body, dict) else body
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("expected a list of roles or {'roles': [...]}")
    return names


def control_routes(state: AdyenState) -> list[ControlRoute]:
    """Routes for settings, credentials, webhooks, HMAC keys and deliveries."""

    async def add_credentials(request: web.Request) -> web.Response:
        body = await read_object(
            request, "{'companies': [...], 'credentials': [...]} in the fixture's format"
        )
        try:
            with state.lock:
                companies = parse_companies(body.get("companies"), state.companies)
                credentials = parse_credentials(
                    body.get("credentials"), companies, tuple(state.credentials.values())
                )
                state.add_credentials(companies.values(), credentials)
        except FixtureError as error:
            raise ValueError(str(error)) from None
        return json_answer(state.snapshot())

    async def grant(request: web.Request) -> web.Response:
        roles = _role_list(await read_body(request))
        return json_answer(state.grant(request.match_info["name"], roles).describe())

    async def revoke(request: web.Request) -> web.Response:
        roles = _role_list(await read_body(request))
        return json_answer(state.revoke(request.match_info["name"], roles).describe())

    async def set_roles(request: web.Request) -> web.Response:
        roles = _role_list(await read_body(request))
        return json_answer(state.set_roles(request.match_info["name"], roles).describe())

    async def deactivate(request: web.Request) -> web.Response:
        return json_answer(state.set_active(request.match_info["name"], False).describe())

    async def activate(request: web.Request) -> web.Response:
        return json_answer(state.set_active(request.match_info["name"], True).describe())

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
        return json_answer({"data": found})

    async def create_webhook(request: web.Request) -> web.Response:
        body = await read_object(
            request, "{'environment': 'test', 'company'|'merchant': ..., <a create body>}"
        )
        at = manage.where(
            str(body.pop("environment", "test")), body.pop("company", None), body.pop("merchant", None)
        )
        return json_answer(manage.view(manage.create(state, at, body)), status=201)

    async def get_webhook(request: web.Request) -> web.Response:
        with state.lock:
            return json_answer(manage.view(state.webhook(request.match_info["id"])))

    async def change_webhook(request: web.Request) -> web.Response:
        body = await read_object(request, "a JSON object of webhook fields")
        with state.lock:
            return json_answer(manage.view(manage.update(state, request.match_info["id"], body)))

    async def delete_webhook(request: web.Request) -> web.Response:
        webhook = manage.delete(state, request.match_info["id"])
        return json_answer({"id": webhook.id, "deleted": True})

    async def set_hmac(request: web.Request) -> web.Response:
        body = await read_object(request, "{'hmacKey': '<hex>'} or {}")
        key = body.get("hmacKey")
        if key is not None and not isinstance(key, str):
            raise ValueError("hmacKey must be a hexadecimal string")
        manage.set_hmac_key(state, request.match_info["id"], key)
        with state.lock:
            return json_answer(manage.view(state.webhook(request.match_info["id"])))

    async def get_hmac_keys(_: web.Request) -> web.Response:
        with state.lock:
            return json_answer({"generated": list(state.hmac_keys_seen)})

    async def get_deliveries(_: web.Request) -> web.Response:
        with state.lock:
            return json_answer({"deliveries": [d.to_json() for d in state.deliveries]})

    return [
        *settings_routes(state, parse_settings),
        ControlRoute("POST", "credentials", add_credentials),
        ControlRoute("POST", "credentials/{name}/grant", grant),
        ControlRoute("POST", "credentials/{name}/revoke", revoke),
        ControlRoute("PUT", "credentials/{name}/roles", set_roles),
        ControlRoute("POST", "credentials/{name}/deactivate", deactivate),
        ControlRoute("POST", "credentials/{name}/activate", activate),
        ControlRoute("GET", "webhooks", list_webhooks),
        ControlRoute("POST", "webhooks", create_webhook),
        ControlRoute("GET", "webhooks/{id}", get_webhook),
        ControlRoute("PATCH", "webhooks/{id}", change_webhook),
        ControlRoute("DELETE", "webhooks/{id}", delete_webhook),
        ControlRoute("POST", "webhooks/{id}/hmac", set_hmac),
        ControlRoute("GET", "hmac-keys", get_hmac_keys),
        ControlRoute("GET", "deliveries", get_deliveries),
    ]

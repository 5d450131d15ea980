"""The Checkout.com emulator over HTTP, driven with raw httpx as procon drives it.

Each test states a fact from docs/processors/checkout.md (or an emulator
setting standing in for an unconfirmed one) and checks the emulator keeps it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import select
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.checkout.tokens import decode_claims
from procon.emulators.faults import FaultKind

DEMO_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "checkout-demo.yaml"

CLIENT = "cli_vkuhvk4vjn2edkps7dfsq6emqm"
OTHER_CLIENT = "cli_o2h4tmzxjn2edkps7dfsq6emqm"
LIVE_CLIENT = "cli_l1vep7odjn2edkps7dfsq6emqm"
ENTITY = "ent_eu3fkzbjqmdeeq4kdtovdvkbbm"
OTHER_ENTITY = "ent_ukpbnqyhl4ysm4w3jd5lbv7sxi"
CHANNEL = "pc_axclravnqf5u5ejkweijnp5zc4"

OPERATOR = ("ack_procondemooperator", "demo-operator-access-key-secret")
READ_ONLY = ("ack_procondemoreadonly", "demo-read-only-access-key-secret")
EXPIRED = ("ack_procondemoexpired", "demo-expired-access-key-secret")
OTHER = ("ack_procondemootheraccount", "demo-other-account-access-key-secret")
PRODUCTION = ("ack_procondemoproduction", "demo-production-access-key-secret")

SK_FULL = "sk_sbox_procondemofullaccesskeyxyz2"
SK_WORKFLOWS = "sk_sbox_procondemoworkflowsonlykey2"
SK_EXPIRED = "sk_sbox_procondemoexpiredsecretkey2"
SK_OTHER = "sk_sbox_procondemootheraccountkeyz2"

HOOK = "https://hooks.example.com/checkout"
SIGNING_KEY = "procon-generated-signing-key-0123456789"
WF_ID = re.compile(r"^wf_[a-z2-7]{26}$")
WFC_ID = re.compile(r"^wfc_[a-z2-7]{26}$")
WFA_ID = re.compile(r"^wfa_[a-z2-7]{26}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[CheckoutEmulator]:
    with CheckoutEmulator.from_fixture(DEMO_FIXTURE, seed=7) as emulator:
        yield emulator


@pytest.fixture
def emu(running_emulator: CheckoutEmulator) -> CheckoutEmulator:
    running_emulator.reset()
    return running_emulator


@pytest.fixture
def http(emu: CheckoutEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP on the unprefixed host (127.0.0.1:PORT)."""
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def hosts(emu: CheckoutEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP on named hosts (``{prefix}.api.checkout.test``) through the emulator's transport."""
    with httpx.Client(transport=emu.sync_transport(), timeout=10) as client:
        yield client


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


# Balances are served only on the (never prefixed) balances host.
BALANCES_HOST = {"Host": "balances.checkout.test"}


def on_host_for(path: str) -> dict[str, str]:
    """The Host header a probe path needs on the unprefixed address: balances has its own host."""
    return BALANCES_HOST if path.startswith("/balances") else {}


def token_request(
    http: httpx.Client,
    credentials: tuple[str, str],
    scope: str | None = "flow",
    *,
    style: str = "basic",
    **extra: Any,
) -> httpx.Response:
    form: dict[str, str] = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    if style in ("body", "both"):
        form.update(client_id=credentials[0], client_secret=credentials[1])
    if style in ("basic", "both"):
        return http.post("/connect/token", data=form, auth=credentials, **extra)
    return http.post("/connect/token", data=form, **extra)


def token(http: httpx.Client, credentials: tuple[str, str] = OPERATOR, scope: str | None = "flow") -> str:
    response = token_request(http, credentials, scope)
    assert response.status_code == 200, response.text
    value = response.json()["access_token"]
    assert isinstance(value, str)
    return value


def workflow_body(url: str = HOOK, *, name: str = "k8s:payments/webhooks", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "active": True,
        "conditions": [
            {
                "type": "event",
                "events": {"gateway": ["payment_approved", "payment_captured"], "dispute": ["dispute_won"]},
            },
            {"type": "entity", "entities": [ENTITY]},
        ],
        "actions": [
            {
                "type": "webhook",
                "url": url,
                "headers": {"Authorization": "receiver-shared-secret-value"},
                "signature": {"method": "HMACSHA256", "key": SIGNING_KEY},
            }
        ],
    }
    body.update(changes)
    return body


def create(http: httpx.Client, credential: str = SK_FULL, **changes: Any) -> str:
    response = http.post("/workflows", json=workflow_body(**changes), headers=bearer(credential))
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    assert isinstance(workflow_id, str)
    return workflow_id


def assert_checkout_headers(response: httpx.Response) -> None:
    assert UUID.match(response.headers["Cko-Request-Id"])
    assert response.headers["Cko-Version"]


# The token endpoint


@pytest.mark.parametrize("style", ["basic", "body", "both"])
def test_the_token_endpoint_accepts_basic_body_or_both(http: httpx.Client, style: str) -> None:
    response = token_request(http, OPERATOR, "flow disputes:view", style=style)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "flow disputes:view")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", body["access_token"])
    assert decode_claims(body["access_token"])["scope"] == ["disputes:view", "flow"]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert_checkout_headers(response)


@pytest.mark.parametrize(
    ("credentials", "style"),
    [
        ((OPERATOR[0], "wrong-secret"), "basic"),
        (("ack_nosuchaccesskey", "whatever"), "body"),
        (EXPIRED, "basic"),
        (("", ""), "body"),
    ],
)
def test_bad_credentials_are_400_invalid_client(
    http: httpx.Client, credentials: tuple[str, str], style: str
) -> None:
    response = token_request(http, credentials, style=style)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client"}
    assert_checkout_headers(response)


def test_the_invalid_client_status_is_a_setting(emu: CheckoutEmulator, http: httpx.Client) -> None:
    """400 as the spec says; 401, which RFC 6749 allows (unconfirmed for Checkout.com), by setting."""
    emu.update_settings(invalid_client_status=401)
    for credentials, style in [((OPERATOR[0], "wrong-secret"), "basic"), (("", ""), "body")]:
        response = token_request(http, credentials, style=style)
        assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})
    assert token_request(http, OPERATOR, "disputes").json() == {"error": "invalid_scope"}  # still 400
    assert token_request(http, OPERATOR, "disputes").status_code == 400


def test_two_different_credentials_in_one_request_are_refused(http: httpx.Client) -> None:
    form = {"grant_type": "client_credentials", "client_id": READ_ONLY[0], "client_secret": READ_ONLY[1]}
    response = http.post("/connect/token", data=form, auth=OPERATOR)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_client"})


def test_no_credentials_at_all_are_invalid_client(http: httpx.Client) -> None:
    response = http.post("/connect/token", data={"grant_type": "client_credentials"})
    assert (response.status_code, response.json()) == (400, {"error": "invalid_client"})


@pytest.mark.parametrize(
    ("credentials", "scope"),
    [
        (READ_ONLY, "flow:workflows"),  # holds flow:events and disputes:view only
        (READ_ONLY, "flow"),  # a child never covers its parent
        (OPERATOR, "flow disputes"),  # one scope of several is enough to refuse
        (OPERATOR, "risk"),  # not a scope Checkout.com knows
    ],
)
def test_an_unprovisioned_scope_is_400_invalid_scope(
    http: httpx.Client, credentials: tuple[str, str], scope: str
) -> None:
    response = token_request(http, credentials, scope)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_scope"})


def test_a_parent_scope_on_the_key_covers_a_requested_child(http: httpx.Client) -> None:
    response = token_request(http, OPERATOR, "flow:workflows flow:events gateway:payment-details")
    assert response.status_code == 200
    assert response.json()["scope"] == "flow:workflows flow:events gateway:payment-details"


@pytest.mark.parametrize(
    ("form", "error"),
    [({}, "invalid_request"), ({"grant_type": "password"}, "unsupported_grant_type")],
)
def test_only_the_client_credentials_grant_is_served(
    http: httpx.Client, form: dict[str, str], error: str
) -> None:
    response = http.post("/connect/token", data=form, auth=OPERATOR)
    assert (response.status_code, response.json()) == (400, {"error": error})


def test_an_unknown_account_prefix_on_the_token_host_is_a_406_without_json(http: httpx.Client) -> None:
    response = token_request(http, OPERATOR, headers={"Host": "1234doma.access.sandbox.checkout.test"})
    assert response.status_code == 406
    assert response.content == b""
    assert_checkout_headers(response)


def test_an_account_token_host_serves_only_that_accounts_keys(
    emu: CheckoutEmulator, hosts: httpx.Client
) -> None:
    own = hosts.post(
        f"{emu.url_for(CLIENT, 'access')}/connect/token",
        data={"grant_type": "client_credentials", "scope": "flow"},
        auth=OPERATOR,
    )
    assert own.status_code == 200
    other = hosts.post(
        f"{emu.url_for(OTHER_CLIENT, 'access')}/connect/token",
        data={"grant_type": "client_credentials", "scope": "flow"},
        auth=OPERATOR,
    )
    assert (other.status_code, other.json()) == (400, {"error": "invalid_client"})


def test_what_an_empty_scope_grants_is_a_setting(emu: CheckoutEmulator, http: httpx.Client) -> None:
    everything = token(http, OPERATOR, scope="")
    assert http.get("/disputes", headers=bearer(everything)).status_code == 200
    emu.update_settings(empty_scope="none")
    response = token_request(http, OPERATOR, scope=None)
    assert response.status_code == 200
    assert response.json()["scope"] == ""
    nothing = response.json()["access_token"]
    assert http.get("/workflows", headers=bearer(nothing)).status_code == 401


def test_token_lifetime_and_the_scope_field_are_settings(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.update_settings(token_lifetime_seconds=120, token_response_scope=False)
    body = token_request(http, OPERATOR).json()
    assert body["expires_in"] == 120
    assert "scope" not in body
    claims = decode_claims(body["access_token"])
    assert claims["exp"] - claims["iat"] == 120


def test_every_issued_token_is_remembered_for_leak_scans(emu: CheckoutEmulator, http: httpx.Client) -> None:
    first, second = token(http), token(http, READ_ONLY, "flow:events")
    emu.reset()
    assert emu.issued_tokens()[-2:] == [first, second]


# Authentication on the API


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {SK_FULL}"},
        {"Authorization": SK_FULL},  # the previous platform's raw key style
        bearer("sk_sbox_unknownunknownunknownunknown2"),
        bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"),
        bearer(SK_EXPIRED),
    ],
)
def test_missing_or_bad_credentials_are_bodiless_401s(http: httpx.Client, headers: dict[str, str]) -> None:
    response = http.get("/workflows", headers=headers)
    assert response.status_code == 401
    assert response.content == b""
    assert_checkout_headers(response)


def test_401_bodies_can_be_json_by_setting(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.update_settings(unauthorized_body="json")
    response = http.get("/workflows")
    assert response.status_code == 401
    body = response.json()
    assert body == {"request_id": response.headers["Cko-Request-Id"], "error_type": "authentication_error"}


def test_tokens_and_secret_keys_both_authenticate(http: httpx.Client) -> None:
    assert http.get("/workflows", headers=bearer(token(http))).json() == {"data": []}
    assert http.get("/workflows", headers=bearer(SK_FULL)).json() == {"data": []}


def test_an_expired_token_is_a_401_until_a_new_one_is_fetched(
    emu: CheckoutEmulator, http: httpx.Client
) -> None:
    old = token(http)
    assert emu.expire_tokens() == 1
    assert http.get("/workflows", headers=bearer(old)).status_code == 401
    assert http.get("/workflows", headers=bearer(token(http))).status_code == 200


def test_expiring_or_revoking_a_key_takes_effect_at_once(emu: CheckoutEmulator, http: httpx.Client) -> None:
    outstanding = token(http)
    emu.revoke_key(OPERATOR[0])
    assert http.get("/workflows", headers=bearer(outstanding)).status_code == 401
    assert token_request(http, OPERATOR).json() == {"error": "invalid_client"}
    assert http.get("/workflows", headers=bearer(SK_WORKFLOWS)).status_code == 200
    emu.expire_key(SK_WORKFLOWS)
    assert http.get("/workflows", headers=bearer(SK_WORKFLOWS)).status_code == 401


def test_credentials_work_only_on_their_own_accounts_host(emu: CheckoutEmulator, hosts: httpx.Client) -> None:
    own = hosts.get(f"{emu.url_for(CLIENT)}/workflows", headers=bearer(SK_FULL))
    assert own.status_code == 200
    assert own.request.headers["Host"].startswith("vkuhvk4v.api.checkout.test")
    assert hosts.get(f"{emu.url_for(OTHER_CLIENT)}/workflows", headers=bearer(SK_FULL)).status_code == 401
    assert hosts.get(f"{emu.url_for(OTHER_CLIENT)}/workflows", headers=bearer(SK_OTHER)).status_code == 200
    unknown = hosts.get("http://zz99zz99.api.checkout.test:1/workflows", headers=bearer(SK_FULL))
    assert unknown.status_code == 401
    assert hosts.get(f"{emu.api_base}/workflows", headers=bearer(SK_OTHER)).status_code == 200


def test_sandbox_and_production_hosts_refuse_the_other_environments_credentials(
    emu: CheckoutEmulator, hosts: httpx.Client
) -> None:
    """Separate hosts per environment (docs/processors/checkout.md, "Hosts"): the other one does not
    know a credential."""
    form = {"grant_type": "client_credentials", "scope": "flow"}
    sandbox_auth, production_auth = "https://access.sandbox.checkout.com", "https://access.checkout.com"
    assert hosts.post(f"{sandbox_auth}/connect/token", data=form, auth=OPERATOR).status_code == 200
    refused = hosts.post(f"{production_auth}/connect/token", data=form, auth=OPERATOR)
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_client"})
    live = hosts.post(f"{production_auth}/connect/token", data=form, auth=PRODUCTION)
    assert live.status_code == 200
    refused = hosts.post(f"{sandbox_auth}/connect/token", data=form, auth=PRODUCTION)
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_client"})
    # The API hosts likewise: a token or key of the other environment is a 401.
    live_token = live.json()["access_token"]
    assert hosts.get("https://api.checkout.com/workflows", headers=bearer(live_token)).status_code == 200
    assert (
        hosts.get("https://api.sandbox.checkout.com/workflows", headers=bearer(live_token)).status_code == 401
    )
    assert hosts.get("https://api.checkout.com/workflows", headers=bearer(SK_FULL)).status_code == 401
    assert hosts.get("https://api.sandbox.checkout.com/workflows", headers=bearer(SK_FULL)).status_code == 200
    # The emulator's own names serve both environments.
    assert hosts.get(f"{emu.api_base}/workflows", headers=bearer(live_token)).status_code == 200
    assert hosts.get(f"{emu.api_base}/workflows", headers=bearer(SK_FULL)).status_code == 200


def test_a_plain_host_header_selects_the_account_too(emu: CheckoutEmulator, http: httpx.Client) -> None:
    headers = {**bearer(SK_FULL), "Host": "vkuhvk4v.api.sandbox.localhost"}
    response = http.post("/workflows", json=workflow_body(), headers=headers)
    assert response.status_code == 201
    assert response.json()["_links"]["self"]["href"].startswith(
        "http://vkuhvk4v.api.sandbox.localhost/workflows/wf_"
    )
    assert http.get("/workflows", headers={**bearer(SK_FULL), "Host": "o2h4tmzx.api.x"}).status_code == 401


@pytest.mark.parametrize("status", [401, 403])
def test_a_missing_scope_is_401_or_403_by_setting(
    emu: CheckoutEmulator, http: httpx.Client, status: int
) -> None:
    emu.update_settings(missing_scope_status=status)
    read_only = token(http, READ_ONLY, "flow:events disputes:view")
    denied = http.get("/workflows", headers=bearer(read_only))
    assert denied.status_code == status
    assert denied.content == b""
    assert http.get("/disputes?limit=1", headers=bearer(read_only)).status_code == 200
    emu.update_settings(unauthorized_body="json")
    body = http.get("/workflows", headers=bearer(read_only)).json()
    assert body["error_type"] == ("authentication_error" if status == 401 else "action_not_allowed")


def test_scope_changes_reach_keys_and_tokens(emu: CheckoutEmulator, http: httpx.Client) -> None:
    outstanding = token(http, OPERATOR, "flow disputes:view")
    emu.revoke(OPERATOR[0], "disputes:view")
    assert http.get("/disputes", headers=bearer(outstanding)).status_code == 401  # at once
    assert token_request(http, OPERATOR, "disputes:view").json() == {"error": "invalid_scope"}
    emu.grant(OPERATOR[0], "disputes")
    assert http.get("/disputes", headers=bearer(token(http, OPERATOR, "disputes"))).status_code == 200
    emu.revoke(SK_WORKFLOWS, "flow:workflows")
    assert http.get("/workflows", headers=bearer(SK_WORKFLOWS)).status_code == 401
    emu.grant(SK_WORKFLOWS, "flow")
    assert http.get("/workflows", headers=bearer(SK_WORKFLOWS)).status_code == 200


def test_adding_clients_at_run_time(emu: CheckoutEmulator, http: httpx.Client) -> None:
    production_key = "sk_" + "q" * 26 + "*"  # built here so no live-looking key sits in a file
    emu.add_clients(
        {
            "clients": [
                {
                    "id": "cli_n3wc1i3ntjn2edkps7dfsq6emqm",
                    "mode": "production",
                    "access_keys": [{"id": "ack_newclient", "secret": "s3cret-new", "scopes": ["flow"]}],
                    "secret_keys": [{"key": production_key, "scopes": ["disputes:view"]}],
                }
            ]
        }
    )
    assert http.get("/disputes", headers=bearer(production_key)).status_code == 200
    assert http.get("/workflows", headers=bearer(production_key)).status_code == 401
    new_token = token(http, ("ack_newclient", "s3cret-new"))
    workflow_id = create(http, new_token)
    assert [w["id"] for w in emu.workflows("cli_n3wc1i3ntjn2edkps7dfsq6emqm")] == [workflow_id]
    assert emu.workflows("cli_n3wc1i3ntjn2edkps7dfsq6emqm", "sandbox") == []
    emu.reset()
    assert http.get("/disputes", headers=bearer(production_key)).status_code == 401


# Scope probes

PROBES: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], int]] = [
    ("GET", "/workflows", None, ("flow", "flow:workflows"), 200),
    ("GET", "/disputes?limit=1", None, ("disputes", "disputes:view"), 200),
    ("GET", "/reports?limit=1", None, ("reports", "reports:view"), 200),
    (
        "GET",
        "/financial-actions?payment_id=pay_x",
        None,
        ("financial-actions", "financial-actions:view"),
        200,
    ),
    ("GET", f"/balances/{ENTITY}", None, ("balances", "balances:view"), 200),
    ("POST", "/payments/search", {"query": "id:'pay_x'", "limit": 1}, ("payments:search",), 200),
    ("GET", "/payments/pay_mbabizu24mvu3mela5njyhpit4", None, ("gateway", "gateway:payment-details"), 404),
    ("GET", "/files/file_6lbss42ezvoufcb2beo76rvwly", None, ("files", "files:retrieve"), 404),
    ("GET", "/workflows/events/subject/pay_mbabizu24mvu3mela5njyhpit4", None, ("flow", "flow:events"), 404),
]


@pytest.fixture
def bare_key(emu: CheckoutEmulator) -> str:
    """A secret key holding a scope no probe accepts."""
    emu.grant(SK_WORKFLOWS, "disputes:accept")
    emu.revoke(SK_WORKFLOWS, "flow:workflows", "balances:view")
    return SK_WORKFLOWS


@pytest.mark.parametrize(("method", "path", "body", "accepted", "allowed_status"), PROBES)
def test_each_probe_needs_its_scope_parent_or_child(
    emu: CheckoutEmulator,
    http: httpx.Client,
    bare_key: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    accepted: tuple[str, ...],
    allowed_status: int,
) -> None:
    headers = {**bearer(bare_key), **on_host_for(path)}
    denied = http.request(method, path, json=body, headers=headers)
    assert denied.status_code == 401
    for scope in accepted:
        emu.grant(bare_key, scope)
        allowed = http.request(method, path, json=body, headers=headers)
        assert allowed.status_code == allowed_status, (scope, allowed.text)
        assert_checkout_headers(allowed)
        emu.revoke(bare_key, scope)


def test_probe_answers_have_the_documented_shapes(http: httpx.Client) -> None:
    headers = bearer(SK_FULL)
    assert http.get("/disputes?limit=1", headers=headers).json() == {
        "limit": 1,
        "skip": 0,
        "total_count": 0,
        "data": [],
    }
    reports = http.get("/reports?limit=1", headers=headers).json()
    assert (reports["count"], reports["limit"], reports["data"]) == (0, 1, [])
    assert reports["_links"]["self"]["href"].endswith("/reports?limit=1")
    actions = http.get("/financial-actions?action_id=act_x", headers=headers).json()
    assert (actions["count"], actions["limit"], actions["data"]) == (0, 100, [])
    assert http.get(f"/balances/{ENTITY}", headers={**headers, **BALANCES_HOST}).json() == {"data": []}
    assert http.post("/payments/search", json={}, headers=headers).json() == {"data": []}
    assert http.get("/payments/pay_x", headers=headers).content == b""


def test_financial_actions_need_a_payment_or_action_id(http: httpx.Client) -> None:
    response = http.get("/financial-actions?limit=5", headers=bearer(SK_FULL))
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "invalid_request"
    assert body["request_id"] == response.headers["Cko-Request-Id"]
    assert body["error_codes"]


@pytest.mark.parametrize("query", ["limit=0", "limit=251", "skip=-1", "limit=many"])
def test_bad_dispute_paging_is_a_422(http: httpx.Client, query: str) -> None:
    assert http.get(f"/disputes?{query}", headers=bearer(SK_FULL)).status_code == 422


def test_balances_check_the_entity(emu: CheckoutEmulator, http: httpx.Client) -> None:
    def status(entity: str, key: str) -> int:
        return http.get(f"/balances/{entity}", headers={**bearer(key), **BALANCES_HOST}).status_code

    assert status("ent_notthisaccountsentity", SK_FULL) == 404
    # SK_WORKFLOWS is restricted to ENTITY.
    assert status(ENTITY, SK_WORKFLOWS) == 200
    assert status(OTHER_ENTITY, SK_WORKFLOWS) == 401
    emu.update_settings(missing_scope_status=403)
    assert status(OTHER_ENTITY, SK_WORKFLOWS) == 403


@pytest.mark.parametrize(
    "host",
    [
        None,  # the IP address: the classic API host
        "api.checkout.test",
        "vkuhvk4v.api.checkout.test",
        "vkuhvk4v.balances.checkout.test",  # the balances host is never prefixed
        "api.sandbox.checkout.com",
    ],
)
def test_balances_are_served_only_on_the_balances_host(http: httpx.Client, host: str | None) -> None:
    """Any other host answers /balances as an unknown path: a bodiless 404, whatever the scopes."""
    headers = bearer(SK_FULL) | ({"Host": host} if host else {})
    response = http.get(f"/balances/{ENTITY}", headers=headers)
    assert (response.status_code, response.content) == (404, b"")
    assert http.get(f"/balances/{ENTITY}", headers={"Host": host or "127.0.0.1"}).status_code == 401
    for balances in ("balances.checkout.test", "balances.sandbox.checkout.com"):
        served = http.get(f"/balances/{ENTITY}", headers={**bearer(SK_FULL), "Host": balances})
        assert served.status_code == 200


def test_unknown_paths_are_bodiless_404s_once_authenticated(http: httpx.Client) -> None:
    assert http.get("/webhooks", headers=bearer(SK_FULL)).status_code == 404
    assert http.get("/webhooks").status_code == 401
    not_allowed = http.put("/workflows", headers=bearer(SK_FULL))
    assert (not_allowed.status_code, not_allowed.content) == (405, b"")


# Workflows


def test_create_is_a_201_with_an_id_and_a_link_on_the_host_called(
    emu: CheckoutEmulator, hosts: httpx.Client
) -> None:
    base = emu.url_for(CLIENT)
    response = hosts.post(f"{base}/workflows", json=workflow_body(), headers=bearer(SK_FULL))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "_links"}
    assert WF_ID.match(body["id"])
    assert body["_links"] == {"self": {"href": f"{base}/workflows/{body['id']}"}}
    assert_checkout_headers(response)


def test_the_list_shows_only_id_name_active_and_links(http: httpx.Client) -> None:
    first = create(http, name="k8s:a/one")
    second = create(http, name="k8s:a/two", active=False)
    listed = http.get("/workflows", headers=bearer(SK_FULL)).json()
    assert list(listed) == ["data"]
    assert [(w["id"], w["name"], w["active"]) for w in listed["data"]] == [
        (first, "k8s:a/one", True),
        (second, "k8s:a/two", False),
    ]
    assert all(set(w) == {"id", "name", "active", "_links"} for w in listed["data"])


def test_get_shows_the_whole_workflow_with_secrets_masked(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    response = http.get(f"/workflows/{workflow_id}", headers=bearer(SK_FULL))
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["id", "name", "active", "conditions", "actions", "_links"]
    event, entity = body["conditions"]
    assert WFC_ID.match(event["id"])
    assert event["type"] == "event"
    assert event["events"] == {
        "gateway": ["payment_approved", "payment_captured"],
        "dispute": ["dispute_won"],
    }
    assert (entity["type"], entity["entities"]) == ("entity", [ENTITY])
    assert (
        event["_links"]["self"]["href"] == f"{emu.base_url}/workflows/{workflow_id}/conditions/{event['id']}"
    )
    (action,) = body["actions"]
    assert WFA_ID.match(action["id"])
    assert (action["type"], action["url"]) == ("webhook", HOOK)
    assert action["signature"]["method"] == "HMACSHA256"
    assert action["signature"]["key"] != SIGNING_KEY
    assert set(action["signature"]["key"][4:]) == {"*"}
    assert SIGNING_KEY not in response.text
    assert "receiver-shared-secret-value" not in response.text
    # Out of band, the test sees what procon set.
    assert emu.workflow(workflow_id)["actions"][0]["signature"]["key"] == SIGNING_KEY


def test_masking_can_be_turned_off(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.update_settings(mask_secrets_on_read=False)
    workflow_id = create(http)
    action = http.get(f"/workflows/{workflow_id}", headers=bearer(SK_FULL)).json()["actions"][0]
    assert action["signature"]["key"] == SIGNING_KEY
    assert action["headers"] == {"Authorization": "receiver-shared-secret-value"}


def test_patch_changes_name_and_active(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    response = http.patch(
        f"/workflows/{workflow_id}", json={"name": "renamed", "active": False}, headers=bearer(SK_FULL)
    )
    assert (response.status_code, response.json()) == (200, {"name": "renamed", "active": False})
    assert (emu.workflow(workflow_id)["name"], emu.workflow(workflow_id)["active"]) == ("renamed", False)
    missing_name = http.patch(f"/workflows/{workflow_id}", json={"active": True}, headers=bearer(SK_FULL))
    assert missing_name.status_code == 422
    assert missing_name.json()["error_codes"] == ["name_required"]


def test_patch_with_conditions_replaces_them(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    before = emu.workflow(workflow_id)["conditions"]
    conditions = [{"type": "event", "events": {"dispute": ["dispute_lost"]}}]
    response = http.patch(
        f"/workflows/{workflow_id}", json={"name": "same", "conditions": conditions}, headers=bearer(SK_FULL)
    )
    assert response.status_code == 200
    after = emu.workflow(workflow_id)["conditions"]
    assert [(c["type"], c["events"]) for c in after] == [("event", {"dispute": ["dispute_lost"]})]
    assert after[0]["id"] not in {c["id"] for c in before}


def test_put_action_rotates_the_signing_key_and_answers_200_without_a_body(
    emu: CheckoutEmulator, http: httpx.Client
) -> None:
    workflow_id = create(http)
    action_id = emu.workflow(workflow_id)["actions"][0]["id"]
    action = {
        "type": "webhook",
        "url": f"{HOOK}/v2",
        "signature": {"method": "HMACSHA256", "key": "rotated-key-987654"},
    }
    response = http.put(f"/workflows/{workflow_id}/actions/{action_id}", json=action, headers=bearer(SK_FULL))
    assert (response.status_code, response.content) == (200, b"")
    assert_checkout_headers(response)
    stored = emu.workflow(workflow_id)["actions"][0]
    assert (stored["id"], stored["url"], stored["signature"]["key"]) == (
        action_id,
        f"{HOOK}/v2",
        "rotated-key-987654",
    )
    assert "headers" not in stored  # PUT replaces the action whole
    unknown = http.put(
        f"/workflows/{workflow_id}/actions/wfa_{'a' * 26}", json=action, headers=bearer(SK_FULL)
    )
    assert unknown.status_code == 404


def test_conditions_can_be_added_replaced_and_removed(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    path = f"/workflows/{workflow_id}/conditions"
    channel = {"type": "processing_channel", "processing_channels": [CHANNEL]}
    added = http.post(path, json=channel, headers=bearer(SK_FULL))
    assert added.status_code == 201
    condition_id = added.json()["id"]
    assert WFC_ID.match(condition_id)
    assert added.json()["_links"]["self"]["href"].endswith(f"{path}/{condition_id}")
    again = http.post(path, json=channel, headers=bearer(SK_FULL))
    assert (again.status_code, again.json()["error_codes"]) == (422, ["condition_type_duplicate"])
    entity_id = emu.workflow(workflow_id)["conditions"][1]["id"]
    changed = http.put(
        f"{path}/{entity_id}", json={"type": "entity", "entities": [OTHER_ENTITY]}, headers=bearer(SK_FULL)
    )
    assert (changed.status_code, changed.content) == (200, b"")
    assert emu.workflow(workflow_id)["conditions"][1]["entities"] == [OTHER_ENTITY]
    clash = http.put(f"{path}/{entity_id}", json=channel, headers=bearer(SK_FULL))
    assert clash.status_code == 422
    assert http.delete(f"{path}/{condition_id}", headers=bearer(SK_FULL)).status_code == 204
    assert [c["type"] for c in emu.workflow(workflow_id)["conditions"]] == ["event", "entity"]


def test_actions_can_be_added_and_removed_but_not_the_last(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    first = emu.workflow(workflow_id)["actions"][0]["id"]
    added = http.post(
        f"/workflows/{workflow_id}/actions",
        json={"type": "webhook", "url": f"{HOOK}/2"},
        headers=bearer(SK_FULL),
    )
    assert added.status_code == 201
    assert WFA_ID.match(added.json()["id"])
    assert (
        http.delete(f"/workflows/{workflow_id}/actions/{first}", headers=bearer(SK_FULL)).status_code == 204
    )
    last = http.delete(f"/workflows/{workflow_id}/actions/{added.json()['id']}", headers=bearer(SK_FULL))
    assert (last.status_code, last.json()["error_codes"]) == (422, ["actions_required"])


def test_delete_is_a_204_and_then_the_workflow_is_gone(http: httpx.Client) -> None:
    workflow_id = create(http)
    deleted = http.delete(f"/workflows/{workflow_id}", headers=bearer(SK_FULL))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_checkout_headers(deleted)
    for method in ("GET", "DELETE", "PATCH"):
        gone = http.request(method, f"/workflows/{workflow_id}", json={"name": "x"}, headers=bearer(SK_FULL))
        assert (gone.status_code, gone.content) == (404, b"")


def test_workflows_belong_to_one_account(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    assert http.get("/workflows", headers=bearer(SK_OTHER)).json() == {"data": []}
    assert http.get(f"/workflows/{workflow_id}", headers=bearer(SK_OTHER)).status_code == 404
    assert http.delete(f"/workflows/{workflow_id}", headers=bearer(SK_OTHER)).status_code == 404
    assert [w["id"] for w in emu.workflows(CLIENT)] == [workflow_id]
    assert emu.workflows(OTHER_CLIENT) == []


def test_duplicates_are_allowed_and_idempotency_keys_are_ignored(
    emu: CheckoutEmulator, http: httpx.Client
) -> None:
    headers = {**bearer(SK_FULL), "Cko-Idempotency-Key": "pc-uid-1"}
    first = http.post("/workflows", json=workflow_body(), headers=headers)
    second = http.post("/workflows", json=workflow_body(), headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert len(emu.workflows(CLIENT)) == 2


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"actions": [{"type": "webhook"}]}, "url_required"),
        ({"conditions": []}, "conditions_required"),
        ({"actions": []}, "actions_required"),
        (
            {
                "conditions": [
                    {"type": "entity", "entities": [ENTITY]},
                    {"type": "entity", "entities": [OTHER_ENTITY]},
                ]
            },
            "condition_type_duplicate",
        ),
        (
            {"conditions": [{"type": "event", "events": {"gateway": ["payment_teleported"]}}]},
            "event_types_invalid",
        ),
    ],
)
def test_invalid_workflows_are_422_request_invalid(
    emu: CheckoutEmulator, http: httpx.Client, changes: dict[str, Any], code: str
) -> None:
    response = http.post("/workflows", json=workflow_body(**changes), headers=bearer(SK_FULL))
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"request_id", "error_type", "error_codes"}
    assert body["request_id"] == response.headers["Cko-Request-Id"]
    assert body["error_type"] == "request_invalid"
    assert code in body["error_codes"]
    assert emu.workflows(CLIENT) == []


def test_a_body_that_is_not_json_is_a_422_request_malformed(http: httpx.Client) -> None:
    response = http.post(
        "/workflows", content=b"{not json", headers={**bearer(SK_FULL), "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error_type"] == "request_malformed"


def test_a_workflow_limit_can_be_enforced_by_setting(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.update_settings(workflow_limit=2)
    create(http)
    create(http)
    third = http.post("/workflows", json=workflow_body(), headers=bearer(SK_FULL))
    assert (third.status_code, third.json()["error_codes"]) == (422, ["workflow_limit_exceeded"])


def test_an_oauth_token_with_flow_manages_workflows(http: httpx.Client) -> None:
    access = token(http, OPERATOR, "flow:workflows")
    workflow_id = create(http, access)
    assert http.get(f"/workflows/{workflow_id}", headers=bearer(access)).status_code == 200
    production = token(http, PRODUCTION, "flow")
    assert http.get(f"/workflows/{workflow_id}", headers=bearer(production)).status_code == 404


# Event types


def test_event_types_are_a_top_level_array_of_sources(http: httpx.Client) -> None:
    response = http.get("/workflows/event-types", headers=bearer(SK_FULL))
    assert response.status_code == 200
    sources = response.json()
    assert isinstance(sources, list)
    assert [(s["id"], s["display_name"]) for s in sources] == [
        ("gateway", "Gateway"),
        ("dispute", "Disputes"),
        ("fraud", "Fraud"),
        ("reports", "Reports"),
    ]
    for source in sources:
        assert set(source) == {"id", "display_name", "description", "events"}
        assert all(set(event) == {"id", "display_name", "description"} for event in source["events"])
    ids = {event["id"] for source in sources for event in source["events"]}
    for expected in (
        "payment_approved",
        "card_verification_declined",
        "dispute_won",
        "request_for_information_received",
    ):
        assert expected in ids
    assert [e["id"] for e in sources[2]["events"]] == ["fraud_reported"]
    assert [e["id"] for e in sources[3]["events"]] == ["report_generated"]


def test_the_fraud_and_reports_source_ids_are_settings(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.update_settings(fraud_source_id="fincrime", reports_source_id="reporting")
    sources = http.get("/workflows/event-types", headers=bearer(SK_FULL)).json()
    assert [s["id"] for s in sources][2:] == ["fincrime", "reporting"]
    old_id = [{"type": "event", "events": {"fraud": ["fraud_reported"]}}]
    assert (
        http.post("/workflows", json=workflow_body(conditions=old_id), headers=bearer(SK_FULL)).status_code
        == 422
    )
    new_id = [
        {"type": "event", "events": {"fincrime": ["fraud_reported"], "reporting": ["report_generated"]}}
    ]
    assert (
        http.post("/workflows", json=workflow_body(conditions=new_id), headers=bearer(SK_FULL)).status_code
        == 201
    )


# Faults, counting, holding


def test_rate_limiting_is_a_bodiless_429_with_checkout_headers(
    emu: CheckoutEmulator, http: httpx.Client
) -> None:
    emu.set_faults(rate_limit_rate=1.0)
    response = http.get("/workflows", headers=bearer(SK_FULL))
    assert (response.status_code, response.content) == (429, b"")
    assert_checkout_headers(response)
    assert "Retry-After" not in response.headers
    emu.update_settings(rate_limit_retry_after=2)
    assert http.post("/connect/token").headers["Retry-After"] == "2"
    assert emu.count(fault=FaultKind.RATE_LIMITED) == 2


def test_server_errors_are_bodiless_500s(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.set_faults(error_rate=1.0, path_prefix="/workflows")
    failed = http.post("/workflows", json=workflow_body(), headers=bearer(SK_FULL))
    assert (failed.status_code, failed.content) == (500, b"")
    assert_checkout_headers(failed)
    assert emu.workflows(CLIENT) == []
    assert http.get("/disputes", headers=bearer(SK_FULL)).status_code == 200  # outside the prefix
    assert http.get("/_emulator/state").status_code == 200  # control routes are never faulted


def test_commit_then_fail_leaves_a_workflow_behind_and_a_retry_duplicates_it(
    emu: CheckoutEmulator, http: httpx.Client
) -> None:
    emu.set_faults(commit_then_fail=1, commit_then_fail_path_prefix="/workflows")
    failed = http.post("/workflows", json=workflow_body(), headers=bearer(SK_FULL))
    assert failed.status_code == 500
    assert len(emu.workflows(CLIENT)) == 1  # committed before the answer was lost
    assert http.post("/workflows", json=workflow_body(), headers=bearer(SK_FULL)).status_code == 201
    assert len(emu.workflows(CLIENT)) == 2
    assert emu.count("POST", "/workflows", 500, fault=FaultKind.COMMIT_THEN_FAIL) == 1
    assert emu.count("POST", "/workflows", 201) == 1


def test_dropped_answers_look_like_a_broken_connection(emu: CheckoutEmulator, http: httpx.Client) -> None:
    emu.set_faults(commit_then_fail=1, commit_then_fail_mode="drop", commit_then_fail_method="DELETE")
    workflow_id = create(http)
    with pytest.raises(httpx.TransportError):
        http.delete(f"/workflows/{workflow_id}", headers=bearer(SK_FULL))
    assert emu.workflows(CLIENT) == []


def test_requests_are_counted_by_route(emu: CheckoutEmulator, http: httpx.Client) -> None:
    workflow_id = create(http)
    http.get(f"/workflows/{workflow_id}", headers=bearer(SK_FULL))
    token(http)
    assert emu.count("POST", "/workflows", 201) == 1
    assert emu.count("GET", "/workflows/{workflow_id}", 200) == 1
    assert emu.count("POST", "/connect/token", 200) == 1
    emu.reset_counters()
    assert emu.requests == []


def test_writes_can_be_held_at_the_point_of_execution(emu: CheckoutEmulator, http: httpx.Client) -> None:
    answers: list[httpx.Response] = []
    with emu.hold_writes() as gate:
        writer = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{emu.base_url}/workflows", json=workflow_body(), headers=bearer(SK_FULL), timeout=10
                )
            )
        )
        writer.start()
        assert gate.wait_for_waiting(1, timeout=10)
        assert http.get("/workflows", headers=bearer(SK_FULL)).json() == {"data": []}  # reads are not held
    writer.join(timeout=10)
    assert [a.status_code for a in answers] == [201]
    assert len(emu.workflows(CLIENT)) == 1


# Out-of-band changes and the control API


def test_out_of_band_changes_are_seen_by_the_api(emu: CheckoutEmulator, http: httpx.Client) -> None:
    created = emu.create_workflow(CLIENT, workflow_body(name="made in the Dashboard"))
    assert WF_ID.match(created["id"])
    assert created["actions"][0]["signature"]["key"] == SIGNING_KEY
    listed = http.get("/workflows", headers=bearer(SK_FULL)).json()["data"]
    assert [w["name"] for w in listed] == ["made in the Dashboard"]
    emu.update_workflow(created["id"], active=False, actions=[{"type": "webhook", "url": f"{HOOK}/moved"}])
    seen = http.get(f"/workflows/{created['id']}", headers=bearer(SK_FULL)).json()
    assert (seen["active"], seen["actions"][0]["url"]) == (False, f"{HOOK}/moved")
    emu.delete_workflow(created["id"])
    assert http.get(f"/workflows/{created['id']}", headers=bearer(SK_FULL)).status_code == 404
    with pytest.raises(ValueError, match="conditions_required"):
        emu.create_workflow(CLIENT, workflow_body(conditions=[]))
    with pytest.raises(KeyError):
        emu.delete_workflow(created["id"])


def test_the_control_api_dumps_state_without_secrets(emu: CheckoutEmulator, http: httpx.Client) -> None:
    access = token(http)
    create(http)
    dump = http.get("/_emulator/state")
    assert dump.status_code == 200
    assert "Cko-Request-Id" not in dump.headers
    text = dump.text
    for secret in (SK_FULL, SK_WORKFLOWS, OPERATOR[1], access, SIGNING_KEY, "receiver-shared-secret-value"):
        assert secret not in text
    assert "sk_sbox_" in text
    assert dump.json()["tokens"]["issued"] >= 1
    assert [c["prefix"] for c in dump.json()["clients"]] == ["vkuhvk4v", "o2h4tmzx", "l1vep7od"]


def test_the_control_api_changes_keys_and_tokens(http: httpx.Client) -> None:
    granted = http.post(f"/_emulator/keys/{READ_ONLY[0]}/grant", json=["flow:workflows"])
    assert granted.status_code == 200
    assert "flow:workflows" in granted.json()["scopes"]
    access = token(http, READ_ONLY, "flow:workflows")
    assert http.get("/workflows", headers=bearer(access)).status_code == 200
    assert (
        http.post(f"/_emulator/keys/{READ_ONLY[0]}/revoke", json={"scopes": ["flow:workflows"]}).status_code
        == 200
    )
    assert http.get("/workflows", headers=bearer(access)).status_code == 401
    assert http.post("/_emulator/tokens/expire", json={"key": READ_ONLY[0]}).json() == {"expired": 1}
    assert access in http.get("/_emulator/tokens").json()["issued"]
    assert http.post(f"/_emulator/keys/{SK_FULL}/expire").json()["expired"] is True
    assert http.get("/workflows", headers=bearer(SK_FULL)).status_code == 401
    assert http.delete(f"/_emulator/keys/{OPERATOR[0]}").json()["revoked"] is True
    assert http.post("/_emulator/keys/ack_unknown/expire").status_code == 404
    assert http.post(f"/_emulator/keys/{SK_OTHER}/grant", json=["Not A Scope"]).status_code == 400
    assert http.post("/_emulator/reset").status_code == 200
    assert http.get("/workflows", headers=bearer(SK_FULL)).status_code == 200


def test_the_control_api_changes_workflows_out_of_band(emu: CheckoutEmulator, http: httpx.Client) -> None:
    created = http.post("/_emulator/workflows", json={"client_id": CLIENT, **workflow_body()})
    assert created.status_code == 201
    workflow_id = created.json()["id"]
    assert created.json()["actions"][0]["signature"]["key"] == SIGNING_KEY
    assert [w["id"] for w in http.get(f"/_emulator/workflows?client_id={CLIENT}").json()["data"]] == [
        workflow_id
    ]
    changed = http.patch(f"/_emulator/workflows/{workflow_id}", json={"name": "renamed"})
    assert changed.json()["name"] == "renamed"
    assert http.patch(f"/_emulator/workflows/{workflow_id}", json={"colour": "blue"}).status_code == 400
    bad = http.post("/_emulator/workflows", json={"client_id": CLIENT, **workflow_body(actions=[])})
    assert bad.status_code == 400
    assert "actions_required" in bad.json()["error"]
    assert http.delete(f"/_emulator/workflows/{workflow_id}").status_code == 200
    assert http.delete(f"/_emulator/workflows/{workflow_id}").status_code == 404
    assert emu.workflows(CLIENT) == []


def test_the_control_api_sets_faults_settings_and_clients(emu: CheckoutEmulator, http: httpx.Client) -> None:
    assert (
        http.put("/_emulator/faults", json={"error_rate": 1.0, "path_prefix": "/disputes"}).status_code == 200
    )
    assert http.get("/disputes", headers=bearer(SK_FULL)).status_code == 500
    assert http.put("/_emulator/faults", json={"eror_rate": 1}).status_code == 400
    assert (
        http.put("/_emulator/settings", json={"missing_scope_status": 403}).json()["missing_scope_status"]
        == 403
    )
    assert http.put("/_emulator/settings", json={"missing_scope_status": 404}).status_code == 400
    client = {"id": "cli_ctrlc1i3jn2edkps7dfsq6emqm", "secret_keys": [{"key": "sk_sbox_" + "c" * 26 + "2"}]}
    assert http.post("/_emulator/clients", json={"clients": [client]}).status_code == 200
    assert http.get("/workflows", headers=bearer("sk_sbox_" + "c" * 26 + "2")).status_code == 200
    assert http.post("/_emulator/clients", json={"clients": [{"id": "nope"}]}).status_code == 400
    counted = http.get("/_emulator/requests").json()
    assert {"method": "GET", "route": "/disputes", "status": 500, "count": 1} in counted["counters"]


# Deliveries


class Receiver:
    """A webhook receiver on localhost that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((dict(self.headers.items()), self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def test_emitted_events_reach_matching_workflows_signed(
    emu: CheckoutEmulator, http: httpx.Client, receiver: Receiver
) -> None:
    create(http, url=receiver.url)
    create(
        http,
        url=receiver.url,
        name="disputes only",
        conditions=[{"type": "event", "events": {"dispute": ["dispute_lost"]}}],
    )
    create(http, url=receiver.url, name="off", active=False)
    delivered = emu.emit_event(
        CLIENT, "payment_approved", entity_id=ENTITY, subject_id="pay_mbabizu24mvu3mela5njyhpit4"
    )
    assert [d.status for d in delivered] == [200]
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert delivered[0].body == body
    assert delivered[0].verify(SIGNING_KEY)
    assert headers["Authorization"] == "receiver-shared-secret-value"
    assert headers["Cko-Signature"] == hmac.new(SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()
    # The event is then visible through the events API.
    event_id = delivered[0].event_id
    event = http.get(f"/workflows/events/{event_id}", headers=bearer(SK_FULL)).json()
    assert (event["id"], event["type"], event["source"]) == (event_id, "payment_approved", "gateway")
    subject = http.get(
        "/workflows/events/subject/pay_mbabizu24mvu3mela5njyhpit4", headers=bearer(SK_FULL)
    ).json()
    assert [e["id"] for e in subject["data"]] == [event_id]
    assert emu.emit_event(CLIENT, "payment_approved", entity_id=OTHER_ENTITY) == []  # the entity filter
    with pytest.raises(ValueError, match="no event source"):
        emu.emit_event(CLIENT, "payment_teleported")


def test_a_workflow_test_is_a_204_then_signed_deliveries(
    emu: CheckoutEmulator, http: httpx.Client, receiver: Receiver
) -> None:
    workflow_id = create(http, url=receiver.url)
    path = f"/workflows/{workflow_id}/test"
    response = http.post(
        path, json={"event_types": ["payment_approved", "dispute_won"]}, headers=bearer(SK_FULL)
    )
    assert (response.status_code, response.content) == (204, b"")
    assert emu.wait_for_deliveries(2, timeout=10)
    deliveries = emu.deliveries()
    assert sorted(d.event_type for d in deliveries) == ["dispute_won", "payment_approved"]
    assert all(d.status == 200 and d.verify(SIGNING_KEY) for d in deliveries)
    invalid = http.post(path, json={"event_types": ["payment_declined"]}, headers=bearer(SK_FULL))
    assert (invalid.status_code, invalid.json()["error_codes"]) == (422, ["event_types_invalid"])


def test_a_failed_delivery_is_recorded(emu: CheckoutEmulator, http: httpx.Client) -> None:
    closed = Receiver()
    closed.close()  # nothing listens there any more
    create(http, url=closed.url)
    (delivery,) = emu.emit_event(CLIENT, "payment_captured", entity_id=ENTITY)
    assert delivery.status is None
    assert delivery.error


def test_the_control_api_emits_events(http: httpx.Client, receiver: Receiver) -> None:
    create(http, url=receiver.url)
    response = http.post(
        "/_emulator/events", json={"client_id": CLIENT, "type": "payment_captured", "entity_id": ENTITY}
    )
    assert response.status_code == 200
    (delivery,) = response.json()["deliveries"]
    assert delivery["status"] == 200
    assert len(http.get("/_emulator/deliveries").json()["deliveries"]) == 1
    assert (
        http.post("/_emulator/events", json={"client_id": "cli_nobodyhere1", "type": "x"}).status_code == 404
    )


# The operator's way in: an async httpx client on named hosts


def test_an_async_client_with_the_transport_sees_the_same_api(emu: CheckoutEmulator) -> None:
    async def scenario() -> tuple[int, int, str, int]:
        async with httpx.AsyncClient(transport=emu.transport(), timeout=10) as client:
            issued = await client.post(
                f"{emu.url_for(CLIENT, 'access')}/connect/token",
                data={"grant_type": "client_credentials", "scope": "flow disputes:view"},
                auth=OPERATOR,
            )
            access = issued.json()["access_token"]
            api = emu.url_for(CLIENT)
            created = await client.post(f"{api}/workflows", json=workflow_body(), headers=bearer(access))
            listed = await client.get(f"{api}/workflows", headers=bearer(access))
            denied = await client.get(f"{api}/reports", headers=bearer(access))
        return (
            issued.status_code,
            created.status_code,
            listed.json()["data"][0]["_links"]["self"]["href"],
            denied.status_code,
        )

    issued, created, href, denied = asyncio.run(scenario())
    assert (issued, created, denied) == (200, 201, 401)
    assert href.startswith(f"http://vkuhvk4v.api.checkout.test:{emu.port}/workflows/wf_")


def test_every_answer_has_its_own_request_id(http: httpx.Client) -> None:
    answers = [
        http.get("/workflows", headers=bearer(SK_FULL)),
        http.get("/workflows"),
        http.get("/nothing", headers=bearer(SK_FULL)),
        http.post("/connect/token"),
    ]
    assert [a.status_code for a in answers] == [200, 401, 404, 400]
    ids = [a.headers["Cko-Request-Id"] for a in answers]
    assert all(UUID.match(i) for i in ids)
    assert len(set(ids)) == 4
    assert {a.headers["Cko-Version"] for a in answers} == {answers[0].headers["Cko-Version"]}
    uuid.UUID(ids[0])


# The command line


def test_the_cli_serves_the_checkout_emulator() -> None:
    command = [
        sys.executable,
        "-m",
        "procon.cli",
        "emulate",
        "checkout",
        "--fixture",
        str(DEMO_FIXTURE),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the emulator printed nothing within 30s"
        base_url = process.stdout.readline().split(" listening on ")[1].split()[0]
        assert httpx.get(f"{base_url}/workflows", headers=bearer(SK_FULL)).json() == {"data": []}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_the_cli_reports_a_bad_checkout_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "bad.yaml"
    fixture.write_text("clients:\n  - id: cli_abcdefgh1\n    secret_keys: [{key: sk_sbox_nonsense_123}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "procon.cli", "emulate", "checkout", "--fixture", str(fixture)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "clients[0].secret_keys[0].key" in result.stderr
    assert "sk_sbox_nonsense_123" not in result.stderr

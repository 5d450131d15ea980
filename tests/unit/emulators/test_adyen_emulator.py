"""The Adyen emulator over HTTP, driven with raw httpx as procon drives it.

Each test states a fact from docs/processors/adyen.md (or an emulator setting
standing in for an unconfirmed one) and checks the emulator keeps it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from procon.emulators.adyen import AdyenEmulator
from procon.emulators.adyen.notifications import signing_string
from procon.emulators.faults import FaultKind

DEMO_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "adyen-demo.yaml"

COMPANY = "ProconDemoCompany"
ECOM, POS, MARKET = "ProconDemoECOM", "ProconDemoPOS", "ProconDemoMarket"
OTHER_COMPANY, OTHER_MERCHANT = "ProconOtherCompany", "ProconOtherECOM"

OPERATOR = "AQEprocondemooperatortestkey00000000001"
READ_ONLY = "AQEprocondemoreadonlytestkey00000000002"
MERCHANT_KEY = "AQEprocondemomerchanttestkey00000000003"
PAYMENTS_ONLY = "AQEprocondemopaymentsonlykey00000000004"
SPEC_SPELLING = "AQEprocondemospecspellingkey00000000005"
INACTIVE = "AQEprocondemoinactivetestkey00000000006"
RESTRICTED = "AQEprocondemorestrictedtestk00000000007"
LIVE = "AQEprocondemooperatorlivekey00000000011"
OTHER = "AQEprocondemoothercompanykey00000000021"
OPERATOR_USER = "ws_100001@Company.ProconDemoCompany"

WEBHOOKS_RW = "Management API - Webhooks read and write"
HOOK = "https://hooks.example.com/adyen"
WEBHOOK_ID = re.compile(r"^S2-[0-9A-F]{12}$")
HEX64 = re.compile(r"^[0-9A-F]{64}$")
REQUEST_ID = re.compile(r"^[A-Z0-9]{16}$")
COMPANY_HOOKS = f"/v3/companies/{COMPANY}/webhooks"
ECOM_HOOKS = f"/v3/merchants/{ECOM}/webhooks"
LIST_ROUTE = "/{version}/{level}/{account}/webhooks"


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[AdyenEmulator]:
    with AdyenEmulator.from_fixture(DEMO_FIXTURE, seed=7) as emulator:
        yield emulator


@pytest.fixture
def emu(running_emulator: AdyenEmulator) -> AdyenEmulator:
    running_emulator.reset()
    return running_emulator


@pytest.fixture
def http(emu: AdyenEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP on the emulator's address (either environment, by the key's)."""
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def hosts(emu: AdyenEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP on named hosts (``management-live.adyen.test``) through the emulator's transport."""
    with httpx.Client(transport=emu.sync_transport(), timeout=10) as client:
        yield client


def key(api_key: str) -> dict[str, str]:
    return {"X-API-Key": api_key}


def company_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "standard",
        "url": HOOK,
        "active": False,
        "communicationFormat": "json",
        "filterMerchantAccountType": "allAccounts",
        "description": "procon:default/payments:1a2b3c4d",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def merchant_body(**changes: Any) -> dict[str, Any]:
    body = company_body(filterMerchantAccountType=None, **changes)
    body.pop("filterMerchantAccountType", None)
    return body


def create(http: httpx.Client, path: str = COMPANY_HOOKS, api_key: str = OPERATOR, **changes: Any) -> str:
    body = company_body(**changes) if "/companies/" in path else merchant_body(**changes)
    response = http.post(path, json=body, headers=key(api_key))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def assert_error(response: httpx.Response, status: int, code: str, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert body["errorCode"] == code
    assert body["type"] == f"https://docs.adyen.com/errors/{kind}"
    assert body["title"]
    assert body["detail"]
    assert REQUEST_ID.match(body["requestId"])
    return dict(body)


# Authentication and environments


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "AQEnotakeyanyoneknowsofatall0000"},
        {"Authorization": f"Bearer {OPERATOR}"},
    ],
)
def test_a_missing_or_unknown_key_is_401_00_401(http: httpx.Client, headers: dict[str, str]) -> None:
    body = assert_error(http.get("/v3/me", headers=headers), 401, "00_401", "unauthorized")
    assert body["title"] == "Unauthorized"
    # authentication comes first: an unknown path without a key is a 401 too
    assert http.get("/v3/nothing-here", headers=headers).status_code == 401


def test_the_address_serves_each_key_in_its_own_environment(http: httpx.Client) -> None:
    assert http.get("/v3/me", headers=key(LIVE)).status_code == 200
    test_id = create(http)
    live_id = create(http, api_key=LIVE)
    test_list = http.get(COMPANY_HOOKS, headers=key(OPERATOR)).json()["data"]
    live_list = http.get(COMPANY_HOOKS, headers=key(LIVE)).json()["data"]
    assert [w["id"] for w in test_list] == [test_id]
    assert [w["id"] for w in live_list] == [live_id]
    # a test webhook does not exist in live
    assert_error(http.get(f"{COMPANY_HOOKS}/{test_id}", headers=key(LIVE)), 422, "30_112", "not-found")


def test_environment_hosts_refuse_the_other_environments_keys(
    emu: AdyenEmulator, hosts: httpx.Client
) -> None:
    test_url, live_url = emu.url_for("test"), emu.url_for("live")
    assert hosts.get(f"{test_url}/me", headers=key(OPERATOR)).status_code == 200
    assert hosts.get(f"{live_url}/me", headers=key(LIVE)).status_code == 200
    # "a test key does not work" in live, and a live key is unknown to test
    assert_error(hosts.get(f"{live_url}/me", headers=key(OPERATOR)), 401, "00_401", "unauthorized")
    assert_error(hosts.get(f"{test_url}/me", headers=key(LIVE)), 401, "00_401", "unauthorized")
    # the real host names say the same
    real_live = f"http://management-live.adyen.com:{emu.port}/v3/me"
    assert hosts.get(real_live, headers=key(OPERATOR)).status_code == 401


def test_a_path_prefix_names_the_environment_on_the_address(emu: AdyenEmulator, http: httpx.Client) -> None:
    test_base, live_base = emu.api_base_for("test"), emu.api_base_for("live")
    assert test_base == f"{emu.base_url}/test/v3"
    live = http.get(f"{live_base}/me", headers=key(LIVE))
    assert live.status_code == 200
    assert live.json()["_links"]["self"]["href"].startswith(f"{live_base}/companies/")
    assert_error(http.get(f"{live_base}/me", headers=key(OPERATOR)), 401, "00_401", "unauthorized")
    assert_error(http.get(f"{test_base}/me", headers=key(LIVE)), 401, "00_401", "unauthorized")
    created = http.post(f"{live_base}/companies/{COMPANY}/webhooks", json=company_body(), headers=key(LIVE))
    assert created.json()["_links"]["self"]["href"].startswith(f"{live_base}/companies/{COMPANY}/webhooks/")
    assert emu.webhooks(environment="live")[0]["id"] == created.json()["id"]
    assert emu.count("POST", "/{environment}/{version}/{level}/{account}/webhooks", 200) == 1
    # an unknown path under a prefix is still held to the prefix's environment
    assert http.get(f"{live_base}/nothing-here", headers=key(OPERATOR)).status_code == 401


def test_the_address_can_be_held_to_one_environment_by_setting(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    emu.update_settings(default_environment="test")
    assert http.get("/v3/me", headers=key(OPERATOR)).status_code == 200
    assert http.get("/v3/me", headers=key(LIVE)).status_code == 401


# GET /me and roles


def test_me_shows_the_credential_without_a_company_id(emu: AdyenEmulator, http: httpx.Client) -> None:
    response = http.get("/v3/me", headers=key(OPERATOR))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    me = response.json()
    assert me["id"] == "S2-50726F636F6E01"
    assert me["username"] == OPERATOR_USER
    assert me["roles"] == [WEBHOOKS_RW, "Management API - Accounts read", "Checkout webservice role"]
    assert me["active"] is True
    assert me["allowedIpAddresses"] == []
    assert me["clientKey"].startswith("test_")
    assert me["companyName"] == COMPANY
    assert "companyId" not in me
    links = me["_links"]
    assert links["company"]["href"] == f"{emu.base_url}/v3/companies/{COMPANY}"
    assert "merchant" not in links
    assert links["self"]["href"].startswith(f"{emu.base_url}/v3/companies/{COMPANY}/apiCredentials/")
    assert {"generateApiKey", "generateClientKey", "allowedOrigins"} <= set(links)


def test_me_of_a_merchant_level_key_links_its_merchant(emu: AdyenEmulator, http: httpx.Client) -> None:
    me = http.get("/v3/me", headers=key(MERCHANT_KEY)).json()
    assert me["_links"]["merchant"]["href"] == f"{emu.base_url}/v3/merchants/{ECOM}"
    assert "company" not in me["_links"]
    assert me["companyName"] == COMPANY


def test_me_keeps_the_role_spellings_it_was_given(http: httpx.Client) -> None:
    me = http.get("/v3/me", headers=key(SPEC_SPELLING)).json()
    assert me["roles"] == [
        "Management API\u2014Webhooks read and write",
        "Management API \u2014 Payment methods read",
    ]


def test_me_without_a_management_role_is_403_or_401_by_setting(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    assert_error(http.get("/v3/me", headers=key(PAYMENTS_ONLY)), 403, "00_403", "forbidden")
    emu.update_settings(me_without_management_role_status=401)
    assert_error(http.get("/v3/me", headers=key(PAYMENTS_ONLY)), 401, "00_401", "unauthorized")


def test_an_inactive_credential_shows_on_me_and_is_refused_elsewhere(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    me = http.get("/v3/me", headers=key(INACTIVE))
    assert (me.status_code, me.json()["active"]) == (200, False)
    assert_error(http.get(COMPANY_HOOKS, headers=key(INACTIVE)), 401, "00_401", "unauthorized")
    emu.set_active("S2-50726F636F6E06", True)
    assert http.get(COMPANY_HOOKS, headers=key(INACTIVE)).status_code == 200
    emu.set_active(OPERATOR_USER, False)
    assert http.get(COMPANY_HOOKS, headers=key(OPERATOR)).status_code == 401


def test_webhooks_read_lists_and_gets_but_writes_need_read_and_write(http: httpx.Client) -> None:
    webhook_id = create(http)
    assert http.get(COMPANY_HOOKS, headers=key(READ_ONLY)).status_code == 200
    assert http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(READ_ONLY)).status_code == 200
    writes = [
        ("POST", COMPANY_HOOKS, company_body()),
        ("PATCH", f"{COMPANY_HOOKS}/{webhook_id}", {"active": True}),
        ("DELETE", f"{COMPANY_HOOKS}/{webhook_id}", None),
        ("POST", f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", None),
        ("POST", f"{COMPANY_HOOKS}/{webhook_id}/test", {"types": ["AUTHORISATION"]}),
    ]
    for method, path, body in writes:
        response = http.request(method, path, json=body, headers=key(READ_ONLY))
        refused = assert_error(response, 403, "00_403", "forbidden")
        assert (refused["title"], refused["detail"]) == ("Forbidden", "Not allowed")
    # and a key with no webhook role at all cannot even read
    assert http.get(COMPANY_HOOKS, headers=key(PAYMENTS_ONLY)).status_code == 403


def test_the_role_check_comes_before_the_webhook_lookup(http: httpx.Client) -> None:
    response = http.get(f"{COMPANY_HOOKS}/S2-000000000000", headers=key(PAYMENTS_ONLY))
    assert_error(response, 403, "00_403", "forbidden")


def test_any_spelling_of_a_role_is_the_same_role(emu: AdyenEmulator, http: httpx.Client) -> None:
    create(http, api_key=SPEC_SPELLING)
    # revoking by the spec's spelling takes away the /me spelling, at once
    emu.revoke(OPERATOR_USER, "Management API\u2014Webhooks read and write")
    assert WEBHOOKS_RW not in http.get("/v3/me", headers=key(OPERATOR)).json()["roles"]
    assert http.post(COMPANY_HOOKS, json=company_body(), headers=key(OPERATOR)).status_code == 403
    emu.grant(OPERATOR_USER, "Management API - Webhooks read")
    assert http.get(COMPANY_HOOKS, headers=key(OPERATOR)).status_code == 200
    assert http.post(COMPANY_HOOKS, json=company_body(), headers=key(OPERATOR)).status_code == 403


# Account scoping


def test_a_merchant_level_key_gets_403_on_company_paths(http: httpx.Client) -> None:
    assert_error(http.get(COMPANY_HOOKS, headers=key(MERCHANT_KEY)), 403, "00_403", "forbidden")
    assert http.get(ECOM_HOOKS, headers=key(MERCHANT_KEY)).status_code == 200
    companies = http.get("/v3/companies", headers=key(MERCHANT_KEY))
    # Account read is missing: the 403 is ambiguous, as the docs say
    assert companies.status_code == 403


def test_unreachable_accounts_are_422_30_112_or_403_by_setting(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    unreachable = [
        (OPERATOR, f"/v3/companies/{OTHER_COMPANY}/webhooks"),
        (OPERATOR, f"/v3/merchants/{OTHER_MERCHANT}/webhooks"),
        (OPERATOR, "/v3/merchants/NoSuchMerchant/webhooks"),
        (MERCHANT_KEY, f"/v3/merchants/{POS}/webhooks"),
        (RESTRICTED, f"/v3/merchants/{MARKET}/webhooks"),
    ]
    for api_key, path in unreachable:
        assert_error(http.get(path, headers=key(api_key)), 422, "30_112", "not-found")
    emu.update_settings(unreachable_account_status=403)
    for api_key, path in unreachable:
        assert_error(http.get(path, headers=key(api_key)), 403, "00_403", "forbidden")
    assert http.get(f"/v3/merchants/{POS}/webhooks", headers=key(RESTRICTED)).status_code == 200


def test_companies_and_merchants_list_what_the_key_reaches(http: httpx.Client) -> None:
    companies = http.get("/v3/companies", headers=key(OPERATOR)).json()
    assert [c["id"] for c in companies["data"]] == [COMPANY]
    merchants = http.get(f"/v3/companies/{COMPANY}/merchants", headers=key(RESTRICTED)).json()
    assert [m["id"] for m in merchants["data"]] == [ECOM, POS]
    assert (merchants["itemsTotal"], merchants["pagesTotal"]) == (2, 1)


def test_a_merchant_level_key_with_account_read_sees_no_companies(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    emu.grant("ws_100003@Company.ProconDemoCompany", "Management API - Accounts read")
    companies = http.get("/v3/companies", headers=key(MERCHANT_KEY))
    assert (companies.status_code, companies.json()["data"]) == (200, [])


# Webhooks: create, get, update, delete


def test_create_is_a_200_with_the_full_webhook(emu: AdyenEmulator, http: httpx.Client) -> None:
    response = http.post(
        COMPANY_HOOKS,
        json=company_body(username="procon", password="basic-auth-password", active=True),
        headers=key(OPERATOR),
    )
    assert response.status_code == 200
    hook = response.json()
    assert WEBHOOK_ID.match(hook["id"])
    assert {
        k: hook[k] for k in ("type", "url", "active", "communicationFormat", "description", "username")
    } == {
        "type": "standard",
        "url": HOOK,
        "active": True,
        "communicationFormat": "json",
        "description": "procon:default/payments:1a2b3c4d",
        "username": "procon",
    }
    assert hook["hasPassword"] is True
    assert "password" not in hook
    assert hook["hasError"] is False
    assert hook["encryptionProtocol"] == "TLSv1.2"
    assert hook["certificateAlias"] == "signed-test.adyen.com_2024"
    assert hook["filterMerchantAccountType"] == "allAccounts"
    assert "filterMerchantAccounts" not in hook
    assert hook["additionalSettings"] == {"includeEventCodes": [], "excludeEventCodes": [], "properties": {}}
    assert "hmacKeyCheckValue" not in hook  # no HMAC key yet
    href = f"{emu.base_url}{COMPANY_HOOKS}/{hook['id']}"
    assert hook["_links"] == {
        "self": {"href": href},
        "generateHmac": {"href": f"{href}/generateHmac"},
        "testWebhook": {"href": f"{href}/test"},
        "company": {"href": f"{emu.base_url}/v3/companies/{COMPANY}"},
    }
    assert http.get(f"{COMPANY_HOOKS}/{hook['id']}", headers=key(OPERATOR)).json() == hook


def test_a_webhook_without_a_description_gets_adyens(http: httpx.Client) -> None:
    webhook_id = create(http, ECOM_HOOKS, description=None)
    hook = http.get(f"{ECOM_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json()
    assert re.match(rf"^Webhook for {ECOM} - \d{{13}}$", hook["description"])
    assert hook["username"] == ""
    assert hook["_links"]["merchant"]["href"].endswith(f"/v3/merchants/{ECOM}")


def test_company_webhooks_filter_merchant_accounts(http: httpx.Client) -> None:
    body = company_body(filterMerchantAccountType="includeAccounts", filterMerchantAccounts=[ECOM, POS])
    hook = http.post(COMPANY_HOOKS, json=body, headers=key(OPERATOR)).json()
    assert (hook["filterMerchantAccountType"], hook["filterMerchantAccounts"]) == (
        "includeAccounts",
        [ECOM, POS],
    )
    # the filter is required unless all accounts are meant; and names the company's merchants only
    missing = http.post(
        COMPANY_HOOKS, json=company_body(filterMerchantAccountType="excludeAccounts"), headers=key(OPERATOR)
    )
    assert [f["name"] for f in assert_error(missing, 422, "00_422", "validation")["invalidFields"]] == [
        "filterMerchantAccounts"
    ]
    foreign = company_body(
        filterMerchantAccountType="includeAccounts", filterMerchantAccounts=[OTHER_MERCHANT]
    )
    assert http.post(COMPANY_HOOKS, json=foreign, headers=key(OPERATOR)).status_code == 422
    assert (
        http.post(
            COMPANY_HOOKS, json=company_body(filterMerchantAccounts=[]), headers=key(OPERATOR)
        ).status_code
        == 200
    )


def test_create_refuses_invalid_webhooks_naming_every_field(http: httpx.Client) -> None:
    body = {
        "url": "ftp://hooks.example.com",
        "active": "yes",
        "communicationFormat": "xml",
        "type": "nonsense",
    }
    response = http.post(COMPANY_HOOKS, json=body, headers=key(OPERATOR))
    refused = assert_error(response, 422, "00_422", "validation")
    names = sorted(f["name"] for f in refused["invalidFields"])
    assert names == [
        "active",
        "communicationFormat",
        "filterMerchantAccountType",
        "filterMerchantAccounts",
        "type",
        "url",
    ]
    assert all({"name", "value", "message"} <= set(f) for f in refused["invalidFields"])


def test_required_fields_are_required(http: httpx.Client) -> None:
    response = http.post(ECOM_HOOKS, json={"url": HOOK}, headers=key(OPERATOR))
    names = {f["name"] for f in assert_error(response, 422, "00_422", "validation")["invalidFields"]}
    assert names == {"active", "communicationFormat", "type"}


def test_active_as_a_string_is_accepted(http: httpx.Client) -> None:
    webhook_id = create(http, ECOM_HOOKS, active="true")
    assert http.get(f"{ECOM_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json()["active"] is True


def test_invalid_fields_can_be_wrapped_by_setting(emu: AdyenEmulator, http: httpx.Client) -> None:
    emu.update_settings(wrap_invalid_fields=True)
    response = http.post(ECOM_HOOKS, json=merchant_body(communicationFormat="xml"), headers=key(OPERATOR))
    fields = assert_error(response, 422, "00_422", "validation")["invalidFields"]
    assert fields[0]["InvalidField"]["name"] == "communicationFormat"


def test_a_body_that_is_not_json_is_a_400(http: httpx.Client) -> None:
    response = http.post(COMPANY_HOOKS, content=b"{not json", headers=key(OPERATOR))
    assert_error(response, 400, "00_400", "validation")


@pytest.mark.parametrize(
    ("environment", "url", "protocol", "allowed"),
    [
        ("test", "http://hooks.example.com/adyen", "HTTP", True),
        ("test", "http://hooks.example.com:8080/adyen", "HTTP", True),
        ("test", "http://hooks.example.com:8000/adyen", "HTTP", False),
        ("test", "https://hooks.example.com:8843/adyen", "TLSv1.3", True),
        ("test", "https://hooks.example.com:9443/adyen", "TLSv1.2", False),
        ("live", "https://hooks.example.com/adyen", "TLSv1.2", True),
        ("live", "https://hooks.example.com:8443/adyen", "TLSv1.3", True),
        ("live", "http://hooks.example.com/adyen", "TLSv1.2", False),
        ("live", "https://hooks.example.com/adyen", "HTTP", False),
        ("live", "https://hooks.example.com:8080/adyen", "TLSv1.2", False),
    ],
)
def test_endpoints_follow_the_documented_schemes_ports_and_protocols(
    http: httpx.Client, environment: str, url: str, protocol: str, allowed: bool
) -> None:
    api_key = LIVE if environment == "live" else OPERATOR
    body = company_body(url=url, encryptionProtocol=protocol)
    response = http.post(COMPANY_HOOKS, json=body, headers=key(api_key))
    assert response.status_code == (200 if allowed else 422), response.text


def test_port_checks_can_be_turned_off(emu: AdyenEmulator, http: httpx.Client) -> None:
    body = company_body(url="http://127.0.0.1:4567/hooks")
    assert http.post(COMPANY_HOOKS, json=body, headers=key(OPERATOR)).status_code == 422
    emu.update_settings(check_endpoint_ports=False)
    assert http.post(COMPANY_HOOKS, json=body, headers=key(OPERATOR)).status_code == 200


def test_the_merchant_list_never_shows_company_webhooks(http: httpx.Client) -> None:
    company_id = create(http)
    merchant_id = create(http, ECOM_HOOKS)
    assert [w["id"] for w in http.get(ECOM_HOOKS, headers=key(OPERATOR)).json()["data"]] == [merchant_id]
    assert [w["id"] for w in http.get(COMPANY_HOOKS, headers=key(OPERATOR)).json()["data"]] == [company_id]
    # a webhook exists only under its own account
    assert http.get(f"{ECOM_HOOKS}/{company_id}", headers=key(OPERATOR)).status_code == 422
    assert http.get(f"{COMPANY_HOOKS}/{merchant_id}", headers=key(OPERATOR)).status_code == 422


def test_an_unknown_webhook_id_is_a_422_30_112_everywhere(http: httpx.Client) -> None:
    path = f"{COMPANY_HOOKS}/S2-0123456789AB"
    calls = [
        ("GET", path, None),
        ("PATCH", path, {"active": True}),
        ("DELETE", path, None),
        ("POST", f"{path}/generateHmac", None),
        ("POST", f"{path}/test", {"types": ["AUTHORISATION"]}),
    ]
    for method, target, body in calls:
        response = http.request(method, target, json=body, headers=key(OPERATOR))
        assert assert_error(response, 422, "30_112", "not-found")["title"] == "Entity was not found"


def test_an_unknown_path_is_a_404_00_404(http: httpx.Client) -> None:
    assert_error(http.get("/v3/nothing-here", headers=key(OPERATOR)), 404, "00_404", "not-found")
    assert_error(http.put(COMPANY_HOOKS, json={}, headers=key(OPERATOR)), 404, "00_404", "not-found")
    assert http.get("/v2/me", headers=key(OPERATOR)).status_code == 404


def test_update_merges_and_answers_the_whole_webhook(http: httpx.Client) -> None:
    webhook_id = create(http, username="procon", password="first")
    response = http.patch(
        f"{COMPANY_HOOKS}/{webhook_id}",
        json={
            "active": True,
            "url": f"{HOOK}/moved",
            "additionalSettings": {"includeEventCodes": ["CAPTURE"]},
        },
        headers=key(OPERATOR),
    )
    assert response.status_code == 200
    hook = response.json()
    assert (hook["active"], hook["url"], hook["username"], hook["hasPassword"]) == (
        True,
        f"{HOOK}/moved",
        "procon",
        True,
    )
    assert hook["description"] == "procon:default/payments:1a2b3c4d"
    assert hook["additionalSettings"]["includeEventCodes"] == ["CAPTURE"]
    assert http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json() == hook
    # an empty password removes it; the password itself is never shown
    cleared = http.patch(f"{COMPANY_HOOKS}/{webhook_id}", json={"password": ""}, headers=key(OPERATOR)).json()
    assert cleared["hasPassword"] is False
    assert "password" not in cleared
    invalid = http.patch(f"{COMPANY_HOOKS}/{webhook_id}", json={"url": "not a url"}, headers=key(OPERATOR))
    assert_error(invalid, 422, "00_422", "validation")


def test_the_type_is_immutable_ignored_or_refused_by_setting(emu: AdyenEmulator, http: httpx.Client) -> None:
    webhook_id = create(http)
    changed = http.patch(
        f"{COMPANY_HOOKS}/{webhook_id}", json={"type": "report-notification"}, headers=key(OPERATOR)
    )
    assert (changed.status_code, changed.json()["type"]) == (200, "standard")
    emu.update_settings(patch_type="reject")
    refused = http.patch(
        f"{COMPANY_HOOKS}/{webhook_id}", json={"type": "report-notification"}, headers=key(OPERATOR)
    )
    assert assert_error(refused, 422, "00_422", "validation")["invalidFields"][0]["name"] == "type"


def test_delete_is_a_204_without_a_body_and_then_the_webhook_is_gone(http: httpx.Client) -> None:
    webhook_id = create(http)
    response = http.delete(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR))
    assert (response.status_code, response.content) == (204, b"")
    assert http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).status_code == 422
    assert http.delete(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).status_code == 422


def test_duplicate_urls_are_allowed_and_idempotency_keys_are_ignored(http: httpx.Client) -> None:
    headers = {**key(OPERATOR), "Idempotency-Key": "procon-create-1"}
    first = http.post(COMPANY_HOOKS, json=company_body(), headers=headers).json()
    second = http.post(COMPANY_HOOKS, json=company_body(), headers=headers).json()
    assert first["id"] != second["id"]
    assert http.get(COMPANY_HOOKS, headers=key(OPERATOR)).json()["itemsTotal"] == 2


def test_v1_names_the_protocol_ssl_version(emu: AdyenEmulator, http: httpx.Client) -> None:
    body = company_body(sslVersion="TLSv1.3")
    hook = http.post(f"/v1/companies/{COMPANY}/webhooks", json=body, headers=key(OPERATOR)).json()
    assert hook["sslVersion"] == "TLSv1.3"
    assert "encryptionProtocol" not in hook
    assert hook["_links"]["self"]["href"].startswith(f"{emu.base_url}/v1/")
    v3 = http.get(f"{COMPANY_HOOKS}/{hook['id']}", headers=key(OPERATOR)).json()
    assert v3["encryptionProtocol"] == "TLSv1.3"
    assert "sslVersion" not in v3


def test_a_webhook_limit_can_be_set(emu: AdyenEmulator, http: httpx.Client) -> None:
    for _ in range(3):
        create(http)
    emu.update_settings(webhook_limit=3)
    assert_error(
        http.post(COMPANY_HOOKS, json=company_body(), headers=key(OPERATOR)), 422, "00_422", "validation"
    )
    # the limit is per account: the merchant's store is another
    create(http, ECOM_HOOKS)


# Pages


def test_lists_come_in_pages_with_true_totals_and_links(emu: AdyenEmulator, http: httpx.Client) -> None:
    made = [create(http, description=f"hook {n}") for n in range(25)]
    first = http.get(COMPANY_HOOKS, headers=key(OPERATOR)).json()  # default page size 10
    assert (first["itemsTotal"], first["pagesTotal"], len(first["data"])) == (25, 3, 10)
    assert first["accountReference"] == COMPANY
    links = first["_links"]
    base = f"{emu.base_url}{COMPANY_HOOKS}"
    assert links["first"]["href"] == f"{base}?pageNumber=1&pageSize=10"
    assert links["last"]["href"] == f"{base}?pageNumber=3&pageSize=10"
    assert links["next"]["href"] == f"{base}?pageNumber=2&pageSize=10"
    assert "prev" not in links
    last = http.get(COMPANY_HOOKS, params={"pageNumber": 3, "pageSize": 10}, headers=key(OPERATOR)).json()
    assert len(last["data"]) == 5
    assert "next" not in last["_links"]
    assert last["_links"]["prev"]["href"] == f"{base}?pageNumber=2&pageSize=10"
    seen = [
        w["id"]
        for n in (1, 2, 3)
        for w in http.get(COMPANY_HOOKS, params={"pageNumber": n}, headers=key(OPERATOR)).json()["data"]
    ]
    assert seen == made  # oldest first
    past = http.get(COMPANY_HOOKS, params={"pageNumber": 9}, headers=key(OPERATOR))
    assert (past.status_code, past.json()["data"], past.json()["itemsTotal"]) == (200, [], 25)
    whole = http.get(COMPANY_HOOKS, params={"pageSize": 100}, headers=key(OPERATOR)).json()
    assert (whole["pagesTotal"], len(whole["data"])) == (1, 25)
    emu.update_settings(newest_first=True)
    newest = http.get(COMPANY_HOOKS, params={"pageSize": 100}, headers=key(OPERATOR)).json()["data"]
    assert [w["id"] for w in newest] == made[::-1]


def test_an_empty_list_has_no_pages(http: httpx.Client) -> None:
    empty = http.get(ECOM_HOOKS, headers=key(OPERATOR)).json()
    assert (empty["itemsTotal"], empty["pagesTotal"], empty["data"]) == (0, 0, [])


def test_a_page_size_above_100_is_refused_or_clamped_by_setting(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    refused = http.get(COMPANY_HOOKS, params={"pageSize": 101}, headers=key(OPERATOR))
    assert assert_error(refused, 422, "00_422", "validation")["invalidFields"][0]["name"] == "pageSize"
    emu.update_settings(page_size_over_max="clamp")
    clamped = http.get(COMPANY_HOOKS, params={"pageSize": 500}, headers=key(OPERATOR)).json()
    assert clamped["_links"]["self"]["href"].endswith("pageSize=100")


@pytest.mark.parametrize(
    "query", [{"pageNumber": "0"}, {"pageNumber": "x"}, {"pageSize": "0"}, {"pageSize": "-3"}]
)
def test_bad_page_parameters_are_422(http: httpx.Client, query: dict[str, str]) -> None:
    assert_error(http.get(COMPANY_HOOKS, params=query, headers=key(OPERATOR)), 422, "00_422", "validation")


# HMAC keys


def check_value(hmac_key: str) -> str:
    return hashlib.sha256(bytes.fromhex(hmac_key)).hexdigest()[:6].upper()


def test_generate_hmac_gives_a_key_and_the_webhook_its_check_value(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    webhook_id = create(http)
    response = http.post(f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", headers=key(OPERATOR))
    assert response.status_code == 200
    assert list(response.json()) == ["hmacKey"]
    hmac_key = response.json()["hmacKey"]
    assert HEX64.match(hmac_key)
    hook = http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json()
    assert hook["hmacKeyCheckValue"] == check_value(hmac_key)
    assert re.match(r"^[0-9A-F]{6}$", hook["hmacKeyCheckValue"])
    assert hmac_key not in json.dumps(hook)  # no call shows the key again
    assert emu.webhook(webhook_id)["hmacKey"] == hmac_key


def test_generating_again_replaces_the_key(emu: AdyenEmulator, http: httpx.Client) -> None:
    webhook_id = create(http)
    first = http.post(f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", headers=key(OPERATOR)).json()["hmacKey"]
    second = http.post(f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", headers=key(OPERATOR)).json()["hmacKey"]
    assert first != second
    hook = http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json()
    assert hook["hmacKeyCheckValue"] == check_value(second)
    stored = emu.webhook(webhook_id)
    assert (stored["hmacKey"], stored["previousHmacKey"]) == (second, first)
    assert emu.hmac_keys_seen()[-2:] == [first, second]


def test_a_key_typed_in_out_of_band_changes_the_check_value(emu: AdyenEmulator, http: httpx.Client) -> None:
    webhook_id = create(http)
    typed = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    emu.set_hmac_key(webhook_id, typed.lower())
    hook = http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json()
    assert hook["hmacKeyCheckValue"] == check_value(typed)
    with pytest.raises(ValueError, match="hexadecimal"):
        emu.set_hmac_key(webhook_id, "not-hex")


def test_generate_hmac_right_after_a_create_can_fail_by_setting(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    emu.update_settings(generate_hmac_failures_after_create=1)
    webhook_id = create(http)
    path = f"{COMPANY_HOOKS}/{webhook_id}/generateHmac"
    assert_error(http.post(path, headers=key(OPERATOR)), 500, "00_500", "internal")
    assert "hmacKeyCheckValue" not in http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR)).json()
    assert http.post(path, headers=key(OPERATOR)).status_code == 200


# POST …/test


class Receiver:
    """A webhook receiver on localhost that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((dict(self.headers.items()), self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"[accepted]")

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
def receiver(emu: AdyenEmulator) -> Iterator[Receiver]:
    emu.update_settings(check_endpoint_ports=False)  # the receiver listens on a random port
    hook = Receiver()
    yield hook
    hook.close()


def test_a_test_sends_signed_notifications_and_reports_the_answers(
    emu: AdyenEmulator, http: httpx.Client, receiver: Receiver
) -> None:
    body = company_body(
        url=receiver.url,
        filterMerchantAccountType="includeAccounts",
        filterMerchantAccounts=[ECOM, POS],
        username="procon",
        password="basic-secret",
    )
    webhook_id = http.post(COMPANY_HOOKS, json=body, headers=key(OPERATOR)).json()["id"]
    hmac_key = http.post(f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", headers=key(OPERATOR)).json()[
        "hmacKey"
    ]
    response = http.post(
        f"{COMPANY_HOOKS}/{webhook_id}/test", json={"types": ["AUTHORISATION"]}, headers=key(OPERATOR)
    )
    assert response.status_code == 200
    results = response.json()["data"]
    assert [r["merchantId"] for r in results] == [ECOM, POS]
    assert all(r["status"] == "success" and r["responseCode"] == "200" for r in results)
    assert all(re.match(r"^\d+ ms$", r["responseTime"]) for r in results)
    assert len(receiver.received) == 2
    headers, raw = receiver.received[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"procon:basic-secret").decode()
    payload = json.loads(raw)
    assert payload["live"] == "false"
    item = payload["notificationItems"][0]["NotificationRequestItem"]
    assert (item["eventCode"], item["merchantAccountCode"], item["success"]) == (
        "AUTHORISATION",
        ECOM,
        "true",
    )
    expected = base64.b64encode(
        hmac.new(bytes.fromhex(hmac_key), signing_string(item).encode(), hashlib.sha256).digest()
    ).decode()
    assert item["additionalData"]["hmacSignature"] == expected
    assert [d.merchant_id for d in emu.deliveries()] == [ECOM, POS]


def test_a_failed_test_delivery_is_reported_as_failed(emu: AdyenEmulator, http: httpx.Client) -> None:
    emu.update_settings(check_endpoint_ports=False)
    webhook_id = create(http, ECOM_HOOKS, url="http://127.0.0.1:9/nothing-listens")
    response = http.post(
        f"{ECOM_HOOKS}/{webhook_id}/test", json={"types": ["AUTHORISATION"]}, headers=key(OPERATOR)
    )
    (result,) = response.json()["data"]
    assert (result["status"], result["merchantId"]) == ("failed", ECOM)
    assert emu.deliveries()[0].status is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "types"),
        ({"types": ["CAPTURE"]}, "types"),
        ({"types": ["CUSTOM"]}, "notification"),
        ({"types": ["AUTHORISATION"], "merchantIds": [OTHER_MERCHANT]}, "merchantIds"),
        ({"types": ["AUTHORISATION"], "merchantIds": [f"M{n:03}" for n in range(21)]}, "merchantIds"),
    ],
)
def test_test_requests_are_validated(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    webhook_id = create(http)
    response = http.post(f"{COMPANY_HOOKS}/{webhook_id}/test", json=body, headers=key(OPERATOR))
    assert assert_error(response, 422, "00_422", "validation")["invalidFields"][0]["name"] == field


# Faults, counting, holding


def test_rate_limiting_is_too_many_requests_as_429_or_500(emu: AdyenEmulator, http: httpx.Client) -> None:
    emu.set_faults(rate_limit_rate=1.0)
    limited = assert_error(http.get(COMPANY_HOOKS, headers=key(OPERATOR)), 429, "00_500", "internal")
    assert limited["detail"] == "too many requests"
    emu.update_settings(rate_limit_status=500)
    assert http.get(COMPANY_HOOKS, headers=key(OPERATOR)).status_code == 500
    assert emu.count(fault=FaultKind.RATE_LIMITED) == 2


def test_server_errors_are_00_500_and_change_nothing(emu: AdyenEmulator, http: httpx.Client) -> None:
    emu.set_faults(error_rate=1.0, path_prefix=COMPANY_HOOKS)
    assert_error(
        http.post(COMPANY_HOOKS, json=company_body(), headers=key(OPERATOR)), 500, "00_500", "internal"
    )
    assert emu.webhooks() == []
    assert http.get("/v3/me", headers=key(OPERATOR)).status_code == 200  # outside the prefix
    assert http.get("/_emulator/state").status_code == 200  # control routes are never faulted


def test_commit_then_fail_leaves_a_webhook_behind_and_a_retry_duplicates_it(
    emu: AdyenEmulator, http: httpx.Client
) -> None:
    emu.set_faults(commit_then_fail=1, commit_then_fail_path_prefix=COMPANY_HOOKS)
    failed = http.post(COMPANY_HOOKS, json=company_body(), headers={**key(OPERATOR), "Idempotency-Key": "k1"})
    assert_error(failed, 500, "00_500", "internal")
    assert len(emu.webhooks(company=COMPANY)) == 1  # committed before the answer was lost
    assert (
        http.post(
            COMPANY_HOOKS, json=company_body(), headers={**key(OPERATOR), "Idempotency-Key": "k1"}
        ).status_code
        == 200
    )
    assert len(emu.webhooks(company=COMPANY)) == 2
    assert emu.count("POST", LIST_ROUTE, 500, fault=FaultKind.COMMIT_THEN_FAIL) == 1


def test_a_lost_generate_hmac_answer_still_replaced_the_key(emu: AdyenEmulator, http: httpx.Client) -> None:
    webhook_id = create(http)
    emu.set_faults(
        commit_then_fail=1, commit_then_fail_mode="drop", commit_then_fail_path_prefix=COMPANY_HOOKS
    )
    with pytest.raises(httpx.TransportError):
        http.post(f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", headers=key(OPERATOR))
    assert emu.webhook(webhook_id)["hmacKeyCheckValue"] is not None


def test_malformed_answers_come_from_the_shared_plan(emu: AdyenEmulator, http: httpx.Client) -> None:
    emu.set_faults(malformed="html", malformed_status=502, malformed_count=1)
    response = http.get("/v3/me", headers=key(OPERATOR))
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert http.get("/v3/me", headers=key(OPERATOR)).status_code == 200


def test_requests_are_counted_by_route(emu: AdyenEmulator, http: httpx.Client) -> None:
    webhook_id = create(http)
    http.get(f"{COMPANY_HOOKS}/{webhook_id}", headers=key(OPERATOR))
    http.get("/v3/me", headers=key(OPERATOR))
    assert emu.count("POST", LIST_ROUTE, 200) == 1
    assert emu.count("GET", f"{LIST_ROUTE}/{{webhook_id}}", 200) == 1
    assert emu.count("GET", "/{version}/me", 200) == 1
    emu.reset_counters()
    assert emu.requests == []


def test_writes_can_be_held_at_the_point_of_execution(emu: AdyenEmulator, http: httpx.Client) -> None:
    answers: list[httpx.Response] = []
    with emu.hold_writes() as gate:
        writer = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{emu.base_url}{COMPANY_HOOKS}", json=company_body(), headers=key(OPERATOR), timeout=10
                )
            )
        )
        writer.start()
        assert gate.wait_for_waiting(1, timeout=10)
        assert http.get(COMPANY_HOOKS, headers=key(OPERATOR)).json()["data"] == []  # reads are not held
    writer.join(timeout=10)
    assert [a.status_code for a in answers] == [200]
    assert len(emu.webhooks()) == 1


def test_every_error_has_its_own_request_id(http: httpx.Client) -> None:
    ids = {http.get("/v3/me").json()["requestId"] for _ in range(5)}
    assert len(ids) == 5


# Out-of-band changes and the control API


def test_out_of_band_changes_are_seen_by_the_api(emu: AdyenEmulator, http: httpx.Client) -> None:
    made = emu.create_webhook(company_body(description="made in the Customer Area"), company=COMPANY)
    assert WEBHOOK_ID.match(made["id"])
    assert [w["description"] for w in http.get(COMPANY_HOOKS, headers=key(OPERATOR)).json()["data"]] == [
        "made in the Customer Area"
    ]
    emu.update_webhook(made["id"], active=True, url=f"{HOOK}/moved")
    seen = http.get(f"{COMPANY_HOOKS}/{made['id']}", headers=key(OPERATOR)).json()
    assert (seen["active"], seen["url"]) == (True, f"{HOOK}/moved")
    emu.delete_webhook(made["id"])
    assert http.get(f"{COMPANY_HOOKS}/{made['id']}", headers=key(OPERATOR)).status_code == 422
    with pytest.raises(ValueError, match="communicationFormat"):
        emu.create_webhook(merchant_body(communicationFormat="xml"), merchant=ECOM)
    with pytest.raises(KeyError):
        emu.delete_webhook(made["id"])


def test_the_control_api_dumps_state_without_keys(emu: AdyenEmulator, http: httpx.Client) -> None:
    webhook_id = create(http)
    hmac_key = http.post(f"{COMPANY_HOOKS}/{webhook_id}/generateHmac", headers=key(OPERATOR)).json()[
        "hmacKey"
    ]
    dump = http.get("/_emulator/state").text
    assert OPERATOR not in dump
    assert hmac_key not in dump
    assert OPERATOR[-4:] in dump  # keys are masked, not dropped
    state = json.loads(dump)
    assert state["webhooks"][0]["hmacKeyCheckValue"] == check_value(hmac_key)
    # every key since start, resets included: for leak scans
    assert http.get("/_emulator/hmac-keys").json()["generated"][-1] == hmac_key


def test_the_control_api_changes_roles_and_credentials(http: httpx.Client) -> None:
    revoked = http.post(f"/_emulator/credentials/{OPERATOR_USER}/revoke", json=[WEBHOOKS_RW]).json()
    assert WEBHOOKS_RW not in revoked["roles"]
    assert http.post(COMPANY_HOOKS, json=company_body(), headers=key(OPERATOR)).status_code == 403
    http.post(f"/_emulator/credentials/{OPERATOR_USER}/grant", json={"roles": [WEBHOOKS_RW]})
    assert http.post(COMPANY_HOOKS, json=company_body(), headers=key(OPERATOR)).status_code == 200
    http.put(f"/_emulator/credentials/{OPERATOR_USER}/roles", json=["Checkout webservice role"])
    assert http.get("/v3/me", headers=key(OPERATOR)).status_code == 403
    http.put(f"/_emulator/credentials/{OPERATOR_USER}/roles", json={"roles": [WEBHOOKS_RW]})
    http.post(f"/_emulator/credentials/{OPERATOR_USER}/deactivate")
    assert http.get("/v3/me", headers=key(OPERATOR)).json()["active"] is False
    assert http.post("/_emulator/credentials/ws_nobody@Company.X/activate").status_code == 404
    added = http.post(
        "/_emulator/credentials",
        json={
            "companies": [{"id": "AddedCompany", "merchants": ["AddedECOM"]}],
            "credentials": [
                {
                    "username": "ws_900001@Company.AddedCompany",
                    "api_key": "AQEaddedatruntimekey000000001",
                    "company": "AddedCompany",
                    "roles": [WEBHOOKS_RW],
                }
            ],
        },
    )
    assert added.status_code == 200
    assert (
        http.get("/v3/merchants/AddedECOM/webhooks", headers=key("AQEaddedatruntimekey000000001")).status_code
        == 200
    )
    again = http.post(
        "/_emulator/credentials",
        json={
            "credentials": [
                {"username": "ws_x@Company.AddedCompany", "api_key": OPERATOR, "company": "AddedCompany"}
            ]
        },
    )
    assert again.status_code == 400
    assert OPERATOR not in again.text


def test_the_control_api_changes_webhooks_out_of_band(http: httpx.Client) -> None:
    made = http.post("/_emulator/webhooks", json={"environment": "test", "merchant": ECOM, **merchant_body()})
    assert made.status_code == 201
    webhook_id = made.json()["id"]
    assert http.patch(f"/_emulator/webhooks/{webhook_id}", json={"active": True}).json()["active"] is True
    keyed = http.post(f"/_emulator/webhooks/{webhook_id}/hmac", json={}).json()
    assert HEX64.match(keyed["hmacKey"])
    assert keyed["hmacKeyCheckValue"] == check_value(keyed["hmacKey"])
    listed = http.get("/_emulator/webhooks", params={"level": "merchant", "account": ECOM}).json()["data"]
    assert [w["id"] for w in listed] == [webhook_id]
    assert http.delete(f"/_emulator/webhooks/{webhook_id}").json() == {"id": webhook_id, "deleted": True}
    assert http.get(f"/_emulator/webhooks/{webhook_id}").status_code == 404
    assert http.post("/_emulator/webhooks", json={"merchant": ECOM, "url": HOOK}).status_code == 400


def test_the_control_api_sets_faults_and_settings(emu: AdyenEmulator, http: httpx.Client) -> None:
    assert http.put("/_emulator/settings", json={"webhook_limit": 1}).json()["webhook_limit"] == 1
    assert http.put("/_emulator/settings", json={"webhook_limit": 0}).status_code == 400
    assert http.put("/_emulator/settings", json={"nonsense": 1}).status_code == 400
    http.put("/_emulator/faults", json={"error_rate": 1.0})
    assert http.get("/v3/me", headers=key(OPERATOR)).status_code == 500
    requests = http.get("/_emulator/requests").json()
    assert requests["requests"][-1]["fault"] == "server_error"
    http.post("/_emulator/reset")
    assert http.get("/v3/me", headers=key(OPERATOR)).status_code == 200
    assert emu.state.settings.webhook_limit is None


# Clients


def test_an_async_client_with_the_transport_sees_the_same_api(emu: AdyenEmulator) -> None:
    async def run() -> list[int]:
        async with httpx.AsyncClient(transport=emu.transport(), base_url=emu.url_for("live")) as client:
            me = await client.get("/me", headers=key(LIVE))
            refused = await client.get("/me", headers=key(OPERATOR))
            return [me.status_code, refused.status_code]

    assert asyncio.run(run()) == [200, 401]


def test_the_emulator_serves_as_an_http_proxy_for_named_hosts(emu: AdyenEmulator) -> None:
    with httpx.Client(proxy=emu.base_url, timeout=10) as client:
        live = client.get("http://management-live.adyen.test/v3/me", headers=key(LIVE))
        assert live.status_code == 200
        assert live.json()["_links"]["self"]["href"].startswith("http://management-live.adyen.test/v3/")
        assert client.get("http://management-live.adyen.test/v3/me", headers=key(OPERATOR)).status_code == 401


# The command line


def test_the_cli_serves_the_adyen_emulator() -> None:
    command = [
        sys.executable,
        "-m",
        "procon.cli",
        "emulate",
        "adyen",
        "--fixture",
        str(DEMO_FIXTURE),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the emulator printed nothing within 30s"
        announced = process.stdout.readline()
        base_url = announced.split(" listening on ")[1].split()[0]
        assert f"{base_url}/live/v3" in announced  # how to reach one environment
        assert httpx.get(f"{base_url}/v3/me", headers=key(OPERATOR)).json()["username"] == OPERATOR_USER
        assert httpx.get(f"{base_url}/live/v3/me", headers=key(OPERATOR)).status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_the_cli_reports_a_bad_adyen_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "bad.yaml"
    fixture.write_text(
        "companies: [{id: Acme}]\n"
        "credentials:\n"
        "  - {username: ws@Company.Acme, api_key: AQEsecretkeyvalue123, merchant: Nope}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "procon.cli", "emulate", "adyen", "--fixture", str(fixture)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "credentials[0].merchant" in result.stderr
    assert "AQEsecretkeyvalue123" not in result.stderr

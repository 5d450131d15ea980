"""The Adyen driver against answers of every shape, through ``httpx.MockTransport``.

A small in-test Adyen (:class:`FakeAdyen`) answers the Management API calls the
driver makes, the way docs/processors/adyen.md describes them; tests replace
single answers with hostile ones (a proxy's page, a body cut short, wrong
types, a listing without end) and check what the driver makes of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from procon import metrics
from procon import redaction as procon_redaction
from procon.api.schema import Mode
from procon.processors import calls
from procon.processors.adyen import redaction as adyen_redaction
from procon.processors.adyen import roles, settings
from procon.processors.adyen.driver import API_KEY_FIELD, AdyenDriver
from procon.processors.adyen.settings import REAL_API
from procon.processors.adyen.spec import AdyenOptions
from procon.processors.adyen.webhook import (
    AdyenChanges,
    AdyenDesired,
    AdyenTarget,
    compare,
    create_body,
    events_digest,
    marker,
    owner_of,
    parse_webhook,
)
from procon.processors.base import (
    Comparison,
    Credentials,
    CredentialsRejected,
    MalformedResponse,
    NotFound,
    PermissionDenied,
    ProcessorError,
    RateLimited,
    RequestRejected,
    TransientProcessorError,
    WebhookChanges,
)
from procon.processors.calls import CallAdmission, RateLimit
from procon.reconcile.ownership import CLUSTER, MANAGED_BY, NAME, NAMESPACE, UID, Owner
from procon.settings import SettingsError

T = TypeVar("T")

# Shaped like Adyen's keys (docs/processors/adyen.md, "Key shapes"), built here so none sits whole.
TEST_KEY = "AQE" + "yhmfxL4PJahZCw0m" * 4 + "==-" + "lUKXT9IQ5GZ6d6RH4nnu" * 2 + "=-<anpTLkW{]ZgGy,7"
LIVE_KEY = "AQE" + "rnhmfuXNWTK0Qc+i" * 4 + "==-" + "AOBzxgPlXqtBf91jbKBJ" * 2 + "=-Px5Jgb5:B6;[^D"
TEST_HOST = "management-test.adyen.com"
LIVE_HOST = "management-live.adyen.com"
COMPANY = AdyenTarget(mode=Mode.TEST, level="companies", account="AcmeCorp")
MERCHANT = AdyenTarget(mode=Mode.TEST, level="merchants", account="AcmeCorpECOM")
OWNER = Owner(cluster="unit", namespace="payments", name="adyen", uid="uid-1")
HOOK = "https://hooks.example.com/adyen"
ALL_ROLES = [
    "Management API - Webhooks read and write",
    "Management API - Accounts read",
    "Merchant PAL Webservice role",
]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def check_value(key: str) -> str:
    return hashlib.sha256(bytes.fromhex(key)).hexdigest()[:6].upper()


@dataclass
class FakeAdyen:
    """Just enough Management API for the driver: /me, and webhooks per account."""

    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {host, roles, active, level}
    webhooks: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # account path -> id -> body
    requests: list[httpx.Request] = field(default_factory=list)
    # Answers to use instead, by (method, path regex): each a list popped in order, or a callable.
    overrides: list[tuple[str, str, Callable[[httpx.Request], httpx.Response | None]]] = field(
        default_factory=list
    )
    next_id: int = 0x4A3B33202A46
    next_key: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def driver(self, **kwargs: Any) -> AdyenDriver:
        kwargs.setdefault("sleep", _no_sleep)
        return AdyenDriver(transport=self.transport(), **kwargs)

    def override(
        self, method: str, path: str, answer: Callable[[httpx.Request], httpx.Response | None]
    ) -> None:
        self.overrides.append((method, path, answer))

    def calls(self, method: str | None = None, path: str = "") -> list[str]:
        return [
            f"{r.method} {r.url.path}"
            for r in self.requests
            if (method is None or r.method == method) and re.search(path, r.url.path)
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, path, answer in self.overrides:
            if request.method == method and re.fullmatch(path, request.url.path):
                response = answer(request)
                if response is not None:
                    return response
        key = self.keys.get(request.headers.get("X-API-Key", ""))
        if key is None or key["host"] != request.url.host:
            return problem(401, "00_401", "Unauthorized")
        path = request.url.path.removeprefix("/v3")
        if path == "/me":
            links: dict[str, Any] = {"self": {"href": "x"}}
            links["company" if key.get("level", "companies") == "companies" else "merchant"] = {"href": "y"}
            return httpx.Response(
                200,
                json={
                    "id": "S2-78712F343C575E",
                    "username": "ws_038292@Company.AcmeCorp",
                    "roles": key["roles"],
                    "active": key.get("active", True),
                    "allowedIpAddresses": [],
                    "clientKey": "test_X",
                    "_links": links,
                },
            )
        match = re.fullmatch(r"/(companies|merchants)/([^/]+)/webhooks(?:/([^/]+))?(/generateHmac)?", path)
        if match is None:
            return problem(404, "00_404", "Not found")
        account = f"/{match[1]}/{match[2]}"
        if account not in self.webhooks:
            return problem(422, "30_112", "Entity was not found")
        store = self.webhooks[account]
        webhook_id, generate = match[3], match[4]
        writes = request.method != "GET"
        held = {roles.role_key(r) for r in key["roles"]}
        needed = roles.role_key(roles.WEBHOOKS_READ_WRITE if writes else roles.WEBHOOKS_READ)
        if needed not in held and roles.role_key(roles.WEBHOOKS_READ_WRITE) not in held:
            return problem(403, "00_403", "Forbidden")
        if webhook_id is None and request.method == "GET":
            page, size = int(request.url.params["pageNumber"]), int(request.url.params["pageSize"])
            items = list(store.values())
            pages = (len(items) + size - 1) // size
            return httpx.Response(
                200,
                json={
                    "itemsTotal": len(items),
                    "pagesTotal": pages,
                    "data": items[(page - 1) * size : page * size],
                },
            )
        if webhook_id is None and request.method == "POST":
            body = json.loads(request.content)
            new_id = f"S2-{self.next_id:012X}"
            self.next_id += 1
            store[new_id] = {"id": new_id, "username": "", "hasPassword": False, "hasError": False, **body}
            return httpx.Response(200, json=store[new_id])
        if webhook_id not in store:
            return problem(422, "30_112", "Entity was not found")
        if generate:
            self.next_key += 1
            hmac_key = f"{self.next_key:064X}"
            store[webhook_id]["hmacKeyCheckValue"] = check_value(hmac_key)
            return httpx.Response(200, json={"hmacKey": hmac_key})
        if request.method == "GET":
            return httpx.Response(200, json=store[webhook_id])
        if request.method == "PATCH":
            store[webhook_id].update(json.loads(request.content))
            return httpx.Response(200, json=store[webhook_id])
        if request.method == "DELETE":
            del store[webhook_id]
            return httpx.Response(204)
        return problem(404, "00_404", "Not found")


def problem(status: int, code: str, title: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "type": "https://docs.adyen.com/errors/x",
            "title": title,
            "status": status,
            "detail": title,
            "errorCode": code,
            "requestId": "KQZ5LXK2VMPRMC82",
            **extra,
        },
    )


async def _no_sleep(delay: float) -> None:
    return None


def once(response: httpx.Response) -> Callable[[httpx.Request], httpx.Response | None]:
    """An override answering ``response`` the first time only."""
    used = False

    def answer(request: httpx.Request) -> httpx.Response | None:
        nonlocal used
        if used:
            return None
        used = True
        return response

    return answer


def always(response: Callable[[], httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: response()


@pytest.fixture
def adyen() -> FakeAdyen:
    fake = FakeAdyen()
    fake.keys[TEST_KEY] = {"host": TEST_HOST, "roles": ALL_ROLES}
    fake.keys[LIVE_KEY] = {"host": LIVE_HOST, "roles": ALL_ROLES}
    fake.webhooks["/companies/AcmeCorp"] = {}
    fake.webhooks["/merchants/AcmeCorpECOM"] = {}
    return fake


def creds(key: str = TEST_KEY) -> Credentials:
    return Credentials({API_KEY_FIELD: key})


def desired(
    target: AdyenTarget = COMPANY,
    *,
    url: str = HOOK,
    codes: tuple[str, ...] = ("REFUND",),
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> AdyenDesired:
    return AdyenDesired(
        url=url,
        events=tuple(sorted(codes)),
        metadata=metadata or OWNER.metadata(),
        company_level=target.level == "companies",
        **extra,
    )


adyen_desired = desired


def foreign(adyen: FakeAdyen, account: str = "/companies/AcmeCorp", **fields: Any) -> str:
    webhook_id = f"S2-{adyen.next_id:012X}"
    adyen.next_id += 1
    adyen.webhooks[account][webhook_id] = {
        "id": webhook_id,
        "type": "standard",
        "url": HOOK,
        "active": True,
        "communicationFormat": "json",
        "description": "Webhook for AcmeCorp - 1673529603661",
        "hmacKeyCheckValue": "917A8C",
        **fields,
    }
    return webhook_id


# --- credentials -------------------------------------------------------------------------


def test_credentials_come_from_api_key_or_the_named_key(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    assert driver.credentials_from({"apiKey": TEST_KEY, "other": "x"}, None).values == {
        API_KEY_FIELD: TEST_KEY
    }
    assert driver.credentials_from({"adyen": TEST_KEY}, "adyen").values == {API_KEY_FIELD: TEST_KEY}
    stripped = driver.credentials_from({"apiKey": TEST_KEY + "\n"}, None)
    assert stripped.values[API_KEY_FIELD] == TEST_KEY
    assert stripped.stripped == ("apiKey",)
    with pytest.raises(CredentialsRejected) as missing:
        driver.credentials_from({"secretKey": TEST_KEY}, None)
    assert missing.value.reason == "CredentialsKeyMissing"
    assert "'apiKey'" in str(missing.value)
    with pytest.raises(CredentialsRejected) as broken:
        driver.credentials_from({"apiKey": TEST_KEY[:20] + "\r\nX-Evil: 1"}, None)
    assert broken.value.reason == "InvalidCredentials"
    assert TEST_KEY[:20] not in str(broken.value)
    assert "X-Evil" not in repr(driver.credentials_from({"apiKey": TEST_KEY}, None))


# --- verify ------------------------------------------------------------------------------


def test_verify_reads_me_on_the_mode_host_with_the_key_header(adyen: FakeAdyen) -> None:
    account = run(adyen.driver().verify(creds(), COMPANY))
    assert (account.id, account.mode) == ("AcmeCorp", Mode.TEST)
    (request,) = adyen.requests
    assert str(request.url) == f"https://{TEST_HOST}/v3/me"
    assert request.headers["X-API-Key"] == TEST_KEY
    live = AdyenTarget(mode=Mode.LIVE, level="merchants", account="AcmeCorpECOM")
    assert run(adyen.driver().verify(creds(LIVE_KEY), live)).mode is Mode.LIVE
    assert adyen.requests[-1].url.host == LIVE_HOST


@pytest.mark.parametrize(
    ("key", "target", "reason", "calls"),
    [
        (LIVE_KEY, COMPANY, "ModeMismatch", 2),  # the live host accepts it
        (TEST_KEY, AdyenTarget(mode=Mode.LIVE, level="companies", account="AcmeCorp"), "ModeMismatch", 2),
        ("AQEunknownunknownunknown", COMPANY, "InvalidCredentials", 2),  # neither host knows it
    ],
    ids=["live-key-on-test", "test-key-on-live", "invalid"],
)
def test_a_refused_key_is_told_apart_by_the_other_environment(
    adyen: FakeAdyen, key: str, target: AdyenTarget, reason: str, calls: int
) -> None:
    with pytest.raises(CredentialsRejected) as caught:
        run(adyen.driver().verify(creds(key), target))
    assert caught.value.reason == reason
    assert len(adyen.requests) == calls
    assert key not in str(caught.value)


def test_with_one_host_for_both_modes_a_refused_key_is_just_invalid(adyen: FakeAdyen) -> None:
    driver = adyen.driver(api_bases={Mode.TEST: REAL_API[Mode.TEST], Mode.LIVE: REAL_API[Mode.TEST]})
    with pytest.raises(CredentialsRejected) as caught:
        run(driver.verify(creds(LIVE_KEY), COMPANY))
    assert caught.value.reason == "InvalidCredentials"
    assert len(adyen.requests) == 1


def test_a_switched_off_credential_is_invalid(adyen: FakeAdyen) -> None:
    adyen.keys[TEST_KEY]["active"] = False
    with pytest.raises(CredentialsRejected, match="switched off") as caught:
        run(adyen.driver().verify(creds(), COMPANY))
    assert caught.value.reason == "InvalidCredentials"


def test_a_merchant_level_credential_cannot_serve_a_company_webhook(adyen: FakeAdyen) -> None:
    adyen.keys[TEST_KEY]["level"] = "merchants"
    with pytest.raises(CredentialsRejected) as caught:
        run(adyen.driver().verify(creds(), COMPANY))
    assert caught.value.reason == "AccountInaccessible"
    assert run(adyen.driver().verify(creds(), MERCHANT)).id == "AcmeCorpECOM"


def test_me_is_kept_per_key_until_it_expires_or_is_forgotten(adyen: FakeAdyen) -> None:
    now = [1000.0]
    driver = adyen.driver(clock=lambda: now[0], cache_ttl=600)

    async def scenario() -> None:
        await driver.verify(creds(), COMPANY)
        await driver.check_permissions(creds(), COMPANY, [])
        await driver.verify(creds(), COMPANY)
        assert len(adyen.calls("GET", "/me")) == 1
        await driver.verify(
            creds(LIVE_KEY), AdyenTarget(mode=Mode.LIVE, level="companies", account="AcmeCorp")
        )
        assert len(adyen.calls("GET", "/me")) == 2  # another key: its own entry
        assert driver.cached_entries() == 2
        driver.forget(creds(), COMPANY)
        await driver.verify(creds(), COMPANY)
        assert len(adyen.calls("GET", "/me")) == 3
        now[0] += 601
        await driver.verify(creds(), COMPANY)
        assert len(adyen.calls("GET", "/me")) == 4

    run(scenario())


# --- roles ------------------------------------------------------------------------------


def test_roles_are_compared_in_any_spelling() -> None:
    spellings = [
        "Management API—Webhooks read and write",
        "Management API - Webhooks read and write",
        "Management API — Webhooks read and write",
        "management api \u2013 webhooks READ AND WRITE",  # an en dash
        "management-api-webhooks-read-and-write",
        "management_api.webhooks_read_and_write",
    ]
    assert len({roles.role_key(s) for s in spellings}) == 1
    assert roles.role_key("Management API—Account read") == roles.role_key("Management API - Accounts read")
    assert roles.role_key("Management API - Accounts read and write") != roles.role_key(
        "Management API - Accounts read"
    )
    assert roles.grants("Management API - Webhooks read and write", "management-api-webhooks-read")
    assert not roles.grants("Management API - Webhooks read", "management-api-webhooks-read-and-write")
    assert not roles.grants("Management API - Stores read and write", "management-api-webhooks-read")


def test_required_roles_are_held_missing_or_unknown(adyen: FakeAdyen) -> None:
    adyen.keys[TEST_KEY]["roles"] = [
        "Management API - Webhooks read and write",
        "Management API — Payment methods read",
        "Management API - Payout Account Settings Read",
        "Some Role procon does not know",
    ]
    required = [
        "management-api-payment-methods-read",
        "Management API—Payout account settings read",
        "management-api-stores-read",
        "some-role-procon-does-not-know",  # held, so granted though procon does not know it
        "management-api-webhook-reed",  # a typo
    ]
    report = run(adyen.driver().check_permissions(creds(), COMPANY, required))
    assert report.missing == ("Management API - Stores read",)
    assert report.unknown == ("management-api-webhook-reed",)
    assert set(report.granted) == {
        "Management API - Webhooks read and write",
        "Management API - Payment methods read",
        "Management API - Payout Account Settings Read",
        "some-role-procon-does-not-know",
    }
    assert report.probes == 0


def test_procon_needs_webhooks_read_and_write_and_rechecks_until_it_is_granted(adyen: FakeAdyen) -> None:
    adyen.keys[TEST_KEY]["roles"] = ["Management API - Webhooks read"]
    driver = adyen.driver()

    async def scenario() -> None:
        await driver.verify(creds(), COMPANY)
        report = await driver.check_permissions(creds(), COMPANY, [])
        assert report.missing == (roles.WEBHOOKS_READ_WRITE,)
        adyen.keys[TEST_KEY]["roles"] = ["Management API - Webhooks read and write"]
        await driver.verify(creds(), COMPANY)  # not served from the cache: something was missing
        assert (await driver.check_permissions(creds(), COMPANY, [])).missing == ()

    run(scenario())
    assert len(adyen.calls("GET", "/me")) == 2


def test_a_key_refused_me_with_adyens_403_holds_no_management_role(adyen: FakeAdyen) -> None:
    adyen.override("GET", "/v3/me", always(lambda: problem(403, "00_403", "Forbidden")))
    driver = adyen.driver()
    run(driver.verify(creds(), COMPANY))
    report = run(driver.check_permissions(creds(), COMPANY, ["management-api-stores-read"]))
    assert set(report.missing) == {roles.WEBHOOKS_READ_WRITE, "Management API - Stores read"}


@pytest.mark.parametrize("status", [401, 403])
def test_a_proxys_refusal_page_is_not_adyens_verdict(adyen: FakeAdyen, status: int) -> None:
    page = httpx.Response(status, html="<html><body>Access denied by proxy</body></html>")
    adyen.override("GET", "/v3/me", always(lambda: page))
    with pytest.raises(MalformedResponse) as caught:
        run(adyen.driver().verify(creds(), COMPANY))
    assert not isinstance(caught.value, PermissionDenied | CredentialsRejected)
    assert "HTML page" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"roles": "all", "active": True},
        {"roles": [1], "active": True},
        {"roles": [], "active": "yes"},
        [],
    ],
    ids=["empty", "roles-not-a-list", "role-not-text", "active-not-bool", "list"],
)
def test_a_me_answer_without_roles_and_state_is_malformed(adyen: FakeAdyen, body: Any) -> None:
    adyen.override("GET", "/v3/me", always(lambda: httpx.Response(200, json=body)))
    with pytest.raises(MalformedResponse):
        run(adyen.driver().verify(creds(), COMPANY))


# --- listing -------------------------------------------------------------------------------


def test_every_page_is_listed_and_ownership_read_from_the_description(adyen: FakeAdyen) -> None:
    for _ in range(150):
        foreign(adyen, url="https://elsewhere.example.com/")
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    listed = run(driver.list_webhooks(creds(), COMPANY))
    assert len(listed) == 151
    lists = [r for r in adyen.requests if r.method == "GET" and r.url.path.endswith("/webhooks")]
    assert [(r.url.params["pageNumber"], r.url.params["pageSize"]) for r in lists] == [
        ("1", "100"),
        ("2", "100"),
    ]
    assert lists[0].url.path == "/v3/companies/AcmeCorp/webhooks"
    mine = [w for w in listed if w.metadata]
    assert [w.id for w in mine] == [created.id]
    assert mine[0].metadata == {**OWNER.metadata()}
    assert mine[0].status == "disabled"
    assert mine[0].status == "disabled"


def test_merchant_webhooks_are_listed_under_the_merchant(adyen: FakeAdyen) -> None:
    foreign(adyen, "/merchants/AcmeCorpECOM")
    assert len(run(adyen.driver().list_webhooks(creds(), MERCHANT))) == 1
    assert adyen.requests[-1].url.path == "/v3/merchants/AcmeCorpECOM/webhooks"


def test_an_account_name_cannot_walk_the_path(adyen: FakeAdyen) -> None:
    sneaky = AdyenTarget(mode=Mode.TEST, level="companies", account="../me")
    with pytest.raises(ProcessorError):
        run(adyen.driver().list_webhooks(creds(), sneaky))
    assert adyen.requests[-1].url.raw_path.startswith(b"/v3/companies/..%2Fme/webhooks")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, html="<html>maintenance</html>"),
        httpx.Response(200, content=b'{"itemsTotal": 1, "pagesTotal": 1, "data": [{"id": "S2-'),
        httpx.Response(200, content=b""),
        httpx.Response(200, json=[]),
        httpx.Response(200, json={}),
        httpx.Response(200, json={"itemsTotal": 1, "pagesTotal": 1}),
        httpx.Response(200, json={"itemsTotal": 1, "pagesTotal": "1", "data": []}),
        httpx.Response(200, json={"itemsTotal": 1, "pagesTotal": True, "data": []}),
        httpx.Response(200, json={"itemsTotal": 1, "pagesTotal": 1, "data": {"id": "S2-1"}}),
        httpx.Response(200, json={"pagesTotal": 1, "data": [{"url": HOOK}]}),
        httpx.Response(200, json={"pagesTotal": 1, "data": ["S2-1"]}),
        httpx.Response(
            200,
            json={
                "pagesTotal": 1,
                "data": [
                    {"id": "S2-1", "url": HOOK, "type": "t", "active": "yes", "communicationFormat": "x"}
                ],
            },
        ),
        httpx.Response(
            200,
            json={
                "pagesTotal": 1,
                "data": [
                    {
                        "id": "S2-1",
                        "url": HOOK,
                        "type": "standard",
                        "active": True,
                        "communicationFormat": "json",
                        "additionalSettings": {"includeEventCodes": "REFUND"},
                    }
                ],
            },
        ),
        httpx.Response(200, json={"pagesTotal": 1, "data": [{"id": "S2-1", "url": 7, "type": "standard"}]}),
    ],
    ids=[
        "html", "truncated", "empty", "list", "empty-object", "no-data", "pages-as-text", "pages-as-bool",
        "data-not-a-list", "item-without-id", "item-not-an-object", "active-as-text", "codes-not-a-list",
        "url-not-text",
    ],
)  # fmt: skip
def test_a_listing_that_is_not_one_is_a_malformed_response(adyen: FakeAdyen, answer: httpx.Response) -> None:
    adyen.override("GET", "/v3/companies/AcmeCorp/webhooks", always(lambda: answer))
    with pytest.raises(MalformedResponse):
        run(adyen.driver().list_webhooks(creds(), COMPANY))


def test_a_listing_that_never_ends_stops(adyen: FakeAdyen) -> None:
    counter = [0]

    def endless(request: httpx.Request) -> httpx.Response:
        counter[0] += 1
        item = {
            "id": f"S2-{counter[0]:012X}",
            "url": HOOK,
            "type": "standard",
            "active": True,
            "communicationFormat": "json",
        }
        return httpx.Response(200, json={"itemsTotal": 10**9, "pagesTotal": 10**7, "data": [item]})

    adyen.override("GET", "/v3/companies/AcmeCorp/webhooks", endless)
    with pytest.raises(MalformedResponse, match="did not end"):
        run(adyen.driver().list_webhooks(creds(), COMPANY))
    assert counter[0] == 100


def test_an_empty_account_may_omit_data(adyen: FakeAdyen) -> None:
    adyen.override(
        "GET",
        "/v3/companies/AcmeCorp/webhooks",
        always(lambda: httpx.Response(200, json={"itemsTotal": 0, "pagesTotal": 0})),
    )
    assert run(adyen.driver().list_webhooks(creds(), COMPANY)) == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_server_errors_and_rate_limits_are_retried_then_transient(adyen: FakeAdyen, status: int) -> None:
    adyen.override(
        "GET",
        "/v3/companies/AcmeCorp/webhooks",
        always(lambda: problem(status, "00_500", "too many requests")),
    )
    driver = adyen.driver(retries=2)
    with pytest.raises(TransientProcessorError) as caught:
        run(driver.list_webhooks(creds(), COMPANY))
    assert not isinstance(caught.value, MalformedResponse)
    assert len(adyen.calls("GET", "/webhooks")) == 3
    assert "KQZ5LXK2VMPRMC82" in str(caught.value)  # Adyen's request id, for support


def test_one_server_error_is_ridden_out(adyen: FakeAdyen) -> None:
    adyen.override("GET", "/v3/companies/AcmeCorp/webhooks", once(problem(500, "00_500", "Internal")))
    foreign(adyen)
    assert len(run(adyen.driver().list_webhooks(creds(), COMPANY))) == 1


def test_a_dropped_connection_on_a_read_is_retried(adyen: FakeAdyen) -> None:
    dropped = [True]

    def drop(request: httpx.Request) -> httpx.Response | None:
        if dropped[0]:
            dropped[0] = False
            raise httpx.ReadError("connection reset", request=request)
        return None

    adyen.override("GET", "/v3/companies/AcmeCorp/webhooks", drop)
    assert run(adyen.driver().list_webhooks(creds(), COMPANY)) == []


def test_a_403_for_a_key_known_to_hold_the_role_is_the_account_out_of_reach(adyen: FakeAdyen) -> None:
    """Adyen answers 403 for a missing role and for an account the credential cannot reach alike
    (docs/processors/adyen.md, "Errors"); once /me showed the role held, it is the account."""
    adyen.override(
        "GET", "/v3/companies/AcmeCorp/webhooks", always(lambda: problem(403, "00_403", "Forbidden"))
    )
    driver = adyen.driver()

    async def scenario() -> None:
        await driver.verify(creds(), COMPANY)
        with pytest.raises(CredentialsRejected) as caught:
            await driver.list_webhooks(creds(), COMPANY)
        assert caught.value.reason == "AccountInaccessible"
        assert "company account AcmeCorp" in str(caught.value)
        # Nothing known about the key (the cache was dropped): the role is named instead.
        with pytest.raises(PermissionDenied):
            await driver.list_webhooks(creds(), COMPANY)

    run(scenario())


def test_refusals_while_listing_say_what_is_missing(adyen: FakeAdyen) -> None:
    adyen.keys[TEST_KEY]["roles"] = ["Management API - Stores read"]
    with pytest.raises(PermissionDenied) as denied:
        run(adyen.driver().list_webhooks(creds(), COMPANY))
    assert denied.value.permission == roles.WEBHOOKS_READ
    assert "AcmeCorp" in str(denied.value)
    unknown = AdyenTarget(mode=Mode.TEST, level="companies", account="NotOurs")
    adyen.keys[TEST_KEY]["roles"] = ALL_ROLES
    with pytest.raises(CredentialsRejected) as inaccessible:
        run(adyen.driver().list_webhooks(creds(), unknown))
    assert inaccessible.value.reason == "AccountInaccessible"
    with pytest.raises(CredentialsRejected) as revoked:
        run(adyen.driver().list_webhooks(creds("AQEthiskeywasrevokedlongago"), COMPANY))
    assert revoked.value.reason == "InvalidCredentials"


# --- create, key, update, delete --------------------------------------------------------------


def test_a_webhook_is_created_inactive_with_the_marker_and_filters(adyen: FakeAdyen) -> None:
    target = COMPANY
    created = run(
        adyen.driver().create_inactive(
            creds(),
            target,
            adyen_desired(
                target,
                codes=("REFUND", "CAPTURE"),
                filter_type="includeAccounts",
                filter_accounts=("AcmeCorpECOM", "AcmeCorpPOS"),
            ),
        )
    )
    body = json.loads(adyen.requests[-1].content)
    assert body == {
        "url": HOOK,
        "type": "standard",
        "active": False,
        "communicationFormat": "json",
        "encryptionProtocol": "TLSv1.2",
        "description": "procon/unit/payments/adyen/uid-1",
        "additionalSettings": {"includeEventCodes": ["CAPTURE", "REFUND"]},
        "filterMerchantAccountType": "includeAccounts",
        "filterMerchantAccounts": ["AcmeCorpECOM", "AcmeCorpPOS"],
    }
    assert created.active is False
    assert created.check_value is None
    run(adyen.driver().create_inactive(creds(), MERCHANT, adyen_desired(MERCHANT)))
    assert "filterMerchantAccountType" not in json.loads(adyen.requests[-1].content)


def test_a_create_is_not_repeated_after_an_answer_that_may_hide_a_commit(adyen: FakeAdyen) -> None:
    adyen.override("POST", "/v3/companies/AcmeCorp/webhooks", once(problem(500, "00_500", "Internal")))
    with pytest.raises(TransientProcessorError):
        run(adyen.driver().create_inactive(creds(), COMPANY, adyen_desired()))
    assert len(adyen.calls("POST")) == 1

    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    adyen.overrides = [("POST", "/v3/companies/AcmeCorp/webhooks", lost)]
    with pytest.raises(TransientProcessorError):
        run(adyen.driver().create_inactive(creds(), COMPANY, adyen_desired()))
    assert len(adyen.calls("POST")) == 2


def test_a_create_refused_before_anything_happened_is_retried(adyen: FakeAdyen) -> None:
    adyen.override("POST", "/v3/companies/AcmeCorp/webhooks", once(problem(429, "00_429", "Too many")))

    def unreachable_once(request: httpx.Request) -> httpx.Response | None:
        if len(adyen.calls("POST")) == 2:
            raise httpx.ConnectError("refused", request=request)
        return None

    adyen.override("POST", "/v3/companies/AcmeCorp/webhooks", unreachable_once)
    created = run(adyen.driver().create_inactive(creds(), COMPANY, adyen_desired()))
    assert len(adyen.calls("POST")) == 3
    assert len(adyen.webhooks["/companies/AcmeCorp"]) == 1
    assert created.id in adyen.webhooks["/companies/AcmeCorp"]


def test_a_create_answered_without_an_id_is_malformed(adyen: FakeAdyen) -> None:
    adyen.override(
        "POST", "/v3/companies/AcmeCorp/webhooks", always(lambda: httpx.Response(200, json={"url": HOOK}))
    )
    with pytest.raises(MalformedResponse, match="without its id"):
        run(adyen.driver().create_inactive(creds(), COMPANY, adyen_desired()))


def test_a_rejected_create_names_the_fields_never_their_values(adyen: FakeAdyen) -> None:
    invalid = [
        {"InvalidField": {"name": "url", "value": TEST_KEY, "message": f"bad {TEST_KEY}"}},
        {"name": TEST_KEY},
    ]
    adyen.override(
        "POST",
        "/v3/companies/AcmeCorp/webhooks",
        always(lambda: problem(422, "31_004", "Invalid", invalidFields=invalid)),
    )
    with pytest.raises(RequestRejected) as caught:
        run(adyen.driver().create_inactive(creds(), COMPANY, adyen_desired()))
    message = str(caught.value)
    assert "31_004" in message
    assert "url" in message
    assert TEST_KEY not in message
    assert "AQE" not in message


def test_a_generated_key_comes_with_its_check_value(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    signing = run(driver.generate_key(creds(), COMPANY, created.id))
    assert re.fullmatch(r"[0-9A-F]{64}", signing.key)
    assert signing.webhook.check_value == check_value(signing.key)
    assert signing.key not in repr(signing)
    assert adyen.calls()[-2:] == [
        f"POST /v3/companies/AcmeCorp/webhooks/{created.id}/generateHmac",
        f"GET /v3/companies/AcmeCorp/webhooks/{created.id}",
    ]


def test_generating_a_key_is_retried_after_a_server_error(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    adyen.override(
        "POST", r"/v3/companies/AcmeCorp/webhooks/[^/]+/generateHmac", once(problem(500, "00_500", "x"))
    )
    signing = run(driver.generate_key(creds(), COMPANY, created.id))
    assert signing.webhook.check_value == check_value(signing.key)  # the key answered last is the webhook's


@pytest.mark.parametrize(
    "answer",
    [
        {"hmacKey": ""},
        {"hmacKey": "not hex at all, just words in a key"},
        {"hmacKey": 7},
        {"key": "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"},
        {"hmacKey": "ABC"},
    ],
    ids=["empty", "not-hex", "number", "other-field", "odd-length"],
)
def test_a_key_answer_that_is_not_a_hex_key_is_malformed(adyen: FakeAdyen, answer: dict[str, Any]) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    adyen.override(
        "POST",
        r"/v3/companies/AcmeCorp/webhooks/[^/]+/generateHmac",
        always(lambda: httpx.Response(200, json=answer)),
    )
    with pytest.raises(MalformedResponse) as caught:
        run(driver.generate_key(creds(), COMPANY, created.id))
    assert "not hex at all" not in str(caught.value)


def test_a_key_without_a_check_value_afterwards_is_malformed(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    adyen.override(
        "POST",
        r"/v3/companies/AcmeCorp/webhooks/[^/]+/generateHmac",
        always(lambda: httpx.Response(200, json={"hmacKey": key})),
    )
    with pytest.raises(MalformedResponse, match="hmacKeyCheckValue") as caught:
        run(driver.generate_key(creds(), COMPANY, created.id))
    assert key not in str(caught.value)


def test_an_answer_about_another_webhook_is_malformed(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    other = foreign(adyen)
    adyen.override(
        "PATCH",
        r"/v3/companies/AcmeCorp/webhooks/[^/]+",
        always(lambda: httpx.Response(200, json=adyen.webhooks["/companies/AcmeCorp"][other])),
    )
    with pytest.raises(MalformedResponse, match="another webhook"):
        run(driver.patch(creds(), COMPANY, created.id, {"active": True}))


@pytest.mark.parametrize(
    "answer",
    [problem(422, "30_112", "Entity was not found"), problem(404, "00_404", "Not found")],
    ids=["422-30_112", "404"],
)
def test_a_webhook_that_is_gone_is_not_found_for_every_operation(
    adyen: FakeAdyen, answer: httpx.Response
) -> None:
    adyen.override("GET", r"/v3/companies/AcmeCorp/webhooks/S2-.*", always(lambda: answer))
    adyen.override("PATCH", r"/v3/companies/AcmeCorp/webhooks/S2-.*", always(lambda: answer))
    adyen.override("DELETE", r"/v3/companies/AcmeCorp/webhooks/S2-.*", always(lambda: answer))
    adyen.override("POST", r"/v3/companies/AcmeCorp/webhooks/S2-.*/generateHmac", always(lambda: answer))
    driver = adyen.driver()
    for call in (
        driver.get(creds(), COMPANY, "S2-000000000000"),
        driver.patch(creds(), COMPANY, "S2-000000000000", {"active": True}),
        driver.delete_webhook(creds(), COMPANY, "S2-000000000000"),
        driver.generate_key(creds(), COMPANY, "S2-000000000000"),
    ):
        with pytest.raises(NotFound):
            run(call)


def test_a_plain_validation_422_is_not_taken_for_gone(adyen: FakeAdyen) -> None:
    adyen.override(
        "PATCH",
        r"/v3/companies/AcmeCorp/webhooks/S2-.*",
        always(lambda: problem(422, "14_030", "Invalid url")),
    )
    with pytest.raises(RequestRejected):
        run(adyen.driver().patch(creds(), COMPANY, "S2-000000000000", {"url": "https://x"}))


def test_a_proxys_404_page_on_delete_is_not_gone(adyen: FakeAdyen) -> None:
    adyen.override(
        "DELETE", r"/v3/companies/AcmeCorp/webhooks/S2-.*", always(lambda: httpx.Response(404, text="no"))
    )
    with pytest.raises(MalformedResponse):
        run(adyen.driver().delete_webhook(creds(), COMPANY, "S2-000000000000"))


def test_writes_refused_name_webhooks_read_and_write(adyen: FakeAdyen) -> None:
    adyen.keys[TEST_KEY]["roles"] = ["Management API - Webhooks read"]
    webhook_id = foreign(adyen)
    with pytest.raises(PermissionDenied) as denied:
        run(adyen.driver().delete_webhook(creds(), COMPANY, webhook_id))
    assert denied.value.permission == roles.WEBHOOKS_READ_WRITE


def test_create_webhook_leaves_it_off_with_its_key_until_compare_switches_it_on(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_webhook(creds(), COMPANY, desired(), idempotency_key="unused"))
    webhook_id = created.webhook.id
    assert [c.split(" ")[0] + " " + c.rsplit("/", 1)[-1] for c in adyen.calls()] == [
        "POST webhooks",
        "POST generateHmac",
        f"GET {webhook_id}",
    ]
    assert "Idempotency-Key" not in adyen.requests[0].headers
    assert created.webhook.status == "disabled"
    assert adyen.webhooks["/companies/AcmeCorp"][webhook_id]["active"] is False
    assert created.signing_secret not in repr(created)
    check = check_value(created.signing_secret)
    # What the reconciler does once the key is published: whatever compare still asks for.
    finish = driver.compare(created.webhook, desired()).changes
    assert isinstance(finish, AdyenChanges)
    assert finish.describe() == ["key check value", "enabled"]
    done = run(driver.update_webhook(creds(), COMPANY, webhook_id, finish))
    assert json.loads(adyen.requests[-1].content) == {
        "description": f"procon/unit/payments/adyen/uid-1#{check}#{events_digest(desired().events)}",
        "active": True,
    }
    assert done.status == "enabled"
    assert done.metadata == OWNER.metadata()
    assert driver.compare(done, desired()) == Comparison()


def test_update_webhook_patches_what_compare_found(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    changes = AdyenChanges(
        fields={"additionalSettings": {"includeEventCodes": ["CAPTURE"]}}, changed=("events",)
    )
    updated = run(driver.update_webhook(creds(), COMPANY, created.id, changes))
    assert json.loads(adyen.requests[-1].content) == {
        "additionalSettings": {"includeEventCodes": ["CAPTURE"]}
    }
    assert updated.events == ("CAPTURE",)
    assert run(driver.update_webhook(creds(), COMPANY, created.id, AdyenChanges())).id == created.id
    assert adyen.requests[-1].method == "GET"
    with pytest.raises(ValueError, match="generates"):
        run(driver.update_webhook(creds(), COMPANY, created.id, WebhookChanges(signing_secret="x" * 32)))


def test_metrics_count_routes_without_accounts_or_ids(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    created = run(driver.create_inactive(creds(), COMPANY, adyen_desired()))
    run(driver.generate_key(creds(), COMPANY, created.id))
    labels = {
        sample.labels["operation"]
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("processor") == "adyen"
    }
    assert "POST /companies/{account}/webhooks/{id}/generateHmac" in labels
    assert not any("AcmeCorp" in label or created.id in label for label in labels)


# --- events ----------------------------------------------------------------------------------


def test_events_are_adyen_event_codes(adyen: FakeAdyen) -> None:
    driver = adyen.driver()
    assert run(driver.resolve_events(creds(), COMPANY, ["REFUND", "AUTHORISATION", "REFUND"])) == (
        "AUTHORISATION",
        "REFUND",
    )
    for bad in (["*"], ["payment_intent.succeeded"], ["refund"]):
        with pytest.raises(RequestRejected, match="not Adyen event codes"):
            run(driver.resolve_events(creds(), COMPANY, bad))
    assert adyen.requests == []


# --- the webhook, compared ---------------------------------------------------------------------


def owned(**fields: Any) -> dict[str, Any]:
    return {
        "id": "S2-4A3B33202A46",
        "type": "standard",
        "url": HOOK,
        "active": True,
        "communicationFormat": "json",
        "encryptionProtocol": "TLSv1.2",
        "description": marker(OWNER.metadata()) + "#917A8C",
        "additionalSettings": {
            "includeEventCodes": ["AUTHORISATION", "REFUND"],
            "excludeEventCodes": ["DONATION"],
            "properties": {"includeCaptureDelayHours": False},
        },
        "filterMerchantAccountType": "allAccounts",
        "hmacKeyCheckValue": "917A8C",
        **fields,
    }


def test_a_webhook_as_wanted_needs_nothing_even_with_defaults_listed_beside_its_codes() -> None:
    assert compare(parse_webhook(owned()), adyen_desired()) == Comparison()
    assert compare(parse_webhook(owned(filterMerchantAccountType=None)), adyen_desired()) == Comparison()


@pytest.mark.parametrize(
    ("fields", "patch", "changed"),
    [
        ({"active": False}, {"active": True}, "enabled"),
        ({"communicationFormat": "soap"}, {"communicationFormat": "json"}, "communication format"),
        ({"encryptionProtocol": "HTTP"}, {"encryptionProtocol": "TLSv1.2"}, "encryption protocol"),
        (
            {"encryptionProtocol": None, "sslVersion": "HTTP"},
            {"encryptionProtocol": "TLSv1.2"},
            "encryption protocol",
        ),
        (
            {"acceptsSelfSignedCertificate": True},
            {"acceptsSelfSignedCertificate": False},
            "certificate checks",
        ),
        (
            {"additionalSettings": {"includeEventCodes": ["AUTHORISATION"]}},
            {"additionalSettings": {"includeEventCodes": ["REFUND"]}},
            "events",
        ),
        (
            {"additionalSettings": {"includeEventCodes": ["REFUND"], "excludeEventCodes": ["REFUND"]}},
            {"additionalSettings": {"includeEventCodes": ["REFUND"]}},
            "events",
        ),
        (
            {"filterMerchantAccountType": "includeAccounts", "filterMerchantAccounts": ["Other"]},
            {"filterMerchantAccountType": "allAccounts", "filterMerchantAccounts": []},
            "merchant account filter",
        ),
    ],
    ids=[
        "deactivated", "format", "no-tls", "no-tls-v1-name", "self-signed", "code-dropped",
        "code-excluded", "filter",
    ],
)  # fmt: skip
def test_drift_is_patched_field_by_field(fields: dict[str, Any], patch: dict[str, Any], changed: str) -> None:
    comparison = compare(parse_webhook(owned(**fields)), adyen_desired())
    assert comparison.recreate_because is None
    assert isinstance(comparison.changes, AdyenChanges)
    assert comparison.changes.fields == patch
    assert comparison.changes.describe() == [changed]


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"type": "report-notification"}, "its type changed (report-notification to standard)"),
        ({"url": "https://attacker.example.com/"}, "its URL changed"),
        ({"hmacKeyCheckValue": "0A0A0A"}, "its HMAC key was changed outside procon"),
        ({"hmacKeyCheckValue": None}, "it has no HMAC key"),
    ],
    ids=["type", "url", "key-regenerated", "key-gone"],
)
def test_what_cannot_change_in_place_means_a_new_webhook(fields: dict[str, Any], why: str) -> None:
    assert compare(parse_webhook(owned(**fields)), adyen_desired()) == Comparison(recreate_because=why)


def test_a_published_key_whose_check_is_not_recorded_yet_is_recorded() -> None:
    comparison = compare(parse_webhook(owned(description=marker(OWNER.metadata()))), adyen_desired())
    assert isinstance(comparison.changes, AdyenChanges)
    asked = events_digest(adyen_desired().events)
    assert comparison.changes.fields == {"description": marker(OWNER.metadata()) + "#917A8C#" + asked}


def test_a_new_cluster_identity_rewrites_the_marker_and_keeps_the_record() -> None:
    moved = {**OWNER.metadata(), CLUSTER: "renamed"}
    comparison = compare(parse_webhook(owned()), desired(metadata=moved))
    assert isinstance(comparison.changes, AdyenChanges)
    asked = events_digest(adyen_desired().events)
    assert comparison.changes.fields == {"description": marker(moved) + "#917A8C#" + asked}
    assert comparison.changes.describe() == ["ownership marker"]


def test_merchant_webhooks_have_no_filter_to_compare() -> None:
    merchant = owned(filterMerchantAccountType="includeAccounts", filterMerchantAccounts=["X"])
    assert compare(parse_webhook(merchant), adyen_desired(MERCHANT)) == Comparison()


def test_the_marker_round_trips_and_nothing_else_reads_as_owned() -> None:
    tag = OWNER.metadata()
    assert owner_of(marker(tag)) == tag
    for description in (
        "",
        None,
        "Webhook for AcmeCorp - 1673529603661",
        "procon/unit/payments/adyen",
        "procon/unit/payments/adyen/uid-1/extra",
        "procon//payments/adyen/uid-1",
        "xprocon/unit/payments/adyen/uid-1",
    ):
        assert owner_of(description) == {}, description
    assert owner_of(marker(tag))[MANAGED_BY] == "procon.dev"
    assert {k: owner_of(marker(tag))[k] for k in (CLUSTER, NAMESPACE, NAME, UID)} == {
        CLUSTER: "unit",
        NAMESPACE: "payments",
        NAME: "adyen",
        UID: "uid-1",
    }


def test_the_create_body_for_all_accounts_sends_an_empty_filter() -> None:
    body = create_body(adyen_desired())
    assert body["filterMerchantAccountType"] == "allAccounts"
    assert body["filterMerchantAccounts"] == []


# --- spec, settings, key shapes ---------------------------------------------------------------


def test_the_spec_block_reads_camel_case_and_says_its_level() -> None:
    company = AdyenOptions.model_validate(
        {
            "companyAccount": "AcmeCorp",
            "filterMerchantAccountType": "excludeAccounts",
            "filterMerchantAccounts": ["X"],
        }
    )
    assert (company.level, company.account, company.webhook_type.value) == (
        "companies",
        "AcmeCorp",
        "standard",
    )
    merchant = AdyenOptions.model_validate(
        {"merchantAccount": "AcmeCorpECOM", "webhookType": "report-notification"}
    )
    assert (merchant.level, merchant.account, merchant.webhook_type.value) == (
        "merchants",
        "AcmeCorpECOM",
        "report-notification",
    )
    schema = AdyenOptions.model_json_schema(by_alias=True)
    assert {"companyAccount", "merchantAccount", "filterMerchantAccounts", "webhookType"} <= set(
        schema["properties"]
    )
    assert len(schema["x-kubernetes-validations"]) == 4


def test_settings_default_to_adyens_hosts_and_take_overrides() -> None:
    assert settings.api_bases({}) == REAL_API
    moved = settings.api_bases({"PROCON_ADYEN_TEST_API_BASE": "http://127.0.0.1:9/v3/"})
    assert moved[Mode.TEST] == "http://127.0.0.1:9/v3"
    assert moved[Mode.LIVE] == REAL_API[Mode.LIVE]
    with pytest.raises(SettingsError, match="PROCON_ADYEN_LIVE_API_BASE"):
        settings.api_bases({"PROCON_ADYEN_LIVE_API_BASE": "ftp://x"})
    assert settings.describe({}) == "Management API of Adyen"
    assert "test http://127.0.0.1:9/v3" in settings.describe(
        {"PROCON_ADYEN_TEST_API_BASE": "http://127.0.0.1:9/v3"}
    )


@pytest.mark.parametrize(
    "text",
    [
        f"key {TEST_KEY} was refused",
        f"key '{LIVE_KEY}'",
        "X-API-Key: AQE" + "yhmfxK4PJahZCw0m/n3Q5qf3VaY9UCJ1+XWZe9W27jmlZiv4PD4jhfNMofnLr2K5i8==",
        "hmac 7052E6804F0AF40DCC390464C817F4F963516FA42AC8816D518DC5D39F41E902 set",
    ],
    ids=["test-key", "live-key-quoted", "key-without-tail", "hmac-key"],
)
def test_key_shapes_are_masked(text: str) -> None:
    masked = text
    for pattern in adyen_redaction.PATTERNS:
        masked = pattern.sub("[REDACTED]", masked)
    assert "[REDACTED]" in masked
    assert not re.search(r"AQE|[0-9A-F]{20}", masked), masked
    assert not re.search(r"[{}\[\]<>^;:]{2}", masked.replace("[REDACTED]", "")), masked


def test_procon_redaction_masks_adyen_keys_through_the_registry() -> None:
    hmac_key = "7052E6804F0AF40DCC390464C817F4F963516FA42AC8816D518DC5D39F41E902"
    text = procon_redaction.redact(f"X-API-Key: {TEST_KEY} and hmacKey {hmac_key}")
    assert TEST_KEY[:12] not in text
    assert hmac_key[:12] not in text
    assert text.count(procon_redaction.REDACTED) == 2


def test_words_and_lower_case_digests_are_not_keys() -> None:
    text = (
        "AQEA is a word; sha256 " + "ab" * 32 + " and a 65-digit run " + "A" * 65
        + " and S2-4A3B33202A46 and check value 917A8C"
    )  # fmt: skip
    for pattern in adyen_redaction.PATTERNS:
        assert pattern.search(text) is None, pattern


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (lambda: httpx.Response(429, headers={"Retry-After": "5"}, json={"errorCode": "00_429"}), 5.0),
        (lambda: problem(500, "00_500", "Too many requests"), None),
    ],
)
def test_a_rate_limit_is_surfaced_and_pauses_the_account(
    adyen: FakeAdyen, answer: Callable[[], httpx.Response], retry_after: float | None
) -> None:
    """A 429, or Adyen's 500 saying "too many requests": the account pauses, for Retry-After if given."""
    clock = [100.0]
    admission = CallAdmission(4, clock=lambda: clock[0])
    bucket = admission.bucket("account", "adyen", RateLimit(per_second=5.0, burst=5))
    adyen.override("GET", "/v3/companies/AcmeCorp/webhooks", always(answer))

    async def listing() -> None:
        with calls.scope(admission, bucket):
            await adyen.driver(retries=0).list_webhooks(creds(), COMPANY)

    with pytest.raises(RateLimited) as refused:
        run(listing())
    assert refused.value.retry_after == retry_after
    assert bucket.paused_until == 100.0 + (retry_after or 1.0)


def test_an_internal_error_is_not_a_rate_limit(adyen: FakeAdyen) -> None:
    adyen.override(
        "GET", "/v3/companies/AcmeCorp/webhooks", always(lambda: problem(500, "00_500", "Internal"))
    )
    with pytest.raises(TransientProcessorError) as refused:
        run(adyen.driver(retries=0).list_webhooks(creds(), COMPANY))
    assert not isinstance(refused.value, RateLimited)

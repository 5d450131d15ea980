"""The Adyen emulator's pure rules: role names, signatures, check values, pages, hosts, fixtures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from procon.emulators.adyen import errors, roles, webhooks
from procon.emulators.adyen.app import host_environment, path_environment
from procon.emulators.adyen.errors import AdyenError
from procon.emulators.adyen.fixture import FixtureError, load_fixture, parse_settings
from procon.emulators.adyen.notifications import signature, signing_string
from procon.emulators.adyen.state import (
    AccountRef,
    AdyenSettings,
    Environment,
    HostEnvironment,
    Level,
    Webhook,
    check_value,
    new_hmac_key,
    new_webhook_id,
)

# docs/processors/adyen.md, "Role names and their spellings"
SAME_ROLE = [
    ("Management API\u2014Webhooks read and write", "Management API - Webhooks read and write"),
    ("Management API \u2014 Payment methods read", "Management API - Payment methods read"),
    ("Management API \u2013 Webhooks read", "management api - webhooks read"),
    ("Management API - Payout Account Settings Read", "Management API—Payout account settings read"),
    ("Management API\u2014Account read", "Management API - Accounts read"),
    ("  Management   API -  Webhooks read ", "Management API - Webhooks read"),
]


@pytest.mark.parametrize(("one", "other"), SAME_ROLE)
def test_spellings_of_one_role_normalise_alike(one: str, other: str) -> None:
    assert roles.normalise(one) == roles.normalise(other)


def test_read_and_write_satisfies_read_but_read_not_write() -> None:
    assert roles.holds_any([roles.WEBHOOKS_READ_WRITE], roles.WEBHOOK_READERS)
    assert roles.holds_any([roles.WEBHOOKS_READ], roles.WEBHOOK_READERS)
    assert not roles.holds_any([roles.WEBHOOKS_READ], roles.WEBHOOK_WRITERS)
    assert not roles.holds_any(["Checkout webservice role"], roles.WEBHOOK_READERS)
    assert roles.holds_any(["Management API\u2014Account read"], roles.ACCOUNT_READERS)


def test_only_management_api_roles_open_me() -> None:
    assert roles.has_management_role(["Merchant PAL Webservice role", "Management API - Stores read"])
    assert not roles.has_management_role(["Merchant PAL Webservice role", "Checkout webservice role"])
    assert not roles.has_management_role([])


# docs/processors/adyen.md, "Verifying a notification's signature": the Python library's vectors
VECTORS = [
    (
        "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
        {
            "pspReference": "7914073381342284",
            "merchantAccountCode": "TestMerchant",
            "merchantReference": "TestPayment-1407325143704",
            "amount": {"value": 1130, "currency": "EUR"},
            "eventCode": "AUTHORISATION",
            "success": "true",
        },
        "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true",
        "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=",
    ),
    (
        "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174",
        {
            "pspReference": "M8NB66SBZSGLNK82",
            "originalReference": "",
            "merchantAccountCode": "AntoniStroinski",
            "merchantReference": ":slashes are fun",
            "amount": {"value": 1000, "currency": "EUR"},
            "eventCode": "AUTHORISATION",
            "success": "true",
        },
        "M8NB66SBZSGLNK82::AntoniStroinski::slashes are fun:1000:EUR:AUTHORISATION:true",
        "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA=",
    ),
]


@pytest.mark.parametrize(("key", "item", "signed", "expected"), VECTORS)
def test_notifications_are_signed_as_adyen_signs_them(
    key: str, item: dict[str, Any], signed: str, expected: str
) -> None:
    assert signing_string(item) == signed
    assert signature(item, key) == expected


def test_check_values_are_six_hex_digits_and_follow_the_key() -> None:
    key = new_hmac_key()
    assert len(key) == 64
    assert key == key.upper()
    assert int(key, 16) >= 0
    assert len(check_value(key)) == 6
    assert check_value(key) == check_value(key.lower())  # derived from the bytes, not the text
    assert check_value(key) != check_value(new_hmac_key())
    assert check_value(VECTORS[0][0]) == "1F1D54"  # pinned: a change would make every stored value stale


def test_webhook_ids_have_adyens_shape() -> None:
    assert all(re.match(r"^S2-[0-9A-F]{12}$", new_webhook_id()) for _ in range(50))


@pytest.mark.parametrize(
    ("total", "number", "size", "shown", "pages", "next_", "prev"),
    [
        (0, 1, 10, 0, 0, False, False),
        (10, 1, 10, 10, 1, False, False),
        (11, 1, 10, 10, 2, True, False),
        (11, 2, 10, 1, 2, False, True),
        (11, 3, 10, 0, 2, False, True),
        (55, 1, 100, 55, 1, False, False),
    ],
)
def test_page_boundaries(
    total: int, number: int, size: int, shown: int, pages: int, next_: bool, prev: bool
) -> None:
    items = [{"id": str(n)} for n in range(total)]
    page = webhooks.page(items, number, size, "http://x/v3/merchants/M/webhooks", "M")
    assert (len(page["data"]), page["pagesTotal"], page["itemsTotal"]) == (shown, pages, total)
    assert ("next" in page["_links"], "prev" in page["_links"]) == (next_, prev)


@pytest.mark.parametrize(
    ("host", "default", "expected"),
    [
        ("management-test.adyen.com", HostEnvironment.ANY, Environment.TEST),
        ("management-live.adyen.com:443", HostEnvironment.ANY, Environment.LIVE),
        ("Management-Live.adyen.test:8080", HostEnvironment.TEST, Environment.LIVE),
        ("127.0.0.1:8080", HostEnvironment.ANY, None),
        ("[::1]:8080", HostEnvironment.ANY, None),
        ("localhost", HostEnvironment.LIVE, Environment.LIVE),
        ("checkout-test.adyen.com", HostEnvironment.ANY, None),
    ],
)
def test_hosts_name_their_environment(
    host: str, default: HostEnvironment, expected: Environment | None
) -> None:
    assert host_environment(host, default) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/live/v3/me", Environment.LIVE),
        ("/test/v3/me", Environment.TEST),
        ("/v3/me", None),
        ("/lively", None),
    ],
)
def test_a_path_prefix_names_its_environment(path: str, expected: Environment | None) -> None:
    assert path_environment(path) is expected


def context(level: Level = Level.MERCHANT, environment: Environment = Environment.TEST) -> webhooks.Context:
    return webhooks.Context(
        level=level,
        environment=environment,
        account="ProconDemoECOM" if level is Level.MERCHANT else "ProconDemoCompany",
        company_merchants=frozenset({"ProconDemoECOM", "ProconDemoPOS"}),
        settings=AdyenSettings(),
    )


def test_merchant_webhooks_ignore_company_filters_and_get_defaults() -> None:
    body = {
        "url": "https://hooks.example.com/adyen",
        "active": True,
        "communicationFormat": "json",
        "type": "standard",
        "filterMerchantAccountType": "includeAccounts",
        "password": "secret",
    }
    parsed = webhooks.parse(body, context(), creating=True)
    config = webhooks.new_config(parsed, context(), now=1673529603.661)
    assert "filterMerchantAccountType" not in config
    assert config["description"] == "Webhook for ProconDemoECOM - 1673529603661"
    assert "password" not in config
    assert parsed.password == "secret"
    assert (config["encryptionProtocol"], config["networkType"], config["username"]) == (
        "TLSv1.2",
        "public",
        "",
    )


def test_an_update_never_changes_the_type_and_validates_what_it_sends() -> None:
    webhook = Webhook(
        id="S2-0123456789AB",
        where=AccountRef(Environment.TEST, Level.MERCHANT, "ProconDemoECOM"),
        config={"type": "standard", "url": "https://a.example.com", "active": False},
        sequence=1,
    )
    webhooks.apply_update(
        webhook, webhooks.parse({"type": "report-notification", "active": True}, context(), creating=False)
    )
    assert (webhook.config["type"], webhook.config["active"]) == ("standard", True)
    with pytest.raises(AdyenError) as refused:
        webhooks.parse({"encryptionProtocol": "HTTP"}, context(environment=Environment.LIVE), creating=False)
    assert refused.value.error_code == errors.VALIDATION
    assert [f.name for f in refused.value.invalid_fields] == ["encryptionProtocol"]


def test_company_webhooks_cover_the_merchants_their_filter_names() -> None:
    def covered(kind: str, named: list[str]) -> list[str]:
        webhook = Webhook(
            id="S2-0123456789AB",
            where=AccountRef(Environment.TEST, Level.COMPANY, "C"),
            config={"filterMerchantAccountType": kind, "filterMerchantAccounts": named},
            sequence=1,
        )
        return webhooks.covered_merchants(webhook, ("A", "B", "C"))

    assert covered("allAccounts", []) == ["A", "B", "C"]
    assert covered("includeAccounts", ["B"]) == ["B"]
    assert covered("excludeAccounts", ["B"]) == ["A", "C"]


def test_error_bodies_have_the_five_required_fields() -> None:
    for error in (
        errors.unauthorized(),
        errors.forbidden(),
        errors.entity_not_found(),
        errors.server_error(),
    ):
        body = error.body("KQZ5LXK2VMPRMC82")
        assert {"type", "title", "status", "detail", "errorCode", "requestId"} <= set(body)
    assert (errors.entity_not_found().status, errors.entity_not_found().error_code) == (422, "30_112")
    assert len(errors.new_request_id()) == 16


GOOD = {
    "companies": [{"id": "Acme", "merchants": ["AcmeECOM"]}],
    "credentials": [{"username": "ws@Company.Acme", "api_key": "AQEsecretkeyvalue123", "company": "Acme"}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"companies": []}, "companies"),
        (
            {"credentials": [{"username": "ws@Company.Acme", "api_key": "short", "company": "Acme"}]},
            "api_key",
        ),
        (
            {"credentials": [{"username": "ws@Company.Acme", "api_key": "AQEsecretkeyvalue123"}]},
            "exactly one",
        ),
        (
            {
                "credentials": [
                    {"username": "ws@Company.Acme", "api_key": "AQEsecretkeyvalue123", "merchant": "X1x"}
                ]
            },
            r"credentials\[0\]\.merchant",
        ),
        (
            {
                "credentials": [
                    {"username": "ws@Company.Acme", "api_key": "AQEsecretkeyvalue123", "company": "Acme"},
                    {"username": "ws_2@Company.Acme", "api_key": "AQEsecretkeyvalue123", "company": "Acme"},
                ]
            },
            "declared twice",
        ),
        (
            {"companies": [{"id": "Acme", "merchants": ["M1x"]}, {"id": "Beta", "merchants": ["M1x"]}]},
            "already belongs",
        ),
        ({"settings": {"unreachable_account_status": 404}}, "unreachable_account_status"),
        ({"settings": {"patch_type": "clamp"}}, "patch_type"),
        ({"nonsense": 1}, "unknown fields"),
    ],
)
def test_fixture_mistakes_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(FixtureError, match=message) as raised:
        load_fixture({**GOOD, **change})
    assert "AQEsecretkeyvalue123" not in str(raised.value)


def test_settings_merge_over_their_base() -> None:
    settings = parse_settings({"webhook_limit": 5}, parse_settings({"page_size_over_max": "clamp"}))
    assert (settings.webhook_limit, settings.page_size_over_max.value) == (5, "clamp")
    assert parse_settings(None) == AdyenSettings()

"""Adyen's webhook module: the ownership marker in the description, a spec to a target and a desired
webhook, Adyen's answers parsed field by field, and an observed webhook compared with the desired one.
Pure, so every field is pinned here, matches as well as mismatches."""

from __future__ import annotations

from typing import Any

import pytest

from procon.api.v1alpha1 import Mode, ProcessorConnectionSpec
from procon.processors.adyen import webhook
from procon.processors.adyen.webhook import AdyenChanges, AdyenDesired, AdyenTarget, AdyenWebhook
from procon.processors.base import (
    Comparison,
    DesiredWebhook,
    MalformedResponse,
    ObservedWebhook,
    WebhookChanges,
)
from procon.reconcile.ownership import Owner

OWNER = Owner(cluster="c-1", namespace="shop", name="adyen", uid="uid-1")
TAG = OWNER.metadata()
MARKER = "procon/c-1/shop/adyen/uid-1"
# What a written marker records of the codes wanted() asks for.
ASKED = webhook.events_digest(("AUTHORISATION",))
URL = "https://hooks.example.com/adyen"


def spec(adyen: dict[str, Any] | None, *, mode: str = "test") -> Any:
    body: dict[str, Any] = {
        "processor": "adyen",
        "mode": mode,
        "credentialsSecretRef": {"name": "key"},
        "webhook": {"url": URL, "events": ["AUTHORISATION"], "signingSecretRef": {"name": "h"}},
    }
    if adyen is not None:
        body["adyen"] = adyen
    return ProcessorConnectionSpec.model_validate(body)


def observed(**overrides: Any) -> AdyenWebhook:
    fields: dict[str, Any] = {
        "id": "WBHK1",
        "url": URL,
        "events": ("AUTHORISATION", "REFUND"),
        "metadata": TAG,
        "type": "standard",
        "active": True,
        "description": f"{MARKER}#917A8C",
        "communication_format": "json",
        "encryption_protocol": "TLSv1.2",
        "check_value": "917A8C",
    }
    fields.update(overrides)
    return AdyenWebhook(**fields)


def wanted(**overrides: Any) -> AdyenDesired:
    fields: dict[str, Any] = {"url": URL, "events": ("AUTHORISATION",), "metadata": TAG}
    fields.update(overrides)
    return AdyenDesired(**fields)


# --- the ownership marker


def test_the_marker_has_this_exact_shape() -> None:
    """Webhooks created by earlier versions carry it: a change would make every one of them foreign."""
    assert webhook.marker(TAG) == MARKER
    assert wanted().marker == MARKER
    assert webhook.marker({}) == "procon////"


@pytest.mark.parametrize(
    ("description", "split"),
    [
        (f"{MARKER}#917A8C", (MARKER, "917A8C")),
        (MARKER, (MARKER, None)),
        (f"{MARKER}#", (MARKER, None)),
        (f"{MARKER}#not a check value!", (MARKER, None)),
        (None, ("", None)),
    ],
)
def test_split_description(description: str | None, split: tuple[str, str | None]) -> None:
    assert webhook.split_description(description) == split


@pytest.mark.parametrize(
    ("description", "owner"),
    [
        (f"{MARKER}#917A8C", TAG),
        (MARKER, TAG),
        ("procon/c-1/shop/adyen", {}),  # a part missing
        ("procon/c-1/shop/adyen/uid-1/extra", {}),
        ("procon/c-1//adyen/uid-1", {}),  # an empty part
        ("our payments webhook", {}),
        (None, {}),
    ],
)
def test_owner_of_a_description(description: str | None, owner: dict[str, str]) -> None:
    assert webhook.owner_of(description) == owner


# --- from the spec


def test_target_of_a_company_and_of_a_merchant_account() -> None:
    company = webhook.target(spec({"companyAccount": "ShopCompany"}, mode="live"))
    assert company == AdyenTarget(mode=Mode.LIVE, level="companies", account="ShopCompany")
    assert company.described == "company account ShopCompany"
    merchant = webhook.target(spec({"merchantAccount": "ShopEU"}))
    assert merchant == AdyenTarget(mode=Mode.TEST, level="merchants", account="ShopEU")
    assert merchant.described == "merchant account ShopEU"


def test_target_without_an_adyen_block() -> None:
    spec_without = spec(None)
    assert webhook.options(spec_without) is None
    assert webhook.target(spec_without) == AdyenTarget(mode=Mode.TEST, level="merchants", account="")


def test_desired_company_level_webhook_with_a_filter() -> None:
    block = {
        "companyAccount": "ShopCompany",
        "filterMerchantAccountType": "includeAccounts",
        "filterMerchantAccounts": ["ShopUS", "ShopEU"],
        "webhookType": "report-notification",
    }
    assert webhook.desired(spec(block), TAG, ["REFUND", "AUTHORISATION"]) == AdyenDesired(
        url=URL,
        events=("AUTHORISATION", "REFUND"),
        metadata=TAG,
        type="report-notification",
        company_level=True,
        filter_type="includeAccounts",
        filter_accounts=("ShopEU", "ShopUS"),
    )


def test_desired_merchant_level_webhook_has_no_filter() -> None:
    assert webhook.desired(spec({"merchantAccount": "ShopEU"}), TAG, ["AUTHORISATION"]) == AdyenDesired(
        url=URL,
        events=("AUTHORISATION",),
        metadata=TAG,
        type="standard",
        company_level=False,
        filter_type="allAccounts",
        filter_accounts=(),
    )
    assert webhook.desired(spec(None), TAG, ["AUTHORISATION"]) == AdyenDesired(
        url=URL, events=("AUTHORISATION",), metadata=TAG
    )


def test_event_codes() -> None:
    assert webhook.event_codes(["REFUND", "AUTHORISATION", "REFUND"]) == ("AUTHORISATION", "REFUND")
    with pytest.raises(
        ValueError, match=r"^not Adyen event codes: '\*', 'refund' \(event codes are upper case"
    ):
        webhook.event_codes(["*", "refund", "AUTHORISATION"])


def test_create_parameters_and_create_body() -> None:
    company = wanted(company_level=True, filter_type="includeAccounts", filter_accounts=("ShopEU",))
    assert company.create_parameters() == {
        "url": URL,
        "events": ["AUTHORISATION"],
        "metadata": dict(sorted(TAG.items())),
        "type": "standard",
        "company_level": True,
        "filter_type": "includeAccounts",
        "filter_accounts": ["ShopEU"],
    }
    # Created inactive: nothing is delivered before its HMAC key is published.
    assert webhook.create_body(company) == {
        "url": URL,
        "type": "standard",
        "active": False,
        "communicationFormat": "json",
        "encryptionProtocol": "TLSv1.2",
        "description": MARKER,
        "additionalSettings": {"includeEventCodes": ["AUTHORISATION"]},
        "filterMerchantAccountType": "includeAccounts",
        "filterMerchantAccounts": ["ShopEU"],
    }
    assert "filterMerchantAccountType" not in webhook.create_body(wanted())


# --- from Adyen's answers

ANSWER: dict[str, Any] = {
    "id": "WBHK1",
    "type": "standard",
    "url": URL,
    "active": True,
    "description": f"{MARKER}#917A8C",
    "communicationFormat": "json",
    "encryptionProtocol": "TLSv1.2",
    "hmacKeyCheckValue": "917A8C",
    "filterMerchantAccountType": "includeAccounts",
    "filterMerchantAccounts": ["ShopUS", "ShopEU"],
    "acceptsExpiredCertificate": False,
    "acceptsSelfSignedCertificate": True,
    "additionalSettings": {"includeEventCodes": ["REFUND", "AUTHORISATION"], "excludeEventCodes": ["X"]},
}


def test_parse_a_webhook() -> None:
    assert webhook.parse_webhook(ANSWER) == AdyenWebhook(
        id="WBHK1",
        url=URL,
        events=("AUTHORISATION", "REFUND"),
        metadata=TAG,
        status="enabled",
        type="standard",
        active=True,
        description=f"{MARKER}#917A8C",
        communication_format="json",
        encryption_protocol="TLSv1.2",
        filter_type="includeAccounts",
        filter_accounts=("ShopEU", "ShopUS"),
        exclude_codes=("X",),
        check_value="917A8C",
        certificate_checks_off=("acceptsSelfSignedCertificate",),
    )


def test_parse_a_minimal_inactive_foreign_webhook_in_v1s_terms() -> None:
    body = {
        "id": "WBHK2",
        "type": "standard",
        "url": URL,
        "active": False,
        "communicationFormat": "json",
        "sslVersion": "HTTP",
        "hmacKeyCheckValue": "",
    }
    assert webhook.parse_webhook(body) == AdyenWebhook(
        id="WBHK2",
        url=URL,
        events=(),
        metadata={},
        status="disabled",
        type="standard",
        active=False,
        description="",
        communication_format="json",
        encryption_protocol="HTTP",
        filter_type=None,
        filter_accounts=(),
        exclude_codes=(),
        check_value=None,
        certificate_checks_off=(),
    )
    assert webhook.parse_webhook({**body, "additionalSettings": None}).events == ()
    assert webhook.parse_webhook({**body, "encryptionProtocol": "TLSv1.3"}).encryption_protocol == "TLSv1.3"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Adyen answered with a webhook that is not an object"),
        ({**ANSWER, "id": ""}, "Adyen answered with a webhook without an id"),
        ({**ANSWER, "id": 7}, "Adyen answered with a webhook without an id"),
        (
            {**ANSWER, "additionalSettings": []},
            "Adyen's webhook WBHK1 has additionalSettings that are not an object",
        ),
        (
            {**ANSWER, "hmacKeyCheckValue": "not hex!"},
            "Adyen's webhook WBHK1 has an hmacKeyCheckValue that is not one",
        ),
        ({**ANSWER, "active": "yes"}, "Adyen's webhook WBHK1 has a active that is not true or false"),
        (
            {**ANSWER, "acceptsExpiredCertificate": None},
            "Adyen's webhook WBHK1 has a acceptsExpiredCertificate that is not true or false",
        ),
        ({**ANSWER, "url": None}, "Adyen's webhook WBHK1 has a url that is not text"),
        ({**ANSWER, "description": 5}, "Adyen's webhook WBHK1 has a description that is not text"),
        (
            {**ANSWER, "filterMerchantAccounts": "ShopEU"},
            "Adyen's webhook WBHK1 has filterMerchantAccounts that are not a list of text",
        ),
        (
            {**ANSWER, "additionalSettings": {"includeEventCodes": [1]}},
            "Adyen's webhook WBHK1 has includeEventCodes that are not a list of text",
        ),
        ({**ANSWER, "id": "W" * 100, "url": 1}, f"Adyen's webhook {'W' * 64} has a url that is not text"),
    ],
)
def test_a_malformed_answer_is_named(body: Any, message: str) -> None:
    with pytest.raises(MalformedResponse) as raised:
        webhook.parse_webhook(body)
    assert str(raised.value) == message


# --- compared


def test_a_matching_webhook_is_kept_as_it_is() -> None:
    """Adyen lists its default codes among the included ones: more than asked for is a match."""
    assert webhook.compare(observed(), wanted()) == Comparison()
    company = wanted(company_level=True, filter_type="allAccounts")
    assert webhook.compare(observed(filter_type=None), company) == Comparison()
    included = wanted(company_level=True, filter_type="includeAccounts", filter_accounts=("A", "B"))
    assert webhook.compare(observed(filter_type="includeAccounts", filter_accounts=("B", "A")), included) == (
        Comparison()
    )


@pytest.mark.parametrize(
    ("observed_fields", "because"),
    [
        ({"type": "report-notification"}, "its type changed (report-notification to standard)"),
        ({"type": "x" * 100}, f"its type changed ({'x' * 64} to standard)"),
        ({"url": "https://old.example.com"}, "its URL changed"),
        ({"check_value": None}, "it has no HMAC key"),
        ({"check_value": "000000"}, "its HMAC key was changed outside procon"),
    ],
)
def test_what_adyen_cannot_change_in_place_recreates(observed_fields: dict[str, Any], because: str) -> None:
    assert webhook.compare(observed(**observed_fields), wanted()) == Comparison(recreate_because=because)


@pytest.mark.parametrize(
    ("observed_fields", "wanted_fields", "fields", "changed"),
    [
        ({"description": MARKER}, {}, {"description": f"{MARKER}#917A8C#{ASKED}"}, ("key check value",)),
        (
            {"description": "procon/c-0/shop/adyen/uid-1#917A8C"},
            {},
            {"description": f"{MARKER}#917A8C#{ASKED}"},
            ("ownership marker",),
        ),
        ({"communication_format": "soap"}, {}, {"communicationFormat": "json"}, ("communication format",)),
        ({"encryption_protocol": "HTTP"}, {}, {"encryptionProtocol": "TLSv1.2"}, ("encryption protocol",)),
        (
            {"certificate_checks_off": ("acceptsExpiredCertificate", "acceptsSelfSignedCertificate")},
            {},
            {"acceptsExpiredCertificate": False, "acceptsSelfSignedCertificate": False},
            ("certificate checks",),
        ),
        (
            {"events": ("REFUND",)},
            {},
            {"additionalSettings": {"includeEventCodes": ["AUTHORISATION"]}},
            ("events",),
        ),
        (
            {"exclude_codes": ("AUTHORISATION",)},
            {},
            {"additionalSettings": {"includeEventCodes": ["AUTHORISATION"]}},
            ("events",),
        ),
        (
            {"filter_type": "allAccounts"},
            {"company_level": True, "filter_type": "includeAccounts", "filter_accounts": ("ShopEU",)},
            {"filterMerchantAccountType": "includeAccounts", "filterMerchantAccounts": ["ShopEU"]},
            ("merchant account filter",),
        ),
        (
            {"filter_type": "includeAccounts", "filter_accounts": ("ShopUS",)},
            {"company_level": True, "filter_type": "includeAccounts", "filter_accounts": ("ShopEU",)},
            {"filterMerchantAccountType": "includeAccounts", "filterMerchantAccounts": ["ShopEU"]},
            ("merchant account filter",),
        ),
        ({"active": False}, {}, {"active": True}, ("enabled",)),
        (
            {"active": False, "encryption_protocol": "HTTP", "description": MARKER},
            {},
            {"description": f"{MARKER}#917A8C#{ASKED}", "encryptionProtocol": "TLSv1.2", "active": True},
            ("key check value", "encryption protocol", "enabled"),
        ),
    ],
)
def test_what_differs_is_patched(
    observed_fields: dict[str, Any],
    wanted_fields: dict[str, Any],
    fields: dict[str, Any],
    changed: tuple[str, ...],
) -> None:
    comparison = webhook.compare(observed(**observed_fields), wanted(**wanted_fields))
    assert comparison == Comparison(changes=AdyenChanges(fields=fields, changed=changed))


def test_a_merchant_level_webhook_has_no_filter_to_restore() -> None:
    assert webhook.compare(observed(filter_type="includeAccounts", filter_accounts=("X",)), wanted()) == (
        Comparison()
    )


def test_changes_describe_themselves() -> None:
    assert AdyenChanges(changed=("events", "enabled"), signing_secret="k").describe() == [
        "events",
        "enabled",
        "signing key",
    ]
    assert AdyenChanges().describe() == []


def test_neutral_values_are_read_as_adyens_own() -> None:
    neutral = ObservedWebhook(id="W", url=URL, events=("A",), metadata=TAG, status="disabled", created=17)
    assert webhook.as_webhook(neutral) == AdyenWebhook(
        id="W", url=URL, events=("A",), metadata=TAG, status="disabled", created=17
    )
    own = observed()
    assert webhook.as_webhook(own) is own
    assert webhook.as_desired(DesiredWebhook(url=URL, events=("A",), metadata=TAG)) == AdyenDesired(
        url=URL, events=("A",), metadata=TAG
    )
    own_desired = wanted()
    assert webhook.as_desired(own_desired) is own_desired
    assert WebhookChanges().describe() == []


def test_a_merchant_level_block_never_filters_even_if_it_names_a_filter() -> None:
    """The CRD's rules refuse a filter on a merchant-level block; the module does not rely on them."""
    block = {"merchantAccount": "ShopEU", "filterMerchantAccountType": "includeAccounts"}
    assert webhook.desired(spec(block), TAG, ["AUTHORISATION"]).filter_type == "allAccounts"
    block = {"merchantAccount": "ShopEU", "filterMerchantAccounts": ["ShopUS"]}
    assert webhook.desired(spec(block), TAG, ["AUTHORISATION"]).filter_accounts == ()


def test_the_event_code_error_names_at_most_ten_codes_of_at_most_64_characters() -> None:
    bad = ["x" * 70] + [f"bad{n}" for n in range(11)]
    with pytest.raises(ValueError, match=r"^not Adyen event codes") as raised:
        webhook.event_codes(bad)
    shown = ", ".join([repr("x" * 64)] + [repr(f"bad{n}") for n in range(9)])
    assert str(raised.value) == (
        f"not Adyen event codes: {shown} (event codes are upper case, such as AUTHORISATION or REFUND; "
        "Adyen sends its default codes to every standard webhook, so '*' has no meaning here)"
    )


def test_the_exact_set_of_codes_asked_for_is_a_match() -> None:
    assert webhook.compare(observed(events=("AUTHORISATION",)), wanted()) == Comparison()


def test_parse_keeps_what_adyen_says_even_where_procon_would_change_it() -> None:
    body = {"id": "WBHK3", "type": "", "url": "", "active": True, "communicationFormat": "soap"}
    parsed = webhook.parse_webhook(body)
    assert (parsed.type, parsed.url, parsed.communication_format) == ("", "", "soap")
    # Neither encryptionProtocol nor sslVersion, and no check value: both optional.
    assert (parsed.encryption_protocol, parsed.check_value) == (None, None)
    assert webhook.parse_webhook({**body, "communicationFormat": ""}).communication_format == ""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("encryptionProtocol", 1, "Adyen's webhook WBHK1 has a encryptionProtocol that is not text"),
        ("sslVersion", 1, "Adyen's webhook WBHK1 has a sslVersion that is not text"),
        ("hmacKeyCheckValue", 1, "Adyen's webhook WBHK1 has a hmacKeyCheckValue that is not text"),
        ("type", None, "Adyen's webhook WBHK1 has a type that is not text"),
        ("communicationFormat", 1, "Adyen's webhook WBHK1 has a communicationFormat that is not text"),
        (
            "filterMerchantAccountType",
            1,
            "Adyen's webhook WBHK1 has a filterMerchantAccountType that is not text",
        ),
    ],
)
def test_a_field_of_the_wrong_type_is_named(field: str, value: Any, message: str) -> None:
    body = {k: v for k, v in ANSWER.items() if k != "encryptionProtocol" or field != "sslVersion"}
    with pytest.raises(MalformedResponse) as raised:
        webhook.parse_webhook({**body, field: value})
    assert str(raised.value) == message


def test_excluded_codes_of_the_wrong_type_are_named() -> None:
    body = {**ANSWER, "additionalSettings": {"excludeEventCodes": "REFUND"}}
    with pytest.raises(MalformedResponse) as raised:
        webhook.parse_webhook(body)
    assert str(raised.value) == "Adyen's webhook WBHK1 has excludeEventCodes that are not a list of text"


def test_a_code_dropped_from_the_spec_is_turned_off_though_adyen_lists_more_than_asked() -> None:
    """Adyen lists its default codes among the included ones, so only the recorded digest of the
    codes asked for shows that one was dropped: the spec's list is sent and recorded."""
    asked_before = webhook.events_digest(("AUTHORISATION", "REFUND"))
    listed = observed(
        events=("AUTHORISATION", "REFUND", "REPORT_AVAILABLE"), description=f"{MARKER}#917A8C#{asked_before}"
    )
    comparison = webhook.compare(listed, wanted())
    assert isinstance(comparison.changes, AdyenChanges)
    assert comparison.changes.fields == {
        "description": f"{MARKER}#917A8C#{ASKED}",
        "additionalSettings": {"includeEventCodes": ["AUTHORISATION"]},
    }
    assert comparison.changes.describe() == ["events"]
    # Once recorded, the same listing (Adyen's defaults beside the code asked for) is a match.
    recorded = observed(events=("AUTHORISATION", "REPORT_AVAILABLE"), description=f"{MARKER}#917A8C#{ASKED}")
    assert webhook.compare(recorded, wanted()) == Comparison()


@pytest.mark.parametrize(
    ("description", "digest"),
    [
        (f"{MARKER}#917A8C#{'a' * 12}", "a" * 12),
        (f"{MARKER}#917A8C", None),
        (f"{MARKER}#917A8C#not-a-digest", None),
        (f"{MARKER}#917A8C#{'a' * 12}#more", None),
        (None, None),
    ],
)
def test_the_recorded_digest_of_the_codes_asked_for(description: str | None, digest: str | None) -> None:
    assert webhook.recorded_events_digest(description) == digest


def test_the_digest_of_codes_ignores_order_and_repeats() -> None:
    assert webhook.events_digest(("REFUND", "AUTHORISATION", "REFUND")) == webhook.events_digest(
        ("AUTHORISATION", "REFUND")
    )
    assert webhook.events_digest(("AUTHORISATION",)) != webhook.events_digest(("AUTHORISATION", "REFUND"))

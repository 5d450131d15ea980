"""The Stripe emulator's pure rules, no server: forms, permissions, validation, idempotency, fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from procon.emulators.stripe import catalog, permissions
from procon.emulators.stripe.errors import StripeError
from procon.emulators.stripe.fixture import FixtureError, parse_fixture
from procon.emulators.stripe.forms import as_list, fingerprint, parse_form
from procon.emulators.stripe.idempotency import IdempotencyStore, Outcome, SavedResponse
from procon.emulators.stripe.permissions import MessageStyle
from procon.emulators.stripe.validation import (
    check_length,
    merge_metadata,
    parse_list_params,
    validate_enabled_events,
    validate_webhook_url,
)
from procon.emulators.stripe.webhooks import paginate

# Forms


def test_bracket_notation_nests_hashes_and_lists() -> None:
    parsed = parse_form(
        [
            ("url", "https://x"),
            ("enabled_events[1]", "b"),
            ("enabled_events[0]", "a"),
            ("metadata[owner]", "ns/name"),
            ("metadata[0]", "numeric key"),
            ("expand[]", "data.source"),
            ("expand[]", "data.other"),
            ("a[b][c]", "deep"),
        ]
    )
    assert parsed["url"] == "https://x"
    assert as_list(parsed["enabled_events"]) == ["a", "b"]
    assert parsed["metadata"] == {"owner": "ns/name", "0": "numeric key"}
    assert as_list(parsed["metadata"]) is None
    assert as_list(parsed["expand"]) == ["data.source", "data.other"]
    assert parsed["a"] == {"b": {"c": "deep"}}


def test_blank_values_and_malformed_keys_survive() -> None:
    assert parse_form([("metadata[k]", ""), ("description", "")]) == {
        "metadata": {"k": ""},
        "description": "",
    }
    assert parse_form([("weird[", "x")]) == {"weird[": "x"}


def test_fingerprints_ignore_parameter_order_only() -> None:
    one = fingerprint("post", "/v1/x", parse_form([("a", "1"), ("b", "2")]))
    assert one == fingerprint("POST", "/v1/x", parse_form([("b", "2"), ("a", "1")]))
    assert one != fingerprint("POST", "/v1/x", parse_form([("a", "1"), ("b", "3")]))
    assert one != fingerprint("POST", "/v1/y", parse_form([("a", "1"), ("b", "2")]))


# Permissions


def test_write_implies_read_and_documented_implications_chain() -> None:
    allowed = permissions.closure({"rak_balance_transaction_source_read", "rak_webhook_write"})
    assert {"rak_webhook_read", "rak_balance_read", "rak_transfer_read", "rak_payout_read"} <= allowed
    assert "rak_application_fee_read" in allowed
    assert "rak_charge_read" not in allowed
    assert permissions.allows({"rak_setup_intent_write"}, "rak_mandate_read")
    assert not permissions.allows({"rak_webhook_read"}, "rak_webhook_write")


def test_permission_names_are_normalised_or_refused() -> None:
    assert permissions.normalise("charge_read") == "rak_charge_read"
    assert permissions.normalise("rak_charge_read") == "rak_charge_read"
    with pytest.raises(ValueError, match="permission"):
        permissions.normalise("charges")


def test_both_message_shapes_name_the_permission_and_the_account() -> None:
    legacy = permissions.denied_message(MessageStyle.LEGACY, "rk_test_***abcdef", "acct_1", "rak_plan_read")
    assert legacy == (
        "The provided key 'rk_test_***abcdef' does not have the required permissions for this endpoint on "
        "account 'acct_1'. Having the 'rak_plan_read' permission would allow this request to continue."
    )
    new = permissions.denied_message(MessageStyle.NEW, "rk_live_***j4va7j", "acct_123", "rak_plan_read")
    assert new.startswith(
        "Permission denied. The provided key 'rk_live_***j4va7j' does not have the required permissions for "
        "this endpoint on account 'acct_123'. Enabling \"Prices Read\" ('plan_read') permissions on this key "
        "would allow this request to continue."
    )
    assert permissions.label("rak_accounts_kyc_basic_read") == "Accounts Kyc Basic Read"


# Validation


def test_the_data_lists_are_the_spec_lists() -> None:
    """The lists of Stripe's OpenAPI spec 2026-08-26.dahlia (stripe-mock v0.203.0); the contract test
    compares them with the spec itself."""
    assert len(catalog.enabled_events()) == 266
    assert catalog.enabled_events()[0] == "*"
    assert "financial_connections.account.upcoming_deactivation" in catalog.enabled_events()
    assert len(catalog.webhook_api_versions()) == 127
    assert catalog.webhook_api_versions()[-2:] == ("2026-07-29.dahlia", "2026-08-26.dahlia")
    assert catalog.latest_api_version() == "2026-08-26.dahlia"


@pytest.mark.parametrize(
    ("url", "livemode", "accepted"),
    [
        ("https://hooks.example.com/x", True, True),
        ("http://hooks.example.com/x", False, True),
        ("http://hooks.example.com/x", True, False),
        ("https://hooks.example.com:8443/x?y=1", True, True),
        ("https://8.8.8.8/x", True, True),
        ("https://192.168.1.10/x", False, False),
        ("https://169.254.169.254/latest", False, False),
        ("https://app.localhost/x", False, False),
        ("https://printer.local/x", False, False),
        ("https://hooks.example.com:99999/x", False, False),
        ("", False, False),
    ],
)
def test_webhook_urls(url: str, livemode: bool, accepted: bool) -> None:
    if accepted:
        assert validate_webhook_url(url, livemode=livemode) == url
    else:
        with pytest.raises(StripeError) as caught:
            validate_webhook_url(url, livemode=livemode)
        assert caught.value.status == 400
        assert caught.value.param == "url"


def test_enabled_events_must_be_a_list() -> None:
    with pytest.raises(StripeError) as caught:
        validate_enabled_events("*")
    assert caught.value.param == "enabled_events"
    assert validate_enabled_events({"0": "*"}) == ["*"]


def test_metadata_merges_unsets_and_clears() -> None:
    assert merge_metadata({"a": "1", "b": "2"}, {"a": "", "c": "3"}) == {"b": "2", "c": "3"}
    assert merge_metadata({"a": "1"}, "") == {}
    with pytest.raises(StripeError):
        merge_metadata({}, "not a hash")
    with pytest.raises(StripeError):
        merge_metadata({}, {"nested": {"x": "y"}})
    full = {f"k{index}": "v" for index in range(50)}
    assert merge_metadata(full, {"k0": "", "new": "v"}) == {
        **{k: v for k, v in full.items() if k != "k0"},
        "new": "v",
    }
    with pytest.raises(StripeError):
        merge_metadata(full, {"one_more": "v"})


def test_list_parameters() -> None:
    options = parse_list_params({"limit": "100", "starting_after": "we_1"})
    assert (options.limit, options.starting_after, options.ending_before) == (100, "we_1", None)
    assert parse_list_params({}).limit == 10
    with pytest.raises(StripeError):
        parse_list_params({"limit": "0"})


def test_the_specs_length_bounds_hold_for_cursors_and_descriptions() -> None:
    """Stripe's spec bounds ``description`` and list cursors at 5000 characters (the emulator did not)."""
    assert parse_list_params({"starting_after": "w" * 5000}).starting_after == "w" * 5000
    with pytest.raises(StripeError) as caught:
        parse_list_params({"starting_after": "w" * 5001})
    assert caught.value.body()["error"]["param"] == "starting_after"
    check_length("description", "d" * 5000)
    with pytest.raises(StripeError):
        check_length("description", "d" * 5001)


@pytest.mark.parametrize(
    ("params", "expected", "has_more"),
    [
        ({}, ["e5", "e4"], True),
        ({"starting_after": "e4"}, ["e3", "e2"], True),
        ({"starting_after": "e2"}, ["e1"], False),
        ({"ending_before": "e1"}, ["e3", "e2"], True),
        ({"ending_before": "e4"}, ["e5"], False),
    ],
)
def test_pagination(params: dict[str, Any], expected: list[str], has_more: bool) -> None:
    items = ["e5", "e4", "e3", "e2", "e1"]
    page = paginate(items, parse_list_params({"limit": "2", **params}), key=str, noun="thing")
    assert page == (expected, has_more)


def test_an_unknown_cursor_is_a_404() -> None:
    with pytest.raises(StripeError) as caught:
        paginate(["a"], parse_list_params({"starting_after": "zzz"}), key=str, noun="webhook endpoint")
    assert (caught.value.status, caught.value.param) == (404, "starting_after")


# Idempotency


def test_idempotency_outcomes_and_pruning() -> None:
    now = [1000.0]
    store = IdempotencyStore(clock=lambda: now[0])
    scope = ("acct_1", "acct_1", False)
    assert store.begin(scope, "k", "params-1").outcome is Outcome.EXECUTE
    assert store.begin(scope, "k", "params-1").outcome is Outcome.IN_FLIGHT
    saved = SavedResponse(200, {"id": "we_1"}, "req_1")
    store.save(scope, "k", saved)
    assert store.begin(scope, "k", "params-1") == store.begin(scope, "k", "params-1")
    assert store.begin(scope, "k", "params-1").saved == saved
    assert store.begin(scope, "k", "params-2").outcome is Outcome.MISMATCH
    assert store.begin(("acct_2", "acct_2", False), "k", "params-2").outcome is Outcome.EXECUTE
    now[0] += 24 * 3600
    assert store.begin(scope, "k", "params-2").outcome is Outcome.EXECUTE


def test_an_abandoned_key_can_be_used_again() -> None:
    store = IdempotencyStore()
    assert store.begin("s", "k", "p").outcome is Outcome.EXECUTE
    store.abandon("s", "k")
    assert store.in_flight() == 0
    assert store.begin("s", "k", "other").outcome is Outcome.EXECUTE


# Fixtures


SECRET = "sk_test_51Fixture0000000000000000S8wL"


@pytest.mark.parametrize(
    ("fixture", "complaint"),
    [
        ({}, "fixture.accounts"),
        ({"accounts": [{"id": "acct_1"}], "extra": 1}, "unknown fields extra"),
        ({"accounts": [{"id": "account-1"}]}, "accounts[0].id"),
        ({"accounts": [{"id": "acct_1", "keys": [{"key": "pk_test_123"}]}]}, "accounts[0].keys[0]"),
        (
            {"accounts": [{"id": "acct_1", "keys": [{"key": SECRET, "permissions": ["rak_charge_read"]}]}]},
            "secret",
        ),
        ({"accounts": [{"id": "acct_1", "keys": [{"key": SECRET}, {"key": SECRET}]}]}, "declared twice"),
        (
            {"accounts": [{"id": "acct_1", "keys": [{"key": "rk_test_1", "permissions": ["charges"]}]}]},
            "permission",
        ),
        ({"accounts": [{"id": "acct_1"}], "settings": {"permission_message_style": "fancy"}}, "legacy, new"),
        ({"accounts": [{"id": "acct_1"}], "settings": {"endpoint_limit": 0}}, "endpoint_limit"),
    ],
)
def test_fixture_mistakes_are_reported_with_their_place(fixture: dict[str, Any], complaint: str) -> None:
    with pytest.raises(FixtureError, match=complaint.replace("[", r"\[").replace("]", r"\]")) as caught:
        parse_fixture(fixture)
    assert SECRET not in str(caught.value)


def test_a_fixture_declares_accounts_keys_and_settings() -> None:
    accounts, settings = parse_fixture(
        {
            "accounts": [
                {
                    "id": "acct_1",
                    "connected_accounts": ["acct_2"],
                    "keys": [
                        {"key": SECRET},
                        {"key": "rk_live_abcdefghij", "permissions": ["charge_read"], "expired": True},
                    ],
                }
            ],
            "settings": {"account_endpoint_with_restricted_key": "allowed", "endpoint_limit": 3},
        }
    )
    [spec] = accounts
    assert spec.account.connected_accounts == ("acct_2",)
    secret, restricted = spec.keys
    assert (secret.kind.value, secret.livemode) == ("secret", False)
    assert (restricted.livemode, restricted.expired, restricted.permissions) == (
        True,
        True,
        {"rak_charge_read"},
    )
    assert settings.endpoint_limit == 3
    assert settings.account_endpoint_with_restricted_key.value == "allowed"

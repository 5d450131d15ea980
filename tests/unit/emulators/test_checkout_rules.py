"""The Checkout.com emulator's pure rules, no server: hosts, scopes, workflow validation, fixtures."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from procon.emulators.checkout import catalog, scopes, workflows
from procon.emulators.checkout.delivery import Delivery, matches, new_event, prepare, sign
from procon.emulators.checkout.errors import CheckoutError
from procon.emulators.checkout.fixture import FixtureError, load_fixture, parse_fixture, parse_settings
from procon.emulators.checkout.hosts import (
    account_prefix,
    client_prefix,
    environment,
    hostname,
    is_balances_host,
)
from procon.emulators.checkout.ids import new_id
from procon.emulators.checkout.state import (
    BodyStyle,
    CheckoutSettings,
    CheckoutState,
    EmptyScope,
    Mode,
    mask_key,
)
from procon.emulators.checkout.tokens import decode_claims, make_access_token

DEMO_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "checkout-demo.yaml"
CLIENT = "cli_vkuhvk4vjn2edkps7dfsq6emqm"
ENTITY = "ent_eu3fkzbjqmdeeq4kdtovdvkbbm"
SANDBOX_KEY = "sk_sbox_procondemofullaccesskeyxyz2"
CATALOG = catalog.events_by_source(CheckoutSettings().event_sources)
HOOK = "https://hooks.example.com/checkout"


def workflow_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "k8s:payments/webhooks",
        "conditions": [
            {"type": "event", "events": {"gateway": ["payment_approved"], "dispute": ["dispute_won"]}},
            {"type": "entity", "entities": [ENTITY]},
            {"type": "processing_channel", "processing_channels": ["pc_axclravnqf5u5ejkweijnp5zc4"]},
        ],
        "actions": [
            {
                "type": "webhook",
                "url": HOOK,
                "headers": {"Authorization": "70ed20ff-ba31-4ea3-b3ef-772f2be1cbdf"},
                "signature": {"method": "HMACSHA256", "key": "8V8x0dLK%AyD*DNS8JJr"},
            }
        ],
    }
    body.update(changes)
    return body


def codes_of(body: Any) -> list[str]:
    with pytest.raises(CheckoutError) as caught:
        workflows.parse_create(body, CATALOG)
    error = caught.value
    assert error.status == 422
    payload = error.body("req-1")
    assert payload is not None
    assert payload["request_id"] == "req-1"
    return list(payload.get("error_codes", []))


# Hosts


@pytest.mark.parametrize(
    ("host", "prefix"),
    [
        ("127.0.0.1:8080", None),
        ("[::1]:8080", None),
        ("localhost:8080", None),
        ("api.checkout.test:8080", None),
        ("api.sandbox.checkout.com", None),
        ("access.sandbox.checkout.com", None),
        ("balances.checkout.com", None),
        ("vkuhvk4v.api.sandbox.checkout.com", "vkuhvk4v"),
        ("VKUHVK4V.api.checkout.test:8080", "vkuhvk4v"),
        ("vkuhvk4v.access.checkout.com", "vkuhvk4v"),
        ("vkuhvk4v.api.sandbox.localhost:9000", "vkuhvk4v"),
        ("pl-vkuhvk4v.api.checkout.com", "vkuhvk4v"),
        ("1234doma.access.sandbox.checkout.com.", "1234doma"),
        ("vkuhvk4v.127.0.0.1:8080", "vkuhvk4v"),  # a prefix put before an IP base URL
        ("", None),
    ],
)
def test_the_host_header_names_the_account(host: str, prefix: str | None) -> None:
    assert account_prefix(host) == prefix


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("api.sandbox.checkout.com", "sandbox"),
        ("vkuhvk4v.access.sandbox.checkout.com", "sandbox"),
        ("balances.sandbox.checkout.com", "sandbox"),
        ("vkuhvk4v.api.sandbox.localhost:9000", "sandbox"),
        ("api.checkout.com", "production"),
        ("vkuhvk4v.access.checkout.com", "production"),
        ("balances.checkout.com.", "production"),
        ("api.checkout.test:8080", None),  # the emulator's own names serve both
        ("vkuhvk4v.api.checkout.test", None),
        ("127.0.0.1:8080", None),
        ("notcheckout.com", None),
        ("", None),
    ],
)
def test_the_host_name_says_its_environment_or_nothing(host: str, served: str | None) -> None:
    assert environment(host) == served


def test_the_balances_host_is_the_unprefixed_balances_name() -> None:
    assert is_balances_host("balances.checkout.com")
    assert is_balances_host("balances.sandbox.checkout.com")
    assert is_balances_host("balances.checkout.test:8080")
    assert not is_balances_host("vkuhvk4v.balances.checkout.com")
    assert not is_balances_host("api.checkout.com")
    assert not is_balances_host("127.0.0.1:8080")


def test_the_prefix_is_the_first_eight_characters_after_cli() -> None:
    assert client_prefix("cli_vkuhvk4vjn2edkps7dfsq6emqm") == "vkuhvk4v"  # the docs' example
    assert hostname("Example.COM:443") == "example.com"
    with pytest.raises(ValueError, match="client id"):
        client_prefix("ack_vkuhvk4vjn2edkps7dfsq6emqm")


def test_ids_are_a_prefix_and_26_base32_characters() -> None:
    ids = {new_id("wf_") for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"wf_[a-z2-7]{26}", i) for i in ids)


# Scopes


def test_a_parent_scope_covers_its_children_and_not_the_reverse() -> None:
    assert scopes.covers({"flow"}, "flow:workflows")
    assert scopes.covers({"gateway"}, "gateway:payment-details")
    assert not scopes.covers({"flow:workflows"}, "flow")
    assert not scopes.covers({"flow:events"}, "flow:workflows")
    assert not scopes.covers({"payments"}, "payments:search")  # payments:search has no parent
    assert scopes.allows({"disputes:view"}, scopes.DISPUTES_VIEW)
    assert not scopes.allows({"disputes:accept"}, scopes.DISPUTES_VIEW)


def test_every_scope_in_the_reference_table_is_known() -> None:
    for name in (
        "balances:view",
        "files:retrieve",
        "flow:reflow",
        "gateway:payment-contexts",
        "reports:view",
    ):
        assert name in scopes.ALL_SCOPES
    assert "risk" not in scopes.ALL_SCOPES  # not in the spec nor in any SDK enum
    assert scopes.parse_requested("  flow  disputes:view flow ") == ["flow", "disputes:view"]
    with pytest.raises(ValueError, match="not a scope"):
        scopes.check_names(["Flow Workflows"])


# Workflow validation


def test_a_complete_body_parses_with_defaults() -> None:
    spec = workflows.parse_create(workflow_body(), CATALOG)
    assert spec.active is True  # "default: true"
    assert [c.type for c in spec.conditions] == ["event", "entity", "processing_channel"]
    signature = spec.actions[0].signature
    assert signature is not None
    assert (signature.method, signature.key) == ("HMACSHA256", "8V8x0dLK%AyD*DNS8JJr")
    no_method = workflow_body(actions=[{"type": "webhook", "url": HOOK, "signature": {"key": "k" * 12}}])
    parsed = workflows.parse_create(no_method, CATALOG).actions[0].signature
    assert parsed is not None
    assert parsed.method == "HMACSHA256"  # "Defaults to HMAC SHA256"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"conditions": []}, "conditions_required"),
        ({"conditions": None}, "conditions_required"),
        ({"actions": []}, "actions_required"),
        ({"actions": [{"type": "webhook"}]}, "url_required"),
        ({"actions": [{"type": "webhook", "url": "not a url"}]}, "url_invalid"),
        ({"actions": [{"type": "webhook", "url": "ftp://example.com/x"}]}, "url_invalid"),
        ({"actions": [{"type": "email", "url": HOOK}]}, "action_type_invalid"),
        ({"actions": [{"url": HOOK}]}, "action_type_required"),
        (
            {"actions": [{"type": "webhook", "url": HOOK, "signature": {"method": "HMACSHA256"}}]},
            "signature_key_required",
        ),
        (
            {"actions": [{"type": "webhook", "url": HOOK, "signature": {"key": "k", "method": "MD5"}}]},
            "signature_method_invalid",
        ),
        ({"actions": [{"type": "webhook", "url": HOOK, "headers": {"X": 1}}]}, "headers_invalid"),
        (
            {"conditions": [{"type": "event", "events": {"gateway": ["payment_teleported"]}}]},
            "event_types_invalid",
        ),
        ({"conditions": [{"type": "event", "events": {"gateway": ["dispute_won"]}}]}, "event_types_invalid"),
        (
            {"conditions": [{"type": "event", "events": {"nowhere": ["payment_approved"]}}]},
            "event_types_invalid",
        ),
        ({"conditions": [{"type": "event", "events": {}}]}, "events_required"),
        ({"conditions": [{"type": "event", "events": {"gateway": []}}]}, "events_required"),
        ({"conditions": [{"type": "entity", "entities": []}]}, "entities_required"),
        ({"conditions": [{"type": "entity", "entities": ["pc_wrongkind"]}]}, "entities_invalid"),
        (
            {"conditions": [{"type": "processing_channel", "processing_channels": ["ent_x"]}]},
            "processing_channels_invalid",
        ),
        ({"conditions": [{"type": "schedule"}]}, "condition_type_invalid"),
        ({"conditions": [{"events": {"gateway": ["payment_approved"]}}]}, "condition_type_required"),
        (
            {
                "conditions": [
                    {"type": "event", "events": {"gateway": ["payment_approved"]}},
                    {"type": "event", "events": {"dispute": ["dispute_won"]}},
                ]
            },
            "condition_type_duplicate",
        ),
        ({"name": 42}, "name_invalid"),
        ({"active": "yes"}, "active_invalid"),
    ],
)
def test_invalid_bodies_are_422s_naming_the_problem(changes: dict[str, Any], code: str) -> None:
    assert code in codes_of(workflow_body(**changes))


def test_every_problem_is_reported_at_once() -> None:
    codes = codes_of({"name": 1, "conditions": [], "actions": [{"type": "webhook"}]})
    assert codes == ["name_invalid", "conditions_required", "url_required"]


def test_a_body_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(CheckoutError) as caught:
        workflows.parse_create(["not", "an", "object"], CATALOG)
    body = caught.value.body("r")
    assert body == {"request_id": "r", "error_type": "request_malformed"}


def test_a_patch_needs_a_name_as_the_spec_says() -> None:
    with pytest.raises(CheckoutError) as caught:
        workflows.parse_patch({"active": False}, CATALOG)
    assert caught.value.error_codes == ["name_required"]
    patch = workflows.parse_patch({"name": "renamed", "active": False}, CATALOG)
    assert (patch.name, patch.active, patch.conditions, patch.actions) == ("renamed", False, None, None)


def test_masking_keeps_a_short_head_and_hides_short_values_entirely() -> None:
    assert workflows.mask_secret("signature-key-1234") == "sign" + "*" * 14
    assert workflows.mask_secret("short") == "*****"
    assert mask_key(SANDBOX_KEY) == "sk_sbox_" + "*" * 23 + "xyz2"


def test_rendering_links_on_the_given_host_and_masking_on_request() -> None:
    state = CheckoutState(parse_fixture(load_fixture_data())[0])
    workflow = state.add_workflow(CLIENT, "sandbox", workflows.parse_create(workflow_body(), CATALOG))
    base = "https://vkuhvk4v.api.sandbox.checkout.com"
    full = workflows.workflow_to_api(workflow, base, mask=True)
    assert full["_links"]["self"]["href"] == f"{base}/workflows/{workflow.id}"
    action = full["actions"][0]
    assert action["signature"] == {"method": "HMACSHA256", "key": "8V8x" + "*" * 16}
    assert action["headers"]["Authorization"].startswith("70ed")
    assert "*" in action["headers"]["Authorization"]
    assert action["_links"]["self"]["href"].startswith(f"{base}/workflows/{workflow.id}/actions/wfa_")
    assert workflows.workflow_to_api(workflow, base, mask=False)["actions"][0]["signature"]["key"] == (
        "8V8x0dLK%AyD*DNS8JJr"
    )
    assert set(workflows.workflow_summary(workflow, base)) == {"id", "name", "active", "_links"}


# Event types


def test_the_catalog_has_the_reference_sources_and_every_listed_event() -> None:
    sources = catalog.event_sources("fraud", "reports")
    assert [(s.id, s.display_name) for s in sources] == [
        ("gateway", "Gateway"),
        ("dispute", "Disputes"),
        ("fraud", "Fraud"),
        ("reports", "Reports"),
    ]
    assert len(catalog.GATEWAY_EVENTS) == 20
    assert len(catalog.DISPUTE_EVENTS) == 15
    rendered = sources[0].to_api()
    assert rendered["events"][0] == {
        "id": "payment_approved",
        "display_name": "Payment Authorized",
        "description": "Occurs when a payment is successfully authorized by the Checkout.com payment gateway",
    }
    assert catalog.source_of(catalog.event_sources("fincrime", "reporting"), "fraud_reported") == "fincrime"


# Tokens, signatures, deliveries


def test_access_tokens_are_jwt_shaped() -> None:
    token = make_access_token(
        issuer="https://access.checkout.com",
        access_key_id="ack_x",
        client_id=CLIENT,
        scopes=["flow", "disputes:view"],
        issued_at=1000,
        lifetime=3600,
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    claims = decode_claims(token)
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["scope"] == ["disputes:view", "flow"]
    with pytest.raises(ValueError, match="JWT"):
        decode_claims("opaque")


def test_signatures_are_hex_hmac_sha256_of_the_raw_body() -> None:
    # A known vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
    assert sign("key", b"The quick brown fox jumps over the lazy dog") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_deliveries_match_events_and_verify() -> None:
    state = CheckoutState(parse_fixture(load_fixture_data())[0])
    workflow = state.add_workflow(CLIENT, "sandbox", workflows.parse_create(workflow_body(), CATALOG))
    sources = CheckoutSettings().event_sources
    event = new_event(CLIENT, "sandbox", "payment_approved", sources, entity_id=ENTITY)
    assert not matches(workflow, event)  # the processing-channel condition is not met
    event = new_event(
        CLIENT,
        "sandbox",
        "payment_approved",
        sources,
        entity_id=ENTITY,
        processing_channel_id="pc_axclravnqf5u5ejkweijnp5zc4",
    )
    assert matches(workflow, event)
    assert not matches(workflow, new_event(CLIENT, "sandbox", "payment_declined", sources))
    pending = prepare(event, workflow, workflow.actions[0], "https://api.sandbox.checkout.com")
    sent: Delivery = pending.done(200, None)
    assert sent.verify("8V8x0dLK%AyD*DNS8JJr")
    assert not sent.verify("another key")
    assert sent.headers["Authorization"] == "70ed20ff-ba31-4ea3-b3ef-772f2be1cbdf"
    payload = json.loads(sent.body)
    assert set(payload) == {"id", "type", "version", "created_on", "data", "_links"}
    assert payload["data"]["account"] == {"client_id": CLIENT, "entity_id": ENTITY}
    workflow.active = False
    assert not matches(workflow, event)


# Fixtures and settings


def load_fixture_data() -> dict[str, Any]:
    data = yaml.safe_load(DEMO_FIXTURE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_demo_fixture_loads() -> None:
    clients, settings = load_fixture(DEMO_FIXTURE)
    assert [c.client.prefix for c in clients] == ["vkuhvk4v", "o2h4tmzx", "l1vep7od"]
    assert clients[2].client.mode is Mode.PRODUCTION
    assert clients[0].secret_keys[0].scopes == scopes.ALL_SCOPES  # no scopes listed: all of them
    assert settings == CheckoutSettings()


def broken(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(load_fixture_data())
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["clients", 0, "colour"], "blue", r"clients\[0\]: unknown fields colour"),
        (["clients", 0, "id"], "acct_123", r"clients\[0\]\.id: expected a client id"),
        (["clients", 0, "mode"], "live", r"clients\[0\]\.mode: expected one of sandbox, production"),
        (["clients", 0, "entities"], ["ent_OK"], r"clients\[0\]\.entities\[0\]"),
        (["clients", 0, "access_keys", 0, "id"], "key_1", r"access_keys\[0\]\.id"),
        (["clients", 0, "access_keys", 0, "scopes"], ["Flow!"], r"access_keys\[0\]\.scopes"),
        (["clients", 0, "secret_keys", 0, "key"], "sk_sbox_tooshort", r"secret_keys\[0\]\.key"),
        (
            ["clients", 1, "id"],
            "cli_vkuhvk4vzzzzzzzzzzzzzzzzzz",
            r"same prefix as cli_vkuhvk4vjn2edkps7dfsq6emqm",
        ),
        (["clients", 2, "access_keys", 0, "id"], "ack_procondemooperator", r"declared twice"),
        (["clients", 1, "secret_keys", 0, "key"], SANDBOX_KEY, r"declared twice"),
        (["clients", 0, "secret_keys", 1, "entities"], ["ent_notonclient"], r"not declared on the client"),
        (["clients", 0, "mode"], "production", r"a sandbox key cannot belong to a production client"),
        (["settings", "missing_scope_status"], 404, r"missing_scope_status must be 401 or 403"),
        (["settings", "empty_scope"], "some", r"settings\.empty_scope"),
        (["settings", "fraud_source_id"], "gateway", r"distinct"),
        (["settings", "workflow_limit"], "fifty", r"settings\.workflow_limit"),
        (["clients"], [], r"non-empty list"),
    ],
)
def test_fixture_mistakes_are_named(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(FixtureError, match=message) as caught:
        parse_fixture(broken(path, value))
    assert SANDBOX_KEY not in str(caught.value)


def test_settings_merge_onto_a_base_and_reach_the_enums() -> None:
    settings = parse_settings({"unauthorized_body": "json", "empty_scope": "none", "workflow_limit": 50})
    assert settings.unauthorized_body is BodyStyle.JSON
    assert settings.empty_scope is EmptyScope.NONE
    assert settings.workflow_limit == 50
    again = parse_settings({"missing_scope_status": 403}, settings)
    assert (again.missing_scope_status, again.workflow_limit) == (403, 50)
    assert again.to_json()["unauthorized_body"] == "json"


def test_the_invalid_client_status_is_400_or_401() -> None:
    assert CheckoutSettings().invalid_client_status == 400  # what the spec documents
    assert parse_settings({"invalid_client_status": 401}).invalid_client_status == 401
    with pytest.raises(FixtureError, match="invalid_client_status"):
        parse_settings({"invalid_client_status": 403})


def test_secrets_stay_out_of_reprs() -> None:
    clients, _ = load_fixture(DEMO_FIXTURE)
    shown = repr(clients)
    assert SANDBOX_KEY not in shown
    assert "demo-operator-access-key-secret" not in shown
    spec = workflows.parse_create(workflow_body(), CATALOG)
    assert "8V8x0dLK" not in repr(spec)

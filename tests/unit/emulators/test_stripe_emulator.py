"""The Stripe emulator, driven by the official stripe SDK (and raw HTTP where the SDK hides the wire).

Each test states a fact from docs/processors/stripe.md and checks the emulator keeps it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import httpx
import pytest
import stripe

from procon.emulators.stripe import StripeEmulator, probes
from procon.emulators.stripe.keys import mask_key
from procon.emulators.stripe.permissions import MessageStyle
from tests.unit.emulators.conftest import (
    CONNECTED,
    HOOK,
    PLATFORM,
    RK_EXPIRED,
    RK_LIVE,
    RK_NO_CONNECT,
    RK_OPERATOR,
    RK_READ_ONLY,
    SK_LIVE,
    SK_STANDALONE,
    SK_TEST,
    ClientFactory,
    bearer,
)

REQUEST_ID = re.compile(r"^req_[A-Za-z0-9]{14}$")
# Parsers for 403 messages (docs/processors/stripe.md, "Permission errors").
SLUG = re.compile(r"'(?:rak_)?([a-z0-9_]+_(?:read|write))'")
ACCOUNT_IN_MESSAGE = re.compile(r"on account '(acct_[A-Za-z0-9]+)'")
ENDPOINT_FIELDS = {
    "id",
    "object",
    "api_version",
    "application",
    "created",
    "description",
    "enabled_events",
    "livemode",
    "metadata",
    "status",
    "url",
}


def create_endpoint(client: stripe.StripeClient, url: str = HOOK, **params: Any) -> Any:
    options = params.pop("options", None)
    return client.v1.webhook_endpoints.create(
        {"url": url, "enabled_events": ["charge.succeeded"], **params}, options or {}
    )


# Authentication


def test_a_request_without_a_key_is_a_401_saying_so(http: httpx.Client) -> None:
    response = http.get("/v1/webhook_endpoints")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key. You need to provide your API key")
    assert "Authorization: Bearer YOUR_SECRET_KEY" in error["message"]
    assert REQUEST_ID.match(response.headers["Request-Id"])


def test_an_unknown_key_is_a_401_naming_it_masked(make_client: ClientFactory) -> None:
    unknown = "sk_test_51NotAKnownKeyAtAllzzzzS8wL"
    with pytest.raises(stripe.AuthenticationError) as caught:
        make_client(unknown).v1.webhook_endpoints.list()
    error = caught.value
    assert error.http_status == 401
    assert error.user_message == f"Invalid API Key provided: {mask_key(unknown)}"
    assert error.error.type == "invalid_request_error"
    assert unknown not in (error.http_body or "")


def test_an_expired_key_is_a_401_with_code_api_key_expired(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.AuthenticationError) as caught:
        make_client(RK_EXPIRED).v1.webhook_endpoints.list()
    error = caught.value
    assert error.error.code == "api_key_expired"
    assert error.error.type == "invalid_request_error"
    assert error.user_message == f"Expired API Key provided: {mask_key(RK_EXPIRED)}"


def test_expiring_a_key_at_runtime_takes_effect(emu: StripeEmulator, make_client: ClientFactory) -> None:
    client = make_client(RK_OPERATOR)
    client.v1.balance.retrieve()
    emu.expire_key(RK_OPERATOR)
    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.balance.retrieve()
    assert caught.value.error.code == "api_key_expired"


def test_basic_auth_with_the_key_as_username_is_accepted(http: httpx.Client) -> None:
    response = http.get("/v1/balance", auth=(SK_TEST, ""))
    assert response.status_code == 200
    assert response.json()["object"] == "balance"


def test_keys_are_masked_like_stripe_masks_them() -> None:
    assert mask_key("sk_test_1234567890abcdefS8wL") == "sk_test_" + "*" * 16 + "S8wL"
    assert mask_key(RK_OPERATOR).startswith("rk_test_***")
    assert mask_key(RK_OPERATOR).endswith("qs8Kgd")
    assert len(mask_key(RK_OPERATOR)) == len(RK_OPERATOR)


# Restricted keys and permissions


def test_a_missing_permission_is_a_403_in_the_legacy_shape(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(RK_OPERATOR).v1.charges.list({"limit": 1})
    error = caught.value
    assert error.http_status == 403
    assert error.error.type == "invalid_request_error"
    assert error.error.code is None
    assert error.error.param is None
    assert error.user_message == (
        f"The provided key '{mask_key(RK_OPERATOR)}' does not have the required permissions for this "
        f"endpoint on account '{PLATFORM}'. Having the 'rak_charge_read' permission would allow this "
        "request to continue."
    )
    assert SLUG.search(error.user_message or "") is not None
    assert SLUG.findall(error.user_message or "")[-1] == "charge_read"


def test_the_newer_403_shape_is_available_by_fixture_setting(make_client: ClientFactory) -> None:
    fixture = {
        "accounts": [{"id": PLATFORM, "keys": [{"key": RK_OPERATOR, "permissions": ["rak_webhook_read"]}]}],
        "settings": {"permission_message_style": "new"},
    }
    with StripeEmulator.from_fixture(fixture) as emulator:
        client = stripe.StripeClient(
            RK_OPERATOR,
            base_addresses={"api": emulator.base_url},
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
        )
        with pytest.raises(stripe.PermissionError) as caught:
            client.v1.charges.list()
    message = caught.value.user_message or ""
    assert message.startswith(f"Permission denied. The provided key '{mask_key(RK_OPERATOR)}'")
    assert (
        "Enabling \"Charges Read\" ('charge_read') permissions on this key would allow this request"
        in message
    )
    assert SLUG.findall(message)[-1] == "charge_read"
    assert ACCOUNT_IN_MESSAGE.search(message)[1] == PLATFORM  # type: ignore[index]


def test_write_implies_read(make_client: ClientFactory) -> None:
    listed = make_client(RK_OPERATOR).v1.webhook_endpoints.list()  # the key holds rak_webhook_write only
    assert listed.data == []


def test_read_does_not_imply_write(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.PermissionError) as caught:
        create_endpoint(make_client(RK_READ_ONLY))
    assert "'rak_webhook_write'" in (caught.value.user_message or "")


@pytest.mark.parametrize(
    ("granted", "now_allowed"),
    [
        ("rak_balance_transaction_source_read", ["/v1/balance", "/v1/transfers", "/v1/payouts"]),
        ("rak_transfer_read", ["/v1/transfers", "/v1/payouts"]),
        ("rak_payment_intent_read", ["/v1/payment_intents", "/v1/products"]),
        ("rak_payment_method_read", ["/v1/payment_methods", "/v1/sources/src_probe000"]),
    ],
)
def test_documented_implications(
    emu: StripeEmulator, http: httpx.Client, granted: str, now_allowed: list[str]
) -> None:
    emu.revoke(RK_NO_CONNECT, "rak_webhook_write")
    for path in now_allowed:
        assert http.get(path, headers=bearer(RK_NO_CONNECT)).status_code == 403, path
    emu.grant(RK_NO_CONNECT, granted)
    for path in now_allowed:
        # Sources have no list: a held permission turns the 403 into a 404 for an unknown ID.
        assert http.get(path, headers=bearer(RK_NO_CONNECT)).status_code in (200, 404), path


def test_grant_and_revoke_at_runtime(emu: StripeEmulator, make_client: ClientFactory) -> None:
    client = make_client(RK_OPERATOR)
    emu.grant(RK_OPERATOR, "charge_read")
    assert client.v1.charges.list().data == []
    emu.revoke(mask_key(RK_OPERATOR), "rak_charge_read")  # keys can be named by their masked form
    with pytest.raises(stripe.PermissionError):
        client.v1.charges.list()


@pytest.mark.parametrize("probe", probes.LIST_PROBES, ids=lambda probe: probe.path)
def test_each_list_probe_answers_403_or_an_empty_list(
    emu: StripeEmulator, http: httpx.Client, probe: probes.ListProbe
) -> None:
    params = {"limit": 1} if probe.paginated else {}
    denied = http.get(probe.path, params=params, headers=bearer(RK_NO_CONNECT))
    assert denied.status_code == 403
    assert f"'{probe.permission}'" in denied.json()["error"]["message"]
    emu.grant(RK_NO_CONNECT, probe.permission)
    allowed = http.get(probe.path, params=params, headers=bearer(RK_NO_CONNECT))
    assert allowed.status_code == 200
    assert allowed.json() == {"object": "list", "data": [], "has_more": False, "url": probe.path}


@pytest.mark.parametrize("probe", probes.LIST_PROBES, ids=lambda probe: probe.path)
def test_each_list_probe_refuses_a_parameter_it_does_not_take(
    emu: StripeEmulator, http: httpx.Client, probe: probes.ListProbe
) -> None:
    """As Stripe does: a parameter the list does not take is ``parameter_unknown``, not ignored."""
    emu.grant(RK_NO_CONNECT, probe.permission)
    for known in sorted(probe.filters):
        assert http.get(probe.path, params={known: "x"}, headers=bearer(RK_NO_CONNECT)).status_code == 200
    refused = http.get(probe.path, params={"no_such_filter": "1"}, headers=bearer(RK_NO_CONNECT))
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "parameter_unknown"
    assert refused.json()["error"]["param"] == "no_such_filter"


def test_report_types_take_no_limit(emu: StripeEmulator, http: httpx.Client) -> None:
    """``GET /v1/reporting/report_types`` is not paginated: Stripe's spec has no ``limit`` for it."""
    emu.grant(RK_NO_CONNECT, "rak_report_runs_and_report_types_read")
    refused = http.get("/v1/reporting/report_types", params={"limit": 1}, headers=bearer(RK_NO_CONNECT))
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Received unknown parameter: limit"
    assert http.get(
        "/v1/reporting/report_runs", params={"limit": 1}, headers=bearer(RK_NO_CONNECT)
    ).is_success


def test_expanding_balance_transaction_sources_needs_its_own_permission(
    emu: StripeEmulator, http: httpx.Client
) -> None:
    headers = bearer(RK_READ_ONLY)  # holds rak_balance_read
    assert http.get("/v1/balance_transactions", params={"limit": 1}, headers=headers).status_code == 200
    expanded = http.get("/v1/balance_transactions?limit=1&expand[]=data.source", headers=headers)
    assert expanded.status_code == 403
    assert "'rak_balance_transaction_source_read'" in expanded.json()["error"]["message"]
    emu.grant(RK_READ_ONLY, "rak_balance_transaction_source_read")
    assert (
        http.get("/v1/balance_transactions?limit=1&expand[]=data.source", headers=headers).status_code == 200
    )


@pytest.mark.parametrize(
    ("path", "permission", "noun"),
    [
        ("/v1/sources/src_probe000", "rak_source_read", "source"),
        ("/v1/tokens/tok_probe000", "rak_token_read", "token"),
    ],
)
def test_sources_and_tokens_are_403_without_permission_and_404_with_it(
    emu: StripeEmulator, http: httpx.Client, path: str, permission: str, noun: str
) -> None:
    assert http.get(path, headers=bearer(RK_OPERATOR)).status_code == 403
    emu.grant(RK_OPERATOR, permission)
    missing = http.get(path, headers=bearer(RK_OPERATOR))
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": f"No such {noun}: '{path.rsplit('/', 1)[1]}'",
        "param": "id",
        "type": "invalid_request_error",
    }


def test_a_write_probe_is_403_without_write_and_400_parameter_missing_with_it(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    client = make_client(RK_READ_ONLY)
    emu.grant(RK_READ_ONLY, "rak_payment_intent_read")
    with pytest.raises(stripe.PermissionError) as denied:
        client.v1.payment_intents.create({})
    assert "'rak_payment_intent_write'" in (denied.value.user_message or "")
    emu.grant(RK_READ_ONLY, "rak_payment_intent_write")
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        client.v1.payment_intents.create({})
    assert invalid.value.http_status == 400
    assert invalid.value.code == "parameter_missing"
    assert invalid.value.param == "amount"


@pytest.mark.parametrize(
    ("path", "permission", "noun"),
    [
        ("/v1/charges/ch_procon_probe", "rak_charge_write", "charge"),
        ("/v1/subscriptions/sub_procon_probe", "rak_subscription_write", "subscription"),
    ],
)
def test_an_update_write_probe_is_403_without_write_and_404_with_it(
    emu: StripeEmulator, http: httpx.Client, path: str, permission: str, noun: str
) -> None:
    """Charges and subscriptions require nothing at create, so their write is probed by an empty
    update of an ID that cannot exist; the emulator makes no object either way."""
    denied = http.post(path, headers=bearer(RK_READ_ONLY))
    assert denied.status_code == 403
    assert f"'{permission}'" in denied.json()["error"]["message"]
    emu.grant(RK_READ_ONLY, permission)
    missing = http.post(path, headers=bearer(RK_READ_ONLY))
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"No such {noun}: '{path.rsplit('/', 1)[1]}'"


def test_the_account_object_for_a_secret_key_has_no_livemode(make_client: ClientFactory) -> None:
    account = make_client(SK_TEST).v1.accounts.retrieve_current()
    assert account.id == PLATFORM
    assert account.object == "account"
    assert "livemode" not in account.to_dict()
    assert account.business_profile.name == "Procon Demo Platform"


def test_the_account_object_is_forbidden_to_restricted_keys_by_default(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(RK_OPERATOR).v1.accounts.retrieve_current()
    message = caught.value.user_message or ""
    assert "'rak_accounts_kyc_basic_read'" in message
    assert ACCOUNT_IN_MESSAGE.search(message)[1] == PLATFORM  # type: ignore[index]


def test_the_account_object_can_be_allowed_to_restricted_keys() -> None:
    fixture = {
        "accounts": [{"id": PLATFORM, "keys": [{"key": RK_OPERATOR, "permissions": ["rak_balance_read"]}]}],
        "settings": {"account_endpoint_with_restricted_key": "allowed"},
    }
    with StripeEmulator.from_fixture(fixture) as emulator, httpx.Client(base_url=emulator.base_url) as http:
        assert http.get("/v1/account", headers=bearer(RK_OPERATOR)).status_code == 403
        emulator.grant(RK_OPERATOR, "rak_connected_account_read")
        response = http.get("/v1/account", headers=bearer(RK_OPERATOR))
    assert response.status_code == 200
    assert response.json()["id"] == PLATFORM


@pytest.mark.parametrize(("key", "livemode"), [(SK_TEST, False), (SK_LIVE, True), (RK_LIVE, True)])
def test_the_balance_tells_the_mode(make_client: ClientFactory, key: str, livemode: bool) -> None:
    assert make_client(key).v1.balance.retrieve().livemode is livemode


# Webhook endpoints


def test_create_answers_every_field_and_the_secret_only_once(make_client: ClientFactory) -> None:
    client = make_client(RK_OPERATOR)
    created = create_endpoint(client, description="procon", metadata={"owner": "ns/name"})
    body = created.to_dict()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert created.id.startswith("we_")
    assert created.secret.startswith("whsec_")
    assert created.object == "webhook_endpoint"
    assert created.api_version is None
    assert created.application is None
    assert created.livemode is False
    assert created.status == "enabled"
    assert created.metadata.to_dict() == {"owner": "ns/name"}
    assert set(client.v1.webhook_endpoints.retrieve(created.id).to_dict()) == ENDPOINT_FIELDS
    assert set(client.v1.webhook_endpoints.list().data[0].to_dict()) == ENDPOINT_FIELDS
    updated = client.v1.webhook_endpoints.update(created.id, {"description": "changed"})
    assert "secret" not in updated.to_dict()


def test_endpoints_are_kept_per_account_and_mode(emu: StripeEmulator, make_client: ClientFactory) -> None:
    created = create_endpoint(make_client(SK_TEST))
    assert [e["id"] for e in emu.endpoints(PLATFORM, livemode=False)] == [created.id]
    assert emu.endpoints(PLATFORM, livemode=True) == []
    live = make_client(SK_LIVE)
    assert live.v1.webhook_endpoints.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        live.v1.webhook_endpoints.retrieve(created.id)
    assert caught.value.http_status == 404
    assert caught.value.user_message == (
        f"No such webhook endpoint: '{created.id}'; a similar object exists in test mode, "
        "but a live mode key was used to make this request."
    )
    with pytest.raises(stripe.InvalidRequestError):
        make_client(SK_STANDALONE).v1.webhook_endpoints.retrieve(created.id)


def test_duplicate_urls_are_allowed(make_client: ClientFactory) -> None:
    client = make_client()
    first, second = create_endpoint(client), create_endpoint(client)
    assert first.id != second.id
    assert [e.url for e in client.v1.webhook_endpoints.list().data] == [HOOK, HOOK]


def test_sixteen_endpoints_per_mode_then_a_400_without_code(make_client: ClientFactory) -> None:
    test_client = make_client(SK_TEST)
    for index in range(16):
        create_endpoint(test_client, f"{HOOK}/{index}")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_endpoint(test_client)
    assert caught.value.http_status == 400
    assert caught.value.user_message == "You have reached the maximum of 16 test webhook endpoints."
    assert caught.value.code is None
    assert create_endpoint(make_client(SK_LIVE)).livemode is True  # live mode has its own 16


def test_the_limit_comes_from_the_fixture_and_names_live_mode() -> None:
    fixture = {"accounts": [{"id": PLATFORM, "keys": [{"key": SK_LIVE}]}], "settings": {"endpoint_limit": 1}}
    with StripeEmulator.from_fixture(fixture) as emulator, httpx.Client(base_url=emulator.base_url) as http:
        form = {"url": HOOK, "enabled_events[0]": "*"}
        assert http.post("/v1/webhook_endpoints", data=form, headers=bearer(SK_LIVE)).status_code == 200
        refused = http.post("/v1/webhook_endpoints", data=form, headers=bearer(SK_LIVE))
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": "You have reached the maximum of 1 live webhook endpoints.",
            "type": "invalid_request_error",
        }
    }


def test_enabled_events_are_checked_against_stripes_list(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.webhook_endpoints.create(
            {"url": HOOK, "enabled_events": ["charge.succeeded", "charge.nope"]}
        )
    message = caught.value.user_message or ""
    assert message.startswith(
        "Invalid enabled_events[1]: must be one of account.application.authorized, "
        "account.application.deauthorized, account.external_account.created"
    )
    assert caught.value.param == "enabled_events[1]"
    assert create_endpoint(client, enabled_events=["*"]).enabled_events == ["*"]


def test_api_version_is_checked_on_create_and_echoed(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_endpoint(client, api_version="2099-01-01")
    assert caught.value.param == "api_version"
    assert create_endpoint(client, api_version="2024-06-20").api_version == "2024-06-20"


@pytest.mark.parametrize("param", ["api_version", "connect", "secret"])
def test_update_refuses_create_only_and_unknown_parameters(make_client: ClientFactory, param: str) -> None:
    client = make_client()
    created = create_endpoint(client)
    value = {"api_version": "2024-06-20", "connect": True, "secret": "whsec_x"}[param]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.webhook_endpoints.update(created.id, {param: value})  # type: ignore[misc]
    assert caught.value.code == "parameter_unknown"
    assert caught.value.param == param
    assert caught.value.user_message == f"Received unknown parameter: {param}"


def test_update_changes_url_events_description_status_and_merges_metadata(make_client: ClientFactory) -> None:
    client = make_client()
    created = create_endpoint(client, description="first", metadata={"owner": "a", "keep": "yes"})
    updated = client.v1.webhook_endpoints.update(
        created.id,
        {
            "url": f"{HOOK}/v2",
            "enabled_events": ["invoice.paid", "charge.refunded"],
            "description": "",
            "disabled": True,
            "metadata": {"owner": "", "added": "1"},
        },
    )
    assert updated.url == f"{HOOK}/v2"
    assert updated.enabled_events == ["invoice.paid", "charge.refunded"]
    assert updated.description is None
    assert updated.status == "disabled"
    assert updated.metadata.to_dict() == {"keep": "yes", "added": "1"}
    assert client.v1.webhook_endpoints.update(created.id, {"disabled": False}).status == "enabled"
    assert client.v1.webhook_endpoints.update(created.id, {"metadata": ""}).metadata.to_dict() == {}


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"k{index}": "v" for index in range(51)}, "metadata"),
        ({"k" * 41: "v"}, "metadata[" + "k" * 41 + "]"),
        ({"k": "v" * 501}, "metadata[k]"),
    ],
    ids=["51 keys", "41-character key", "501-character value"],
)
def test_metadata_limits(make_client: ClientFactory, metadata: dict[str, str], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_endpoint(make_client(), metadata=metadata)
    assert caught.value.http_status == 400
    assert caught.value.param == param


def test_metadata_at_the_limits_is_accepted(make_client: ClientFactory) -> None:
    metadata = {f"{index:040d}": "v" * 500 for index in range(50)}
    assert len(create_endpoint(make_client(), metadata=metadata).metadata.to_dict()) == 50


@pytest.mark.parametrize(
    ("key", "url", "expected"),
    [
        (
            SK_TEST,
            "hooks.example.com/stripe",
            "Invalid URL: An explicit scheme (such as https) must be provided.",
        ),
        (SK_TEST, "https://localhost/hook", "Invalid URL: URL must be publicly accessible."),
        (SK_TEST, "http://127.0.0.1:8080/hook", "Invalid URL: URL must be publicly accessible."),
        (SK_TEST, "https://10.1.2.3/hook", "Invalid URL: URL must be publicly accessible."),
        (SK_TEST, "https://[::1]/hook", "Invalid URL: URL must be publicly accessible."),
        (SK_TEST, "https://webhooks/hook", "Invalid URL: URL must be publicly accessible."),
        (SK_TEST, "not a url at all", "Not a valid URL"),
        (SK_TEST, "https://exa mple.com/", "Not a valid URL"),
        (SK_TEST, "ftp://hooks.example.com/", "Not a valid URL"),
        (SK_LIVE, "http://hooks.example.com/stripe", "HTTPS"),
    ],
)
def test_urls_are_validated(make_client: ClientFactory, key: str, url: str, expected: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_endpoint(make_client(key), url)
    assert caught.value.http_status == 400
    assert caught.value.param == "url"
    assert expected in (caught.value.user_message or "")


def test_public_http_urls_are_accepted_in_test_mode(make_client: ClientFactory) -> None:
    assert create_endpoint(make_client(SK_TEST), "http://hooks.example.com/stripe").url.startswith("http://")


def test_localhost_is_refused_with_stripes_exact_text(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_endpoint(make_client(), "http://localhost:3000/webhooks")
    assert caught.value.user_message == (
        "Invalid URL: URL must be publicly accessible. Consider using a tool like the Stripe CLI "
        "to test webhooks locally."
    )


@pytest.mark.parametrize("missing", ["url", "enabled_events"])
def test_create_needs_url_and_enabled_events(make_client: ClientFactory, missing: str) -> None:
    params: dict[str, Any] = {"url": HOOK, "enabled_events": ["*"]}
    del params[missing]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_client().v1.webhook_endpoints.create(params)  # type: ignore[arg-type]
    assert caught.value.code == "parameter_missing"
    assert caught.value.param == missing


@pytest.mark.parametrize("operation", ["retrieve", "update", "delete"])
def test_an_unknown_endpoint_is_a_404_resource_missing(make_client: ClientFactory, operation: str) -> None:
    service = make_client().v1.webhook_endpoints
    calls = {
        "retrieve": lambda: service.retrieve("we_missing000"),
        "update": lambda: service.update("we_missing000", {"description": "x"}),
        "delete": lambda: service.delete("we_missing000"),
    }
    with pytest.raises(stripe.InvalidRequestError) as caught:
        calls[operation]()
    error = caught.value
    assert error.http_status == 404
    assert error.code == "resource_missing"
    assert error.param == "id"
    assert error.user_message == "No such webhook endpoint: 'we_missing000'"


def test_delete_answers_a_stub_and_a_second_delete_is_a_404(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    client = make_client()
    created = create_endpoint(client)
    deleted = client.v1.webhook_endpoints.delete(created.id)
    assert deleted.to_dict() == {"id": created.id, "object": "webhook_endpoint", "deleted": True}
    assert emu.endpoints(PLATFORM) == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.webhook_endpoints.delete(created.id)
    assert caught.value.http_status == 404


def test_lists_are_newest_first_and_paginate_with_cursors(make_client: ClientFactory) -> None:
    client = make_client()
    created = [create_endpoint(client, f"{HOOK}/{index}").id for index in range(5)]
    newest_first = list(reversed(created))
    first = client.v1.webhook_endpoints.list({"limit": 2})
    assert [e.id for e in first.data] == newest_first[:2]
    assert first.has_more is True
    assert first.url == "/v1/webhook_endpoints"
    second = client.v1.webhook_endpoints.list({"limit": 2, "starting_after": newest_first[1]})
    assert [e.id for e in second.data] == newest_first[2:4]
    last = client.v1.webhook_endpoints.list({"limit": 2, "starting_after": newest_first[3]})
    assert [e.id for e in last.data] == newest_first[4:]
    assert last.has_more is False
    before = client.v1.webhook_endpoints.list({"limit": 2, "ending_before": newest_first[4]})
    assert [e.id for e in before.data] == newest_first[2:4]
    assert before.has_more is True
    assert [e.id for e in first.auto_paging_iter()] == newest_first
    assert len(client.v1.webhook_endpoints.list().data) == 5  # default limit 10


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=ten", "starting_after=we_a&ending_before=we_b"]
)
def test_bad_list_parameters_are_400s(http: httpx.Client, query: str) -> None:
    response = http.get(f"/v1/webhook_endpoints?{query}", headers=bearer(SK_TEST))
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_bracket_encoded_forms_are_parsed_like_stripe_python_sends_them(
    emu: StripeEmulator, http: httpx.Client
) -> None:
    body = (
        "url=https%3A%2F%2Fhooks.example.com%2Fx&enabled_events[0]=charge.succeeded"
        "&enabled_events[1]=invoice.paid&metadata[owner]=ns%2Fname&connect=false&description=a+b"
    )
    response = http.post(
        "/v1/webhook_endpoints",
        content=body,
        headers={**bearer(SK_TEST), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["enabled_events"] == ["charge.succeeded", "invoice.paid"]
    assert created["metadata"] == {"owner": "ns/name"}
    assert created["description"] == "a b"
    assert response.headers["Content-Type"] == "application/json"


# Connect


def test_a_platform_secret_key_acts_on_a_connected_account(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    created = create_endpoint(make_client(SK_TEST, stripe_account=CONNECTED))
    assert [e["id"] for e in emu.endpoints(CONNECTED)] == [created.id]
    assert emu.endpoints(PLATFORM) == []


def test_a_restricted_key_without_connect_permissions_cannot_use_stripe_account(
    make_client: ClientFactory,
) -> None:
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(RK_NO_CONNECT, stripe_account=CONNECTED).v1.webhook_endpoints.list()
    assert caught.value.user_message == (
        "You passed a restricted API key with the Stripe-Account header, but the restricted API key "
        "does not have any Connect permissions."
    )


def test_connect_permissions_decide_for_connected_accounts(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    client = make_client(RK_OPERATOR, stripe_account=CONNECTED)  # connect_permissions: rak_webhook_write
    assert create_endpoint(client).livemode is False
    with pytest.raises(stripe.PermissionError) as caught:
        client.v1.balance.retrieve()  # rak_balance_read is a direct permission only
    assert ACCOUNT_IN_MESSAGE.search(caught.value.user_message or "")[1] == CONNECTED  # type: ignore[index]
    emu.grant(RK_OPERATOR, "rak_balance_read", connect=True)
    assert client.v1.balance.retrieve().object == "balance"


def test_an_account_that_is_not_connected_is_refused(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(SK_TEST, stripe_account="acct_1SomebodyElse").v1.webhook_endpoints.list()
    assert caught.value.error.code == "account_invalid"
    assert "does not have access to account 'acct_1SomebodyElse'" in (caught.value.user_message or "")


def test_a_non_platform_cannot_use_stripe_account(make_client: ClientFactory) -> None:
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(SK_STANDALONE, stripe_account=CONNECTED).v1.webhook_endpoints.list()
    assert (caught.value.user_message or "").startswith(
        "Only Stripe Connect platforms can work with other accounts."
    )


def test_connect_endpoints_are_stored_but_not_echoed(emu: StripeEmulator, make_client: ClientFactory) -> None:
    created = create_endpoint(make_client(), connect=True)
    assert "connect" not in created.to_dict()
    dumped = emu.state.snapshot()["accounts"][0]["webhook_endpoints"]["test"]
    assert dumped[0]["id"] == created.id
    assert dumped[0]["connect"] is True


def test_a_platform_lists_its_connected_accounts(make_client: ClientFactory) -> None:
    assert [a.id for a in make_client(SK_TEST).v1.accounts.list().data] == [CONNECTED]
    assert make_client(SK_STANDALONE).v1.accounts.list().data == []


# Headers and idempotency


def test_every_answer_has_a_request_id(http: httpx.Client) -> None:
    answers = [
        http.get("/v1/balance", headers=bearer(SK_TEST)),
        http.get("/v1/charges", headers=bearer(RK_OPERATOR)),
        http.get("/v1/nothing_here", headers=bearer(SK_TEST)),
        http.get("/v1/balance"),
    ]
    assert [a.status_code for a in answers] == [200, 403, 404, 401]
    ids = [a.headers["Request-Id"] for a in answers]
    assert all(REQUEST_ID.match(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)
    assert (
        answers[2].json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here).")
    )


def test_the_same_idempotency_key_and_parameters_replay_the_first_answer(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    client = make_client()
    first = create_endpoint(client, options={"idempotency_key": "pc-uid-1-create"})
    again = create_endpoint(client, options={"idempotency_key": "pc-uid-1-create"})
    assert again.id == first.id
    assert again.secret == first.secret
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert again.last_response.request_id != first.last_response.request_id
    assert len(emu.endpoints(PLATFORM)) == 1


def test_the_same_idempotency_key_with_other_parameters_is_an_idempotency_error(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    create_endpoint(client, options={"idempotency_key": "key-1"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        create_endpoint(client, f"{HOOK}/other", options={"idempotency_key": "key-1"})
    assert caught.value.http_status == 400
    assert caught.value.error.type == "idempotency_error"
    assert caught.value.user_message == (
        "Keys for idempotent requests can only be used with the same parameters they were first used with. "
        "Try using a key other than 'key-1' if you meant to execute a different request."
    )


def test_a_key_still_in_flight_is_a_409(emu: StripeEmulator, make_client: ClientFactory) -> None:
    client = make_client()
    results: list[Any] = []
    with emu.hold_writes() as gate:
        first = threading.Thread(
            target=lambda: results.append(create_endpoint(client, options={"idempotency_key": "slow"}))
        )
        first.start()
        assert gate.wait_for_waiting(1, timeout=10)
        with pytest.raises(stripe.APIError) as caught:
            create_endpoint(client, options={"idempotency_key": "slow"})
    first.join(timeout=10)
    assert caught.value.http_status == 409
    assert caught.value.error.code == "idempotency_key_in_use"
    assert len(results) == 1
    assert [e["id"] for e in emu.endpoints(PLATFORM)] == [results[0].id]


def test_validation_failures_are_not_saved_under_the_idempotency_key(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(stripe.InvalidRequestError):
        create_endpoint(client, "https://localhost/x", options={"idempotency_key": "k"})
    assert create_endpoint(client, options={"idempotency_key": "k"}).id.startswith("we_")


def test_idempotency_keys_are_scoped_per_account(emu: StripeEmulator, make_client: ClientFactory) -> None:
    platform = create_endpoint(make_client(SK_TEST), options={"idempotency_key": "shared"})
    standalone = create_endpoint(make_client(SK_STANDALONE), options={"idempotency_key": "shared"})
    assert platform.id != standalone.id
    assert len(emu.endpoints("acct_1Standalone01")) == 1


# Out-of-band changes and the control API


def test_out_of_band_changes_are_seen_by_the_api(emu: StripeEmulator, make_client: ClientFactory) -> None:
    client = make_client()
    created = create_endpoint(client)
    assert emu.endpoint_secret(created.id) == created.secret
    emu.update_endpoint(created.id, url=f"{HOOK}/moved", disabled=True)
    seen = client.v1.webhook_endpoints.retrieve(created.id)
    assert (seen.url, seen.status) == (f"{HOOK}/moved", "disabled")
    emu.delete_endpoint(created.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.retrieve(created.id)
    adopted = emu.create_endpoint(PLATFORM, HOOK, ["*"], metadata={"owner": "someone"})
    assert client.v1.webhook_endpoints.list().data[0].id == adopted["id"]


def test_the_control_api_dumps_state_without_secrets(make_client: ClientFactory, http: httpx.Client) -> None:
    created = create_endpoint(make_client())
    dump = http.get("/_emulator/state")
    assert dump.status_code == 200
    text = dump.text
    for secret in (SK_TEST, SK_LIVE, RK_OPERATOR, created.secret):
        assert secret not in text
    assert mask_key(RK_OPERATOR) in text
    assert created.id in text


def test_the_control_api_changes_keys_by_masked_or_full_name(http: httpx.Client) -> None:
    granted = http.post(f"/_emulator/keys/{mask_key(RK_OPERATOR)}/grant", json=["rak_charge_read"])
    assert granted.status_code == 200
    assert "rak_charge_read" in granted.json()["permissions"]
    assert http.get("/v1/charges", headers=bearer(RK_OPERATOR)).status_code == 200
    revoked = http.post(f"/_emulator/keys/{RK_OPERATOR}/revoke", json={"permissions": ["charge_read"]})
    assert "rak_charge_read" not in revoked.json()["permissions"]
    assert http.get("/v1/charges", headers=bearer(RK_OPERATOR)).status_code == 403
    assert http.post(f"/_emulator/keys/{RK_OPERATOR}/expire").json()["expired"] is True
    assert http.get("/v1/balance", headers=bearer(RK_OPERATOR)).status_code == 401
    assert http.post("/_emulator/keys/rk_test_unknown/expire").status_code == 404
    assert http.post(f"/_emulator/keys/{SK_TEST}/grant", json=["rak_charge_read"]).status_code == 400
    assert http.post("/_emulator/reset").status_code == 200
    assert http.get("/v1/balance", headers=bearer(RK_OPERATOR)).status_code == 200


def test_the_control_api_changes_endpoints_out_of_band(emu: StripeEmulator, http: httpx.Client) -> None:
    created = http.post(
        "/_emulator/webhook_endpoints", json={"account": PLATFORM, "url": HOOK, "enabled_events": ["*"]}
    )
    assert created.status_code == 200
    endpoint_id = created.json()["id"]
    assert created.json()["secret"].startswith("whsec_")
    changed = http.post(f"/_emulator/webhook_endpoints/{endpoint_id}", json={"disabled": True})
    assert changed.json()["status"] == "disabled"
    assert http.post(f"/_emulator/webhook_endpoints/{endpoint_id}", json={"connect": True}).status_code == 400
    assert http.delete(f"/_emulator/webhook_endpoints/{endpoint_id}").status_code == 200
    assert http.delete(f"/_emulator/webhook_endpoints/{endpoint_id}").status_code == 404
    assert emu.endpoints(PLATFORM) == []


# The operator's way in: the async client over httpx


def test_the_async_client_sees_the_same_api(emu: StripeEmulator) -> None:
    async def scenario() -> tuple[Any, Any, list[str], stripe.PermissionError | None]:
        http_client = stripe.HTTPXClient()
        client = stripe.StripeClient(
            RK_OPERATOR, base_addresses={"api": emu.base_url}, http_client=http_client
        )
        params: Any = {"url": HOOK, "enabled_events": ["charge.succeeded"], "metadata": {"owner": "ns/pc"}}
        try:
            created = await client.v1.webhook_endpoints.create_async(params, {"idempotency_key": "pc-1"})
            replayed = await client.v1.webhook_endpoints.create_async(params, {"idempotency_key": "pc-1"})
            page = await client.v1.webhook_endpoints.list_async({"limit": 100})
            listed = [endpoint.id async for endpoint in page.auto_paging_iter()]
            denied = None
            try:
                await client.v1.charges.list_async({"limit": 1})
            except stripe.PermissionError as error:
                denied = error
        finally:
            await http_client.close_async()
        return created, replayed, listed, denied

    created, replayed, listed, denied = asyncio.run(scenario())
    assert (replayed.id, replayed.secret) == (created.id, created.secret)
    assert listed == [created.id]
    assert denied is not None
    assert denied.http_status == 403


def test_settings_can_change_at_runtime_until_reset(emu: StripeEmulator, make_client: ClientFactory) -> None:
    emu.update_settings(permission_message_style=MessageStyle.NEW)
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(RK_OPERATOR).v1.charges.list()
    assert (caught.value.user_message or "").startswith("Permission denied.")
    assert caught.value.error.code == "more_permissions_required"
    emu.reset()
    with pytest.raises(stripe.PermissionError) as caught:
        make_client(RK_OPERATOR).v1.charges.list()
    assert (caught.value.user_message or "").startswith("The provided key")


def test_keys_and_secrets_stay_out_of_reprs(emu: StripeEmulator, make_client: ClientFactory) -> None:
    created = create_endpoint(make_client())
    shown = repr(emu.state.key(SK_TEST)) + repr(emu.state.endpoint(created.id))
    assert SK_TEST not in shown
    assert created.secret not in shown


def test_401s_carry_a_basic_challenge(http: httpx.Client) -> None:
    assert http.get("/v1/balance").headers["WWW-Authenticate"] == 'Basic realm="Stripe"'

"""Answers that are not the processor's, read by both drivers: each becomes a named ProcessorError.

The emulators stand in for a proxy or a broken network (faults.MalformedKind);
every case here escaped as a KeyError, a TypeError or a JSONDecodeError, or
was read as "no webhooks", before the drivers checked what they read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from procon.api.v1alpha1 import Mode
from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.stripe import StripeEmulator
from procon.processors.base import (
    Credentials,
    MalformedResponse,
    PermissionDenied,
    ProcessorError,
    Target,
    TransientProcessorError,
)
from procon.processors.checkout.driver import CheckoutDriver
from procon.processors.checkout.webhook import CheckoutTarget
from procon.processors.responses import MAX_RESPONSE_BYTES, ResponseTooLarge
from procon.processors.stripe import driver as stripe_driver
from procon.processors.stripe.driver import StripeDriver
from procon.processors.stripe.webhook import StripeDesired

STRIPE_ACCOUNT = "acct_1HostileAnswers01"
STRIPE_KEY = "sk_test_51HostileAnswersKey000000000000000000"
CHECKOUT_CLIENT = "cli_hostilexjn2edkps7dfsq6emqm"
CHECKOUT_KEY = "sk_sbox_" + "hostileanswers" + "a" * 12 + "2"
TEST = Target(mode=Mode.TEST)
SANDBOX = CheckoutTarget(mode=Mode.TEST, client_id=CHECKOUT_CLIENT)
LIST = "/v1/webhook_endpoints"
ENDPOINT = {"id": "we_1", "url": "https://hooks.example.com/x", "enabled_events": ["*"]}


@pytest.fixture(scope="module")
def stripe() -> Iterator[StripeEmulator]:
    fixture = {"accounts": [{"id": STRIPE_ACCOUNT, "keys": [{"key": STRIPE_KEY}]}]}
    with StripeEmulator.from_fixture(fixture) as emu:
        yield emu


@pytest.fixture(scope="module")
def checkout() -> Iterator[CheckoutEmulator]:
    fixture = {
        "clients": [{"id": CHECKOUT_CLIENT, "mode": "sandbox", "secret_keys": [{"key": CHECKOUT_KEY}]}]
    }
    with CheckoutEmulator.from_fixture(fixture, seed=3) as emu:
        yield emu


@pytest.fixture(autouse=True)
def clean(stripe: StripeEmulator, checkout: CheckoutEmulator) -> None:
    stripe.reset()
    checkout.reset()


def stripe_list(emu: StripeEmulator) -> Any:
    # No SDK retries: a retried 5xx would only take longer to show the same thing.
    return asyncio.run(
        StripeDriver(emu.base_url, max_network_retries=0).list_webhooks(
            Credentials({"apiKey": STRIPE_KEY}), TEST
        )
    )


def body(value: Any) -> dict[str, Any]:
    return {"malformed": "body", "malformed_body": json.dumps(value)}


@pytest.mark.parametrize(
    "fault",
    [
        {"malformed": "html", "malformed_status": 200},
        {"malformed": "invalid-json"},
        {"malformed": "empty-200"},
        {"malformed": "truncated"},
        body([]),
        body({}),
        body({"object": "list", "has_more": False}),
        body({"object": "list", "data": "none", "has_more": False}),
        body({"object": "list", "data": [{"id": 7}], "has_more": False}),
        body({"object": "list", "data": [{"id": "we_1", "url": "u", "enabled_events": "*"}], "has_more": 0}),
        body({"object": "list", "data": [["we_1"]], "has_more": False}),
        body({"object": "list", "data": [], "has_more": "no"}),
        body({"object": "list", "data": [ENDPOINT], "has_more": True}),
        {"malformed": "html", "malformed_status": 403},
        {"malformed": "body", "malformed_status": 400, "malformed_body": '{"error": "not an object"}'},
    ],
    ids=[
        "html-200", "invalid-json", "empty-200", "truncated", "list", "empty-object", "no-data",
        "data-not-a-list", "id-not-a-string", "events-not-a-list", "item-not-an-object", "has-more-not-bool",
        "has-more-without-moving-on", "html-403", "error-not-an-object",
    ],
)  # fmt: skip
def test_a_stripe_listing_that_is_not_one_is_a_malformed_response(
    stripe: StripeEmulator, fault: dict[str, Any]
) -> None:
    stripe.set_faults(malformed_path_prefix=LIST, **fault)
    with pytest.raises(MalformedResponse) as caught:
        stripe_list(stripe)
    assert caught.value.reason == "MalformedResponse"
    assert isinstance(caught.value, TransientProcessorError)  # retrying is what can help
    assert "<html" not in str(caught.value)
    assert "nginx" not in str(caught.value)


def test_a_proxy_page_with_a_5xx_is_the_processor_unavailable(stripe: StripeEmulator) -> None:
    stripe.set_faults(malformed="html", malformed_status=502, malformed_path_prefix=LIST)
    with pytest.raises(TransientProcessorError) as caught:
        stripe_list(stripe)
    assert caught.value.reason == "ProcessorUnavailable"
    assert "HTML page" in str(caught.value)
    assert "502" in str(caught.value)


def test_a_stripe_answer_that_never_ends_is_cut_off_at_the_cap(stripe: StripeEmulator) -> None:
    stripe.set_faults(malformed="endless", malformed_interval=0, malformed_path_prefix=LIST)
    with pytest.raises(ResponseTooLarge) as caught:
        stripe_list(stripe)
    assert f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB" in str(caught.value)


def test_after_an_answer_cut_off_the_next_request_is_answered(stripe: StripeEmulator) -> None:
    # The cut answer's connection is closed, not handed to the next request with the rest of
    # the body still coming.
    driver = StripeDriver(stripe.base_url, max_network_retries=0)
    credentials = Credentials({"apiKey": STRIPE_KEY})

    async def main() -> Any:
        try:
            stripe.set_faults(malformed="endless", malformed_interval=0, malformed_path_prefix=LIST)
            with pytest.raises(ResponseTooLarge):
                await driver.list_webhooks(credentials, TEST)
            stripe.reset()
            return await driver.list_webhooks(credentials, TEST)
        finally:
            await driver.aclose()

    assert asyncio.run(main()) == []


def test_a_stripe_listing_that_never_ends_stops_after_a_few_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = 0

    async def endless(
        self: StripeDriver, method: str, path: str, *args: Any, **kwargs: Any
    ) -> Mapping[str, Any]:
        nonlocal pages
        pages += 1
        item = {"id": f"we_{pages}", "url": "https://x", "enabled_events": ["*"], "status": "enabled"}
        return {"object": "list", "data": [item], "has_more": True}

    monkeypatch.setattr(StripeDriver, "_request", endless)
    with pytest.raises(MalformedResponse, match="did not end"):
        asyncio.run(
            StripeDriver("http://127.0.0.1:9").list_webhooks(Credentials({"apiKey": STRIPE_KEY}), TEST)
        )
    assert pages == stripe_driver.MAX_LIST_PAGES


def test_stripe_account_and_create_answers_without_their_fields(stripe: StripeEmulator) -> None:
    creds = Credentials({"apiKey": STRIPE_KEY})
    stripe.set_faults(malformed_path_prefix="/v1/account", **body({}))
    with pytest.raises(MalformedResponse, match="without an account id"):
        asyncio.run(StripeDriver(stripe.base_url, max_network_retries=0).verify(creds, TEST))
    stripe.set_faults(malformed_path_prefix=LIST, malformed_method="POST", **body({"id": "we_1"}))
    desired = StripeDesired(
        url="https://hooks.example.com/x", events=("charge.succeeded",), description=None, metadata={}
    )
    with pytest.raises(MalformedResponse, match="no signing secret"):
        asyncio.run(
            StripeDriver(stripe.base_url, max_network_retries=0).create_webhook(
                creds, TEST, desired, idempotency_key="k1"
            )
        )


def test_a_proxys_403_page_is_not_read_as_a_missing_permission(stripe: StripeEmulator) -> None:
    stripe.set_faults(malformed="html", malformed_status=403, malformed_path_prefix=LIST)
    with pytest.raises(ProcessorError) as caught:
        stripe_list(stripe)
    assert not isinstance(caught.value, PermissionDenied)


# --- Checkout.com ---------------------------------------------------------------------


def checkout_call(emu: CheckoutEmulator, what: str) -> Any:
    driver = CheckoutDriver(transport=emu.transport(), retries=0)
    creds = Credentials({"secretKey": CHECKOUT_KEY})

    async def main() -> Any:
        try:
            if what == "list":
                return await driver.list_webhooks(creds, SANDBOX)
            return await driver.resolve_events(creds, SANDBOX, ["Gateway"])
        finally:
            await driver.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        ("/workflows", {"malformed": "html", "malformed_status": 200}),
        ("/workflows", {"malformed": "invalid-json"}),
        ("/workflows", {"malformed": "empty-200"}),
        ("/workflows", body([])),
        ("/workflows", body({})),
        ("/workflows", body({"data": [{"name": "x"}]})),
        ("/workflows", body({"data": {"id": "wf_1"}})),
        ("/workflows/event-types", body({"data": []})),
        ("/workflows/event-types", body([{"id": "gateway", "events": [{"name": "x"}]}])),
        ("/workflows/event-types", {"malformed": "truncated"}),
    ],
    ids=[
        "html-200", "invalid-json", "empty-200", "list", "empty-object", "item-without-id", "data-not-a-list",
        "event-types-not-a-list", "event-without-id", "event-types-truncated",
    ],
)  # fmt: skip
def test_a_checkout_answer_that_is_not_one_is_a_malformed_response(
    checkout: CheckoutEmulator, path: str, fault: dict[str, Any]
) -> None:
    checkout.set_faults(malformed_method="GET", malformed_path_prefix=path, **fault)
    with pytest.raises(MalformedResponse):
        checkout_call(checkout, "list" if path == "/workflows" else "events")


def test_a_checkout_workflow_with_wrong_types_is_a_malformed_response(checkout: CheckoutEmulator) -> None:
    wf = {"id": "wf_1", "name": "x", "active": "yes", "conditions": [], "actions": []}
    checkout.set_faults(malformed_method="GET", malformed_path_prefix="/workflows/wf_", **body(wf))
    driver = CheckoutDriver(transport=checkout.transport(), retries=0)

    async def main() -> Any:
        try:
            return await driver._get_workflow(Credentials({"secretKey": CHECKOUT_KEY}), SANDBOX, "wf_1")
        finally:
            await driver.aclose()

    with pytest.raises(MalformedResponse, match="active"):
        asyncio.run(main())


def test_a_checkout_answer_that_never_ends_is_cut_off_at_the_cap(checkout: CheckoutEmulator) -> None:
    checkout.set_faults(malformed="endless", malformed_interval=0, malformed_path_prefix="/workflows")
    with pytest.raises(ResponseTooLarge):
        checkout_call(checkout, "list")

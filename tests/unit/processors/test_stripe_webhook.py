"""Stripe's webhook module: a spec to a target and a desired endpoint, and an observed endpoint
compared with it. Pure, so every field is pinned here, matches as well as mismatches: a comparison
that finds a difference where there is none recreates a working endpoint on every pass."""

from __future__ import annotations

from typing import Any

import pytest

from procon.api.v1alpha1 import Mode, ProcessorConnectionSpec
from procon.processors.base import Comparison, DesiredWebhook, ObservedWebhook, WebhookChanges
from procon.processors.stripe import webhook
from procon.processors.stripe.webhook import StripeChanges, StripeDesired, StripeEndpoint, StripeTarget

TAG = {"procon-managed-by": "procon.dev", "procon-uid": "uid-1"}
URL = "https://hooks.example.com/stripe"


def spec(
    stripe: dict[str, Any] | None = None, *, mode: str = "test", description: str | None = "shop"
) -> Any:
    body: dict[str, Any] = {
        "processor": "stripe",
        "mode": mode,
        "credentialsSecretRef": {"name": "key"},
        "webhook": {
            "url": URL,
            "events": ["payout.paid", "charge.succeeded"],
            "signingSecretRef": {"name": "h"},
        },
    }
    if description is not None:
        body["webhook"]["description"] = description
    if stripe is not None:
        body["stripe"] = stripe
    return ProcessorConnectionSpec.model_validate(body)


def endpoint(**overrides: Any) -> StripeEndpoint:
    fields: dict[str, Any] = {
        "id": "we_1",
        "url": URL,
        "events": ("charge.succeeded", "payout.paid"),
        "metadata": {**TAG, "procon-connect": "false"},
        "description": "shop",
        "api_version": None,
    }
    fields.update(overrides)
    return StripeEndpoint(**fields)


def test_the_connect_key_of_the_ownership_tag_has_this_exact_name() -> None:
    """Endpoints created by earlier versions carry it: a rename would recreate every Connect one."""
    assert webhook.CONNECT == "procon-connect"


def test_target_names_the_mode_and_the_connected_account() -> None:
    assert webhook.target(spec({"account": "acct_1Abc"}, mode="live")) == StripeTarget(
        mode=Mode.LIVE, connected_account="acct_1Abc"
    )
    assert webhook.target(spec()) == StripeTarget(mode=Mode.TEST, connected_account=None)


def test_desired_endpoint_from_a_spec_with_a_stripe_block() -> None:
    wanted = webhook.desired(spec({"apiVersion": "2024-06-20", "connect": True}), TAG, ["b.event", "a.event"])
    assert wanted == StripeDesired(
        url=URL,
        events=("a.event", "b.event"),
        metadata={**TAG, "procon-connect": "true"},
        description="shop",
        api_version="2024-06-20",
        connect=True,
    )


def test_desired_endpoint_from_a_spec_without_a_stripe_block() -> None:
    wanted = webhook.desired(spec(description=None), TAG, ["a.event"])
    assert wanted == StripeDesired(
        url=URL,
        events=("a.event",),
        metadata={**TAG, "procon-connect": "false"},
        description=None,
        api_version=None,
        connect=False,
    )
    assert webhook.options(spec()) is None


def test_create_parameters_carry_what_a_replayed_create_must_match() -> None:
    wanted = StripeDesired(
        url=URL, events=("a",), metadata={"k": "v"}, description="d", api_version="2024-06-20", connect=True
    )
    assert wanted.create_parameters() == {
        "url": URL,
        "events": ["a"],
        "metadata": {"k": "v"},
        "description": "d",
        "api_version": "2024-06-20",
        "connect": True,
    }


@pytest.mark.parametrize(
    ("observed", "wanted"),
    [
        pytest.param({"api_version": "2024-06-20"}, {"api_version": "2024-06-20"}, id="same-api-version"),
        pytest.param({"api_version": ""}, {"api_version": None}, id="no-api-version-either-way"),
        pytest.param({"api_version": None}, {"api_version": ""}, id="no-api-version-the-other-way"),
        pytest.param(
            {"metadata": {**TAG, "procon-connect": "true"}},
            {"connect": True, "metadata": {**TAG, "procon-connect": "true"}},
            id="both-connect",
        ),
    ],
)
def test_a_matching_endpoint_is_not_recreated(observed: dict[str, Any], wanted: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "url": URL,
        "events": ("charge.succeeded", "payout.paid"),
        "metadata": {**TAG, "procon-connect": "false"},
        "description": "shop",
    }
    desired_endpoint = StripeDesired(**{**fields, **wanted})
    assert webhook.recreate_because(endpoint(**observed), desired_endpoint) is None
    assert webhook.compare(endpoint(**observed), desired_endpoint) == Comparison()


@pytest.mark.parametrize(
    ("observed", "wanted", "because"),
    [
        ({"url": "https://old.example.com"}, {}, "its URL changed"),
        ({"api_version": "2023-10-16"}, {"api_version": "2024-06-20"}, "its API version changed"),
        ({"api_version": None}, {"api_version": "2024-06-20"}, "its API version changed"),
        ({}, {"connect": True}, "its Connect setting changed"),
        ({"metadata": {**TAG, "procon-connect": "true"}}, {}, "its Connect setting changed"),
    ],
)
def test_what_stripe_cannot_change_in_place_recreates(
    observed: dict[str, Any], wanted: dict[str, Any], because: str
) -> None:
    fields: dict[str, Any] = {
        "url": URL,
        "events": ("charge.succeeded", "payout.paid"),
        "metadata": {**TAG, "procon-connect": "false"},
        "description": "shop",
    }
    assert webhook.compare(endpoint(**observed), StripeDesired(**{**fields, **wanted})) == Comparison(
        recreate_because=because
    )


@pytest.mark.parametrize(("observed", "wanted"), [(None, ""), ("", None), (None, None), ("shop", "shop")])
def test_no_description_and_an_empty_one_are_the_same(observed: str | None, wanted: str | None) -> None:
    desired_endpoint = StripeDesired(
        url=URL,
        events=("charge.succeeded", "payout.paid"),
        metadata={**TAG, "procon-connect": "false"},
        description=wanted,
    )
    assert webhook.changes(endpoint(description=observed), desired_endpoint) is None


def test_changes_name_their_parts_in_a_stable_order() -> None:
    everything = StripeChanges(
        events=("a",), description="d", enabled=False, metadata={"k": "v"}, signing_secret="whsec_x"
    )
    assert everything.describe() == ["events", "signing key", "description", "disabled", "ownership metadata"]
    assert StripeChanges(enabled=True).describe() == ["enabled"]
    assert StripeChanges(description="").describe() == ["description"]
    assert StripeChanges().describe() == []


def test_neutral_values_are_read_as_stripes_own() -> None:
    observed = ObservedWebhook(
        id="we_1", url=URL, events=("a",), metadata={"k": "v"}, status="disabled", created=1700000000
    )
    assert webhook.as_endpoint(observed) == StripeEndpoint(
        id="we_1", url=URL, events=("a",), metadata={"k": "v"}, status="disabled", created=1700000000
    )
    own = endpoint()
    assert webhook.as_endpoint(own) is own
    wanted = DesiredWebhook(url=URL, events=("a",), metadata={"k": "v"})
    assert webhook.as_desired(wanted) == StripeDesired(url=URL, events=("a",), metadata={"k": "v"})
    own_desired = StripeDesired(url=URL, events=("a",), metadata={}, connect=True)
    assert webhook.as_desired(own_desired) is own_desired
    assert webhook.as_changes(WebhookChanges(signing_secret="whsec_x")) == StripeChanges(
        signing_secret="whsec_x"
    )
    own_changes = StripeChanges(enabled=True)
    assert webhook.as_changes(own_changes) is own_changes

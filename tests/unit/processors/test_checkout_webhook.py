"""Checkout.com's webhook module: a spec to a target and a desired workflow, and an observed
workflow compared with it. Pure, so every field is pinned here, matches as well as mismatches."""

from __future__ import annotations

from typing import Any

import pytest

from procon.api.v1alpha1 import Mode, ProcessorConnectionSpec
from procon.processors.base import Comparison, DesiredWebhook, ObservedWebhook, WebhookChanges
from procon.processors.checkout import webhook
from procon.processors.checkout.webhook import (
    CheckoutChanges,
    CheckoutDesired,
    CheckoutTarget,
    CheckoutWorkflow,
)

TAG = {"procon-managed-by": "procon.dev", "procon-uid": "uid-1"}
URL = "https://hooks.example.com/checkout"
CLIENT = "cli_abcdefghijklmnopqrstuvwxyz"


def spec(checkout: dict[str, Any] | None = None, *, mode: str = "test") -> Any:
    body: dict[str, Any] = {
        "processor": "checkout",
        "mode": mode,
        "credentialsSecretRef": {"name": "key"},
        "webhook": {"url": URL, "events": ["payment_captured"], "signingSecretRef": {"name": "h"}},
    }
    if checkout is not None:
        body["checkout"] = checkout
    return ProcessorConnectionSpec.model_validate(body)


def workflow(**overrides: Any) -> CheckoutWorkflow:
    fields: dict[str, Any] = {
        "id": "wf_1",
        "url": URL,
        "events": ("payment_approved", "payment_captured"),
        "metadata": dict(TAG),
        "entities": ("ent_a", "ent_b"),
        "processing_channels": ("pc_a",),
    }
    fields.update(overrides)
    return CheckoutWorkflow(**fields)


def wanted(**overrides: Any) -> CheckoutDesired:
    fields: dict[str, Any] = {
        "url": URL,
        "events": ("payment_approved", "payment_captured"),
        "metadata": dict(TAG),
        "entities": ("ent_a", "ent_b"),
        "processing_channels": ("pc_a",),
    }
    fields.update(overrides)
    return CheckoutDesired(**fields)


def test_target_names_the_mode_the_client_and_the_entities() -> None:
    block = {"clientId": CLIENT, "entities": ["ent_b", "ent_a"]}
    assert webhook.target(spec(block, mode="live")) == CheckoutTarget(
        mode=Mode.LIVE, client_id=CLIENT, entities=("ent_b", "ent_a")
    )
    assert webhook.target(spec()) == CheckoutTarget(mode=Mode.TEST, client_id=None, entities=())


def test_desired_workflow_from_a_spec_with_a_checkout_block() -> None:
    block = {"clientId": CLIENT, "entities": ["ent_b", "ent_a"], "processingChannels": ["pc_b", "pc_a"]}
    assert webhook.desired(spec(block), TAG, ["payment_captured", "payment_approved"]) == CheckoutDesired(
        url=URL,
        events=("payment_approved", "payment_captured"),
        metadata=TAG,
        entities=("ent_a", "ent_b"),
        processing_channels=("pc_a", "pc_b"),
    )


def test_desired_workflow_from_a_spec_without_a_checkout_block() -> None:
    assert webhook.desired(spec(), TAG, ["payment_captured"]) == CheckoutDesired(
        url=URL, events=("payment_captured",), metadata=TAG, entities=(), processing_channels=()
    )
    assert webhook.options(spec()) is None


def test_a_matching_workflow_is_kept_as_it_is_whatever_the_order_of_its_lists() -> None:
    observed = workflow(
        events=("payment_captured", "payment_approved"),
        entities=("ent_b", "ent_a"),
        processing_channels=("pc_a",),
    )
    assert webhook.changes(observed, wanted()) is None
    assert webhook.compare(observed, wanted()) == Comparison()


def test_a_workflow_at_another_url_is_recreated() -> None:
    assert webhook.compare(workflow(url="https://old.example.com"), wanted()) == Comparison(
        recreate_because="its URL changed"
    )


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        ({"events": ("payment_captured",)}, CheckoutChanges(events=("payment_approved", "payment_captured"))),
        ({"enabled": False}, CheckoutChanges(enabled=True)),
        ({"metadata": {**TAG, "procon-uid": "tampered"}}, CheckoutChanges(metadata=TAG)),
        ({"entities": ("ent_a",)}, CheckoutChanges(entities=("ent_a", "ent_b"))),
        ({"processing_channels": ()}, CheckoutChanges(processing_channels=("pc_a",))),
    ],
)
def test_what_differs_is_updated_in_place(observed: dict[str, Any], expected: CheckoutChanges) -> None:
    assert webhook.compare(workflow(**observed), wanted()) == Comparison(changes=expected)


def test_changes_name_their_parts_in_a_stable_order() -> None:
    everything = CheckoutChanges(
        events=("a",),
        enabled=False,
        metadata={"k": "v"},
        entities=("e",),
        processing_channels=("p",),
        signing_secret="k",
    )
    assert everything.describe() == [
        "events",
        "entities",
        "processing channels",
        "signing key",
        "disabled",
        "ownership metadata",
    ]
    assert CheckoutChanges(enabled=True).describe() == ["enabled"]
    assert CheckoutChanges().describe() == []


def test_neutral_values_are_read_as_checkouts_own() -> None:
    observed = ObservedWebhook(
        id="wf_1", url=URL, events=("a",), metadata={"k": "v"}, status="disabled", created=1700000000
    )
    assert webhook.as_workflow(observed) == CheckoutWorkflow(
        id="wf_1", url=URL, events=("a",), metadata={"k": "v"}, status="disabled", created=1700000000
    )
    own = workflow()
    assert webhook.as_workflow(own) is own
    # procon chooses Checkout.com's signing key: it travels with the desired workflow.
    neutral = DesiredWebhook(url=URL, events=("a",), metadata={"k": "v"}, signing_secret="key-1")
    converted = webhook.as_desired(neutral)
    assert converted == CheckoutDesired(url=URL, events=("a",), metadata={"k": "v"}, signing_secret="key-1")
    assert converted.signing_secret == "key-1"
    own_desired = wanted()
    assert webhook.as_desired(own_desired) is own_desired
    assert webhook.as_changes(WebhookChanges(signing_secret="key-1")) == CheckoutChanges(
        signing_secret="key-1"
    )
    own_changes = CheckoutChanges(enabled=True)
    assert webhook.as_changes(own_changes) is own_changes

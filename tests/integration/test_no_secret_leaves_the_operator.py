"""No credential or signing secret reaches the operator's log, events or connections, across the
whole session: this module runs after every other test (the ``runs_last`` marker), so it reads
everything the session's operator logged while the Stripe and Checkout.com suites ran.

The operator runs at debug level, the most it ever logs. What it must never show: every key the
emulators know (valid, expired, revoked), every webhook secret Stripe handed out, every Checkout.com
access key secret, token and workflow signing key, in the clear or base64-encoded (the form Secret
data takes in API bodies).
"""

from __future__ import annotations

import base64
import json

import pytest

from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    events,
    key_secret,
    wait_condition,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.runs_last


def every_secret(stripe: StripeEmulator, checkout: CheckoutEmulator) -> list[str]:
    """Every secret value the emulators know or handed out, plain and base64-encoded."""
    with stripe.state.lock:
        stripe_keys = list(stripe.state.keys)
    with checkout.state.lock:
        checkout_keys = list(checkout.state.secret_keys)
        access = [k.secret for k in checkout.state.access_keys.values()]
    values = [
        *stripe_keys,
        *stripe.issued_secrets(),
        *checkout_keys,
        *access,
        *checkout.issued_tokens(),
        *checkout.signing_keys_seen(),
    ]
    encoded = [base64.b64encode(s.encode()).decode().rstrip("=") for s in values]
    return [*values, *encoded]


def test_the_suite_exercised_the_secrets(
    stripe_emulator: StripeEmulator, checkout_emulator: CheckoutEmulator
) -> None:
    """The control: the session did make keys, endpoints, tokens and workflows to look for."""
    assert len(stripe_emulator.issued_secrets()) > 20
    assert len(checkout_emulator.issued_tokens()) > 0
    assert len(checkout_emulator.signing_keys_seen()) > 5


def test_operator_log_holds_no_secret(
    operator: OperatorProcess, stripe_emulator: StripeEmulator, checkout_emulator: CheckoutEmulator
) -> None:
    log = operator.log()
    assert "procon started" in log
    assert [s for s in every_secret(stripe_emulator, checkout_emulator) if s in log] == []
    assert "whsec_" not in log
    for marker in ("sk_test_51", "rk_test_51", "rk_live_51", "sk_live_51", "sk_sbox_"):
        assert marker not in log, f"{marker}... appears in the operator log"


def test_events_and_connections_hold_no_secret(
    kubectl: Kubectl,
    namespace: str,
    stripe_emulator: StripeEmulator,
    checkout_emulator: CheckoutEmulator,
) -> None:
    """What people read with kubectl: events, and connections with their status and annotations
    (kopf keeps handler errors in annotations). A connection whose key Stripe refuses (Stripe's
    message echoes part of the key) makes sure there is something to read."""
    key = StripeAccount(stripe_emulator).key(ANALYTICS_PERMISSIONS, expired=True)
    kubectl.apply([key_secret("leak", key), connection("leak")], namespace=namespace)
    wait_condition(kubectl, namespace, "leak", "Stalled", "True", "ExpiredCredentials")
    wait_for(
        lambda: any(e["reason"] == "ExpiredCredentials" for e in events(kubectl, namespace, "leak")),
        what="the Warning event",
    )
    readable = json.dumps(
        [
            kubectl.get_json("events", "--all-namespaces")["items"],
            kubectl.get_json("processorconnections", "--all-namespaces")["items"],
        ]
    )
    assert [s for s in every_secret(stripe_emulator, checkout_emulator) if s in readable] == []
    assert key[12:] not in readable

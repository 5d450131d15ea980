"""Hostile answers and input end to end: the operator process, the real API server, the emulators.

Each case ends in a named condition and never in a stale ``Ready=True``:
answers that are not the processor's (``MalformedResponse``), answers that
never end (``ReconcileTimedOut``), key material that cannot be a key
(``InvalidCredentials``), and procon annotations with values procon cannot
use (ignored, with one Warning event per value).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import RECONCILE_TIMEOUT, Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    CREDENTIALS_LABELS,
    CheckoutClient,
    OperatorProcess,
    StripeAccount,
    checkout_connection,
    checkout_secret,
    condition,
    connection,
    events,
    key_secret,
    wait_condition,
    wait_for_events,
    wait_until_nothing_is_being_deleted,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

LIST = "/v1/webhook_endpoints"
# The deadline, the drift timer's longest wait before it notices, and the status write.
DEADLINE_TIMEOUT = float(RECONCILE_TIMEOUT) + 20


@pytest.fixture
def quiet(
    kubectl: Kubectl, stripe_emulator: StripeEmulator, checkout_emulator: CheckoutEmulator
) -> Iterator[None]:
    """Faults here hit every request of a kind: earlier tests' clean-ups must be done first."""
    wait_until_nothing_is_being_deleted(kubectl)
    yield
    stripe_emulator.set_faults()
    checkout_emulator.set_faults()


def touch(kubectl: Kubectl, namespace: str, secret: str, value: str) -> None:
    """Wake the connection's loop now (a Secret change), not at the next drift check."""
    kubectl.run(
        "annotate", "--overwrite", "secret", secret, "-n", namespace, f"tests.procon.dev/touched={value}"
    )


def ready_stripe(kubectl: Kubectl, namespace: str, account: StripeAccount, name: str = "shop") -> None:
    kubectl.apply(
        [key_secret(name, account.key(ANALYTICS_PERMISSIONS)), connection(name)], namespace=namespace
    )
    wait_condition(kubectl, namespace, name, "Ready", "True")


def stripe_body(value: Any) -> dict[str, Any]:
    return {"malformed": "body", "malformed_body": json.dumps(value)}


@pytest.mark.parametrize(
    "fault",
    [
        {"malformed": "html", "malformed_status": 200},
        {"malformed": "invalid-json"},
        {"malformed": "empty-200"},
        {"malformed": "truncated"},
        stripe_body({}),
        stripe_body({"object": "list", "data": [{"id": 42}], "has_more": False}),
        {"malformed": "endless", "malformed_interval": 0},
    ],
    ids=["html-200", "invalid-json", "empty-200", "truncated", "no-list", "wrong-types", "too-large"],
)
def test_a_stripe_answer_that_is_not_stripes_ends_not_ready_without_a_duplicate(
    kubectl: Kubectl,
    namespace: str,
    stripe_emulator: StripeEmulator,
    quiet: None,
    fault: dict[str, Any],
) -> None:
    account = StripeAccount(stripe_emulator)
    ready_stripe(kubectl, namespace, account)
    endpoint = account.endpoints()[0]["id"]

    stripe_emulator.set_faults(malformed_method="GET", malformed_path_prefix=LIST, **fault)
    touch(kubectl, namespace, "shop-key", "1")
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "False", "MalformedResponse")
    reconciling = condition(kubectl, namespace, "shop", "Reconciling")
    assert reconciling is not None
    assert (reconciling["status"], reconciling["reason"]) == ("True", "RetryingAfterError")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert "Stripe" in ready["message"]
    assert "<html" not in ready["message"]
    # An unreadable listing is never read as "no endpoints": nothing was created.
    assert [e["id"] for e in account.endpoints()] == [endpoint]

    stripe_emulator.set_faults()
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=30)
    assert [e["id"] for e in account.endpoints()] == [endpoint]


def test_a_stripe_answer_that_never_ends_hits_the_reconcile_deadline(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, quiet: None, operator: OperatorProcess
) -> None:
    account = StripeAccount(stripe_emulator)
    ready_stripe(kubectl, namespace, account)

    # A byte every half second: no read ever waits long enough for the client's read timeout.
    stripe_emulator.set_faults(
        malformed="endless", malformed_interval=0.5, malformed_method="GET", malformed_path_prefix=LIST
    )
    touch(kubectl, namespace, "shop-key", "1")
    obj = wait_condition(
        kubectl, namespace, "shop", "Ready", "False", "ReconcileTimedOut", timeout=DEADLINE_TIMEOUT
    )
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert f"within {RECONCILE_TIMEOUT}s" in ready["message"]
    assert condition(kubectl, namespace, "shop", "Reconciling")["status"] == "True"  # type: ignore[index]

    stripe_emulator.set_faults()
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=DEADLINE_TIMEOUT)
    assert len(account.endpoints()) == 1


@pytest.mark.parametrize(
    ("fault", "path"),
    [
        ({"malformed": "html", "malformed_status": 200}, "/workflows"),
        ({"malformed": "body", "malformed_body": "{}"}, "/workflows"),
        ({"malformed": "body", "malformed_body": '{"id": "wf_x", "actions": "none"}'}, "/workflows/"),
        ({"malformed": "endless", "malformed_interval": 0}, "/workflows"),
    ],
    ids=["html-200", "no-list", "workflow-wrong-types", "too-large"],
)
def test_a_checkout_answer_that_is_not_checkouts_ends_not_ready_without_a_duplicate(
    kubectl: Kubectl,
    namespace: str,
    checkout_emulator: CheckoutEmulator,
    quiet: None,
    fault: dict[str, Any],
    path: str,
) -> None:
    client = CheckoutClient(checkout_emulator)
    secret = checkout_secret("eu", secret_key=client.secret_key())
    kubectl.apply([secret, checkout_connection("eu", client)], namespace=namespace)
    wait_condition(kubectl, namespace, "eu", "Ready", "True")
    workflow = client.workflows()[0]["id"]

    checkout_emulator.set_faults(malformed_method="GET", malformed_path_prefix=path, **fault)
    touch(kubectl, namespace, "eu-key", "1")
    wait_condition(kubectl, namespace, "eu", "Ready", "False", "MalformedResponse")
    assert [w["id"] for w in client.workflows()] == [workflow]

    checkout_emulator.set_faults()
    wait_condition(kubectl, namespace, "eu", "Ready", "True", timeout=30)
    assert [w["id"] for w in client.workflows()] == [workflow]


# --- key material -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (lambda k: k[:12] + "\n" + k[12:], "contains a line break at position 13"),
        (lambda k: k[:12] + "\r\nX-Injected: 1", "contains a line break at position 13"),
        (lambda k: k[:20] + " " + k[20:], "contains whitespace at position 21"),
        (lambda k: k[:9] + "é" + k[10:], "contains a character outside printable ASCII at position 10"),
    ],
    ids=["lf", "crlf-header-injection", "space", "non-ascii"],
)
def test_a_stripe_key_that_cannot_be_a_key_stalls_saying_why(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, mangle: Any, says: str
) -> None:
    account = StripeAccount(stripe_emulator)
    key = mangle(account.key(ANALYTICS_PERMISSIONS))
    kubectl.apply([key_secret("shop", key), connection("shop")], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "InvalidCredentials")
    credentials = next(c for c in obj["status"]["conditions"] if c["type"] == "CredentialsValid")
    assert (credentials["status"], credentials["reason"]) == ("False", "InvalidCredentials")
    assert f"Secret shop-key: the value of apiKey {says}" in credentials["message"]
    assert key[12:30] not in str(obj)
    assert stripe_emulator.key_uses(key.strip()) == 0
    assert account.endpoints() == []


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (
            lambda k, pair: {"secretKey": k[:10] + "\r\nX-Injected: 1"},
            "secretKey contains a line break at position 11",
        ),
        (
            lambda k, pair: {"secretKey": k[:10] + "é" + k[11:]},
            "secretKey contains a character outside printable ASCII at position 11",
        ),
        (
            lambda k, pair: {"accessKeyId": pair[0], "accessKeySecret": pair[1][:6] + "\n" + pair[1][6:]},
            "accessKeySecret contains a line break at position 7",
        ),
    ],
    ids=["crlf-header-injection", "non-ascii", "oauth-secret-lf"],
)  # fmt: skip
def test_a_checkout_key_that_cannot_be_a_key_stalls_saying_why(
    kubectl: Kubectl,
    namespace: str,
    checkout_emulator: CheckoutEmulator,
    operator: OperatorProcess,
    data: Any,
    says: str,
) -> None:
    client = CheckoutClient(checkout_emulator)
    values = data(client.secret_key(), client.access_key())
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "eu-key", "labels": dict(CREDENTIALS_LABELS)},
        "stringData": values,
    }
    kubectl.apply([secret, checkout_connection("eu", client)], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "InvalidCredentials")
    credentials = next(c for c in obj["status"]["conditions"] if c["type"] == "CredentialsValid")
    assert says in credentials["message"]
    assert "did not answer" not in str(obj)
    assert client.workflows() == []
    # Stalled, not retried in a loop: one Warning, and no traceback for this connection.
    wait_for_events(kubectl, namespace, "eu", "InvalidCredentials")
    log = operator.log()
    assert f"reconcile of {namespace}/eu failed" not in log
    assert f"{namespace}/eu: the reconcile failed" not in log


def test_surrounding_whitespace_is_stripped_and_told_once_per_value(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    account = StripeAccount(stripe_emulator)
    key = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply([key_secret("shop", key + "\n"), connection("shop")], namespace=namespace)
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    (told,) = wait_for_events(kubectl, namespace, "shop", "CredentialsWhitespaceStripped")
    assert told["type"] == "Normal"
    assert "the value of apiKey has leading or trailing whitespace" in told["message"]
    assert key[12:] not in told["message"]

    # More passes with the same value: no second event.
    for i in range(2):
        uses = stripe_emulator.key_uses(key)
        touch(kubectl, namespace, "shop-key", str(i))
        wait_for(lambda: stripe_emulator.key_uses(key) > uses, timeout=10, what="another pass")  # noqa: B023
    # A new value with the same mistake is told again.
    new = account.key(ANALYTICS_PERMISSIONS)
    kubectl.apply(key_secret("shop", " " + new + "\r\n"), namespace=namespace)
    wait_for(lambda: stripe_emulator.key_uses(new) > 0, timeout=10, what="the new key in use")
    assert len(wait_for_events(kubectl, namespace, "shop", "CredentialsWhitespaceStripped", count=2)) == 2
    wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert len(account.endpoints()) == 1


# --- annotations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "value", "says"),
    [
        ("procon.dev/pending-create", "[]", "not a record procon wrote"),
        ("procon.dev/pending-create", "[" * 60_000 + "]" * 60_000, "a value of 120000 characters"),
        ("procon.dev/pending-create", '{"key": {"a": [1, 2]}, "params": null}', "not a record procon wrote"),
        ("procon.dev/paused", "yes", "neither true nor false"),
        ("procon.dev/rotate-signing-secret", "x" * 1000, "no rotation was made"),
        ("procon.dev/pasued", "true", "not an annotation procon uses"),
    ],
    ids=["pending-create-list", "pending-create-deeply-nested", "pending-create-wrong-types", "paused-yes",
         "rotation-too-long", "misspelt"],
)  # fmt: skip
def test_a_malformed_procon_annotation_is_ignored_with_one_warning(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, annotation: str, value: str, says: str
) -> None:
    account = StripeAccount(stripe_emulator)
    key = account.key(ANALYTICS_PERMISSIONS)
    body = connection("shop")
    body["metadata"]["annotations"] = {annotation: value}
    kubectl.apply([key_secret("shop", key), body], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    assert len(account.endpoints()) == 1
    assert "signingSecretRotation" not in obj["status"]
    (warning,) = wait_for_events(kubectl, namespace, "shop", "AnnotationIgnored")
    assert warning["type"] == "Warning"
    assert annotation in warning["message"]
    assert says in warning["message"]

    for i in range(2):  # more passes, same value: no second warning
        uses = stripe_emulator.key_uses(key)
        touch(kubectl, namespace, "shop-key", str(i))
        wait_for(lambda: stripe_emulator.key_uses(key) > uses, timeout=10, what="another pass")  # noqa: B023
    warnings = [e for e in events(kubectl, namespace, "shop") if e["reason"] == "AnnotationIgnored"]
    assert len(warnings) == 1
    assert condition(kubectl, namespace, "shop", "Ready")["status"] == "True"  # type: ignore[index]

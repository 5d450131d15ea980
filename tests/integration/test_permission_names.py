"""Permission names procon does not know are reported as unknown, never counted as held; and a
webhook problem reports the permissions verdict that was actually reached.

The operator process, the real API server and the Stripe and Checkout.com emulators.
"""

from __future__ import annotations

from typing import Any

import pytest

from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    CHECKOUT_SCOPES,
    CheckoutClient,
    StripeAccount,
    checkout_connection,
    checkout_secret,
    connection,
    key_secret,
    wait_condition,
    wait_for_events,
)

pytestmark = pytest.mark.usefixtures("operator")

WATCH_TIMEOUT = 6.0


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj["status"]["conditions"]}


@pytest.mark.parametrize("kind", ["rk", "sk"])
def test_a_misspelt_stripe_permission_is_unknown_not_held(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, kind: str
) -> None:
    """``rak_charge_raed`` once gave Ready=True ("cannot be verified"). It is not a permission:
    the connection stalls naming it, whatever the key (a secret key holds every real one), and no
    webhook is made for a spec that is wrong."""
    account = StripeAccount(stripe_emulator)
    key = account.key(["rak_charge_read", "rak_webhook_write"], kind=kind)
    required = ["rak_charge_raed", "rak_webhook_write"]
    kubectl.apply([key_secret("shop", key), connection("shop", permissions=required)], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "UnknownPermission")
    found = conditions(obj)
    assert (found["PermissionsValid"]["status"], found["PermissionsValid"]["reason"]) == (
        "False",
        "UnknownPermission",
    )
    assert "rak_charge_raed" in found["PermissionsValid"]["message"]
    assert "cannot be verified" not in found["PermissionsValid"]["message"]
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("False", "UnknownPermission")
    assert found["CredentialsValid"]["status"] == "True"
    assert obj["status"]["missingPermissions"] == []
    assert account.endpoints() == []
    wait_for_events(kubectl, namespace, "shop", "UnknownPermission")

    # Corrected, it becomes Ready.
    fixed = ["rak_charge_read", "rak_webhook_write"]
    kubectl.apply(connection("shop", permissions=fixed), namespace=namespace)
    wait_condition(kubectl, namespace, "shop", "Ready", "True", timeout=WATCH_TIMEOUT)


def test_a_known_stripe_permission_without_a_probe_is_still_only_unverifiable(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    """The distinction: ``rak_sku_read`` exists but cannot be checked; it is named, and Ready."""
    account = StripeAccount(stripe_emulator)
    required = ["rak_charge_read", "rak_sku_read", "rak_webhook_write"]
    key = account.key(["rak_charge_read", "rak_webhook_write"])
    kubectl.apply([key_secret("shop", key), connection("shop", permissions=required)], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Ready", "True")
    permissions = conditions(obj)["PermissionsValid"]
    assert (permissions["status"], permissions["reason"]) == ("True", "PermissionsGranted")
    assert "cannot be verified: rak_sku_read" in permissions["message"]


def test_a_webhook_problem_keeps_the_permissions_verdict_reached(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator
) -> None:
    """A stall at the webhook step once wrote "every required permission is held" into
    PermissionsValid whatever the check found; it carries the check's own verdict."""
    account = StripeAccount(stripe_emulator)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shop-webhook"},
            "stringData": {"owner": "someone-else"},
        },
        namespace=namespace,
    )
    required = ["rak_charge_read", "rak_sku_read", "rak_webhook_write"]
    key = account.key(["rak_charge_read", "rak_webhook_write"])
    kubectl.apply([key_secret("shop", key), connection("shop", permissions=required)], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "shop", "Stalled", "True", "SigningSecretConflict")
    found = conditions(obj)
    assert found["PermissionsValid"]["status"] == "True"
    assert "cannot be verified: rak_sku_read" in found["PermissionsValid"]["message"]
    assert found["PermissionsValid"]["message"] != "every required permission is held"
    assert found["CredentialsValid"]["message"] == "valid test-mode credentials"
    assert found["WebhookReady"]["reason"] == "SigningSecretConflict"


@pytest.mark.parametrize("credential", ["secret-key", "oauth"])
def test_a_scope_checkout_does_not_publish_is_unknown_not_held(
    kubectl: Kubectl, namespace: str, checkout_emulator: CheckoutEmulator, credential: str
) -> None:
    """``risk`` is no Checkout.com scope (not in its spec nor any SDK): it was named "cannot be
    verified" and the connection became Ready. It is reported as unknown, for either credential."""
    client = CheckoutClient(checkout_emulator)
    if credential == "oauth":
        secret = checkout_secret("eu", access_key=client.access_key(CHECKOUT_SCOPES))
    else:
        secret = checkout_secret("eu", secret_key=client.secret_key(CHECKOUT_SCOPES))
    body = checkout_connection("eu", client, permissions=[*CHECKOUT_SCOPES, "risk"])
    kubectl.apply([secret, body], namespace=namespace)
    obj = wait_condition(kubectl, namespace, "eu", "Stalled", "True", "UnknownPermission")
    permissions = conditions(obj)["PermissionsValid"]
    assert (permissions["status"], permissions["reason"]) == ("False", "UnknownPermission")
    assert "risk" in permissions["message"]
    assert obj["status"]["missingPermissions"] == []
    assert client.workflows() == []

"""The CRD on a real API server: it installs, it accepts what is valid, and it
rejects what is not with a message a person understands."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Kubectl

pytestmark = pytest.mark.usefixtures("crd_installed")


def valid_connection(name: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "procon.dev/v1alpha1",
        "kind": "ProcessorConnection",
        # The session's operator may be running: these tests own the status themselves.
        "metadata": {"name": name, "annotations": {"procon.dev/paused": "true"}},
        "spec": {
            "processor": "stripe",
            "mode": "test",
            "credentialsSecretRef": {"name": "stripe-key"},
            "requiredPermissions": ["rak_charge_read", "rak_webhook_write"],
            "webhook": {
                "url": "https://hooks.example.com/stripe",
                "events": ["charge.succeeded"],
                "signingSecretRef": {"name": "stripe-webhook"},
            },
        },
    }


def test_crd_is_established(kubectl: Kubectl) -> None:
    crd = kubectl.get_json("customresourcedefinition", "processorconnections.procon.dev")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["pconn"]


def test_every_example_is_accepted(kubectl: Kubectl, namespace: str, example_files: list[Path]) -> None:
    applied = 0
    for path in example_files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            doc["metadata"].pop("namespace", None)
        kubectl.apply(docs, namespace=namespace)
        applied += sum(d["kind"] == "ProcessorConnection" for d in docs)
    listed = kubectl.get_json("pconn", "-n", namespace)["items"]
    assert len(listed) == applied
    # Server-side defaults are applied.
    by_name = {item["metadata"]["name"]: item for item in listed}
    assert by_name["stripe-analytics"]["spec"]["webhook"]["conflictPolicy"] == "Report"
    assert by_name["stripe-integration"]["spec"]["deletionPolicy"] == "Delete"
    assert by_name["stripe-integration"]["spec"]["webhook"]["signingSecretRef"]["key"] == "signingSecret"


def _mutated(path: str, value: Any) -> dict[str, Any]:
    """valid_connection() with the dotted `path` set to `value` (or removed, for `...`)."""
    doc = valid_connection()
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(leaf)
    else:
        node[leaf] = value
    return doc


INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "http-url",
        _mutated("spec.webhook.url", "http://hooks.example.com/x"),
        ["url must be an absolute https:// URL"],
    ),
    ("url-without-host", _mutated("spec.webhook.url", "https://"), ["url must be an absolute https:// URL"]),
    (
        "not-a-url",
        _mutated("spec.webhook.url", "hooks.example.com"),
        ["url must be an absolute https:// URL"],
    ),
    ("empty-events", _mutated("spec.webhook.events", []), ["events must list at least one event type"]),
    (
        "star-with-others",
        _mutated("spec.webhook.events", ["*", "charge.succeeded"]),
        ["'*' subscribes to every event and must stand alone"],
    ),
    (
        "duplicate-events",
        _mutated("spec.webhook.events", ["charge.succeeded", "charge.succeeded"]),
        ["spec.webhook.events", "duplicate entries"],
    ),
    (
        "stripe-block-on-checkout",
        {
            **_mutated("spec.processor", "checkout"),
        },
        [],
    ),  # filled below
    (
        "checkout-block-on-stripe",
        _mutated("spec.checkout", {"clientId": "cli_vkuhvk4vjn2edkps7dfsq6emqm"}),
        ["spec.checkout is only allowed when processor is checkout"],
    ),
    (
        "unknown-processor",
        _mutated("spec.processor", "paypal"),
        ["spec.processor", 'Unsupported value: "paypal"'],
    ),
    ("unknown-mode", _mutated("spec.mode", "sandbox"), ["spec.mode", 'Unsupported value: "sandbox"']),
    (
        "unknown-deletion-policy",
        _mutated("spec.deletionPolicy", "Retain"),
        ["spec.deletionPolicy", 'Unsupported value: "Retain"'],
    ),
    (
        "unknown-conflict-policy",
        _mutated("spec.webhook.conflictPolicy", "Adopt"),
        ["spec.webhook.conflictPolicy", 'Unsupported value: "Adopt"'],
    ),
    ("missing-mode", _mutated("spec.mode", ...), ["spec.mode", "Required value"]),
    (
        "missing-credentials",
        _mutated("spec.credentialsSecretRef", ...),
        ["spec.credentialsSecretRef", "Required value"],
    ),
    ("missing-webhook-url", _mutated("spec.webhook.url", ...), ["spec.webhook.url", "Required value"]),
    (
        "missing-signing-secret-ref",
        _mutated("spec.webhook.signingSecretRef", ...),
        ["spec.webhook.signingSecretRef", "Required value"],
    ),
    ("missing-spec", _mutated("spec", ...), ["spec", "Required value"]),
    (
        "oversize-url",
        _mutated("spec.webhook.url", "https://hooks.example.com/" + "a" * 2048),
        ["spec.webhook.url", "Too long"],
    ),
    (
        "oversize-description",
        _mutated("spec.webhook.description", "d" * 501),
        ["spec.webhook.description", "Too long"],
    ),
    (
        "too-many-events",
        _mutated("spec.webhook.events", [f"e{i}" for i in range(257)]),
        ["spec.webhook.events", "Too many"],
    ),
    (
        "oversize-permission",
        _mutated("spec.requiredPermissions", ["rak_" + "x" * 100]),
        ["spec.requiredPermissions[0]", "Too long"],
    ),
    (
        "signing-secret-is-credentials",
        _mutated("spec.webhook.signingSecretRef", {"name": "stripe-key"}),
        ["must name a different Secret than credentialsSecretRef"],
    ),
    (
        "bad-secret-name",
        _mutated("spec.credentialsSecretRef", {"name": "Stripe_Key"}),
        ["spec.credentialsSecretRef.name", "should match"],
    ),
    (
        "bad-connected-account",
        _mutated("spec.stripe", {"account": "merchant-42"}),
        ["spec.stripe.account", "should match"],
    ),
    (
        "bad-api-version",
        _mutated("spec.stripe", {"apiVersion": "latest"}),
        ["spec.stripe.apiVersion", "should match"],
    ),
    (
        "unknown-field",
        _mutated("spec.webhook.secretRef", {"name": "x"}),
        ["spec.webhook.secretRef", "field not declared in schema"],
    ),
    (
        "url-with-user-and-password",
        _mutated("spec.webhook.url", "https://user:s3cretpass@hooks.example.com/stripe"),
        ["spec.webhook.url", "url must not carry credentials before the host"],
    ),
    (
        "url-with-token-as-user",
        _mutated("spec.webhook.url", "https://tok3nvalue@hooks.example.com/stripe?x=1"),
        ["spec.webhook.url", "url must not carry credentials before the host"],
    ),
]
# A stripe block on a checkout connection.
_stripe_on_checkout = _mutated("spec.processor", "checkout")
_stripe_on_checkout["spec"]["stripe"] = {"connect": True}
INVALID[6] = (
    "stripe-block-on-checkout",
    _stripe_on_checkout,
    ["spec.stripe is only allowed when processor is stripe"],
)


@pytest.mark.parametrize(
    ("manifest", "expected"), [(m, e) for _, m, e in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid_manifest_is_rejected(
    kubectl: Kubectl, namespace: str, manifest: dict[str, Any], expected: list[str]
) -> None:
    result = kubectl.apply(manifest, namespace=namespace, check=False)
    assert result.returncode != 0, "the API server accepted an invalid manifest"
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in the server's answer:\n{result.stderr}"
    assert kubectl.get_json("pconn", "-n", namespace)["items"] == []


def test_userinfo_is_refused_but_an_at_sign_after_the_host_and_a_query_are_accepted(
    kubectl: Kubectl, namespace: str
) -> None:
    """Only credentials before the host are refused: '@' in a path and a token in the query are
    the user's URL (the query is redacted wherever it is shown, never refused)."""
    refused = kubectl.apply(
        _mutated("spec.webhook.url", "https://user:s3cretpass@hooks.example.com/"),
        namespace=namespace,
        check=False,
    )
    assert refused.returncode != 0
    assert "url must not carry credentials before the host (https://user:password@host)" in refused.stderr
    accepted = _mutated("spec.webhook.url", "https://hooks.example.com/users/@me?token=abc123secret#x")
    kubectl.apply(accepted, namespace=namespace)
    stored = kubectl.get_json("pconn", "shop", "-n", namespace)
    assert stored["spec"]["webhook"]["url"] == "https://hooks.example.com/users/@me?token=abc123secret#x"


def test_there_are_at_least_twelve_invalid_cases() -> None:
    assert len({name for name, _, _ in INVALID}) >= 12


def test_processor_cannot_change(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(valid_connection(), namespace=namespace)
    changed = valid_connection()
    changed["spec"]["processor"] = "checkout"
    result = kubectl.apply(changed, namespace=namespace, check=False)
    assert result.returncode != 0
    assert "processor cannot be changed after creation" in result.stderr
    stored = kubectl.get_json("pconn", "shop", "-n", namespace)
    assert stored["spec"]["processor"] == "stripe"


def test_other_fields_can_change(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(valid_connection(), namespace=namespace)
    changed = valid_connection()
    changed["spec"]["webhook"]["url"] = "https://hooks.example.com/v2"
    changed["spec"]["mode"] = "live"
    kubectl.apply(changed, namespace=namespace)
    stored = kubectl.get_json("pconn", "shop", "-n", namespace)
    assert stored["spec"]["webhook"]["url"] == "https://hooks.example.com/v2"
    assert stored["metadata"]["generation"] == 2


def _set_status(
    kubectl: Kubectl, namespace: str, status: dict[str, Any], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Merge-patch the status subresource of connection "shop", as the operator writes it."""
    return kubectl.run(
        "patch",
        "pconn",
        "shop",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        yaml.safe_dump({"status": status}),
        check=check,
    )


READY_FALSE = {
    "observedGeneration": 1,
    "account": {"id": "acct_1Demo", "mode": "test"},
    "webhook": {"id": "we_1Demo", "url": "https://hooks.example.com/stripe", "status": "enabled"},
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "InsufficientPermissions",
            "message": "missing rak_charge_read",
            "lastTransitionTime": "2026-11-22T10:00:00Z",
            "observedGeneration": 1,
        },
    ],
}


def test_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(valid_connection(), namespace=namespace)
    _set_status(kubectl, namespace, READY_FALSE)

    header, row = kubectl.run("get", "pconn", "-n", namespace).stdout.splitlines()
    assert header.split() == ["NAME", "PROCESSOR", "MODE", "ACCOUNT", "READY", "REASON", "AGE"]
    assert row.split()[:6] == ["shop", "stripe", "test", "acct_1Demo", "False", "InsufficientPermissions"]

    header, row = kubectl.run("get", "pconn", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert header.split() == [
        "NAME",
        "PROCESSOR",
        "MODE",
        "ACCOUNT",
        "READY",
        "REASON",
        "AGE",
        "WEBHOOK",
        "MESSAGE",
    ]
    assert row.split()[7:] == ["we_1Demo", "missing", "rak_charge_read"]

    # The short name and the category reach the same objects.
    assert "shop" in kubectl.run("get", "procon", "-n", namespace).stdout
    assert "shop" in kubectl.run("get", "processorconnections", "-n", namespace).stdout


def test_status_is_a_subresource(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(valid_connection(), namespace=namespace)
    _set_status(kubectl, namespace, READY_FALSE)
    # An apply of the spec does not touch status, and status does not bump the generation.
    changed = valid_connection()
    changed["spec"]["webhook"]["events"] = ["charge.refunded"]
    kubectl.apply(changed, namespace=namespace)
    stored = kubectl.get_json("pconn", "shop", "-n", namespace)
    assert stored["status"]["account"]["id"] == "acct_1Demo"
    assert stored["metadata"]["generation"] == 2


def test_status_conditions_are_validated(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(valid_connection(), namespace=namespace)
    bad = copy.deepcopy(READY_FALSE)
    bad["conditions"][0]["status"] = "Maybe"
    result = _set_status(kubectl, namespace, bad, check=False)
    assert result.returncode != 0
    assert 'Unsupported value: "Maybe"' in result.stderr


def test_the_status_is_one_field_for_server_side_apply(kubectl: Kubectl, namespace: str) -> None:
    """Whoever writes the status owns it whole: one managedFields entry, not one per condition
    field (which made every write and watch event of a Ready connection heavier)."""
    kubectl.apply(valid_connection(), namespace=namespace)
    _set_status(kubectl, namespace, READY_FALSE)
    stored = kubectl.get_json("pconn", "shop", "-n", namespace, "--show-managed-fields")
    (status_entry,) = [e for e in stored["metadata"]["managedFields"] if e.get("subresource") == "status"]
    assert status_entry["fieldsV1"] == {"f:status": {}}


def test_a_condition_type_appears_once(kubectl: Kubectl, namespace: str) -> None:
    """The conditions stay a list keyed by type inside the atomic status: the server refuses two of a kind."""
    kubectl.apply(valid_connection(), namespace=namespace)
    twice = copy.deepcopy(READY_FALSE)
    twice["conditions"].append(dict(twice["conditions"][0], status="True", reason="Ready"))
    result = _set_status(kubectl, namespace, twice, check=False)
    assert result.returncode != 0
    assert "Duplicate value" in result.stderr


def test_explain_teaches_the_api(kubectl: Kubectl) -> None:
    webhook = kubectl.run("explain", "processorconnection.spec.webhook").stdout
    assert "The webhook the processor delivers events to." in webhook
    fields = {line.split()[0] for line in webhook.splitlines() if line.startswith("  ") and "\t<" in line}
    assert fields == {"url", "events", "description", "signingSecretRef", "conflictPolicy"}
    assert "events\t<[]string> -required-" in webhook
    assert "HTTPS URL the processor delivers events to." in webhook

    url = kubectl.run("explain", "processorconnection.spec.webhook.url").stdout
    assert "HTTPS URL the processor delivers events to." in url

    spec = kubectl.run("explain", "pconn.spec").stdout
    assert "The payment processor" in spec
    assert "-required-" in spec  # processor, mode, credentialsSecretRef, webhook

    top = kubectl.run("explain", "processorconnection").stdout
    assert "exactly one webhook owned by this object" in " ".join(top.split())


def _adyen_connection(**adyen: Any) -> dict[str, Any]:
    doc = _mutated("spec.processor", "adyen")
    doc["spec"]["requiredPermissions"] = [
        "Management API - Webhooks read and write",
        "Management API\u2014Accounts read",
        "Management API \u2014 Payment methods read",
        "management-api-webhooks-read",
    ]
    if adyen:
        doc["spec"]["adyen"] = adyen
    return doc


def test_adyen_role_names_are_accepted_as_adyen_spells_them(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(_adyen_connection(companyAccount="YOUR_COMPANY"), namespace=namespace)
    stored = kubectl.get_json("pconn", "shop", "-n", namespace)
    assert stored["spec"]["requiredPermissions"][1] == "Management API\u2014Accounts read"


def test_an_adyen_connection_needs_its_account_block(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.apply(_adyen_connection(), namespace=namespace, check=False)
    assert result.returncode != 0
    assert "spec.adyen is required when processor is adyen" in result.stderr


def test_each_processor_refuses_names_not_of_its_vocabularys_shape(kubectl: Kubectl, namespace: str) -> None:
    stripe = _mutated("spec.requiredPermissions", ["Management API - Webhooks read"])
    result = kubectl.apply(stripe, namespace=namespace, check=False)
    assert result.returncode != 0
    assert "requiredPermissions: each Stripe name must match" in result.stderr
    adyen = _adyen_connection(companyAccount="YOUR_COMPANY")
    adyen["spec"]["requiredPermissions"] = ["Webhooks; rm -rf"]
    result = kubectl.apply(adyen, namespace=namespace, check=False)
    assert result.returncode != 0
    assert "requiredPermissions: each Adyen name must match" in result.stderr
    padded = _mutated("spec.requiredPermissions", [" rak_charge_read"])
    assert kubectl.apply(padded, namespace=namespace, check=False).returncode != 0
    assert kubectl.get_json("pconn", "-n", namespace)["items"] == []

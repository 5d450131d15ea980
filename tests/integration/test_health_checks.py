"""Flux and Argo CD read connections right: kstatus itself, and Argo CD's health check in a real
Lua, on live objects in the real API server.

kstatus is ``sigs.k8s.io/cli-utils``' ``status.Compute``, the rules Flux's health checks apply,
built from its Go module (``hack/kstatus``). Each status is built by the operator's own code
(``procon.reconcile.conditions.build``, from an ``Assessment`` like the ones the reconciler makes)
and written through the status subresource, so each case is exactly the one named and what is
judged is what the operator really writes: a change to the conditions that kstatus or the Lua
check would misread fails here. No operator runs (and the session's must not yet: see the
``no_session_operator`` marker in conftest.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from procon.dev.toolchain import ensure_kstatus
from procon.reconcile import conditions
from procon.reconcile.conditions import Assessment, Verdict
from tests.argocd_health import health
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import connection

pytestmark = [pytest.mark.no_session_operator, pytest.mark.usefixtures("crd_installed")]


@pytest.fixture(scope="module")
def kstatus() -> Path:
    return ensure_kstatus()


def written(assessment: Assessment, generation: int = 1) -> dict[str, Any]:
    """The status the operator writes for ``assessment`` at ``generation``.

    The conditions are ``conditions.build``'s, unchanged. Around them, what every status write of the
    reconciler carries as well: the top-level ``observedGeneration`` (the generation kstatus reads)
    and ``missingPermissions``.
    """
    return {
        "observedGeneration": generation,
        "conditions": conditions.build(assessment, generation=generation),
        "missingPermissions": [],
    }


# The domain verdicts as the reconciler words them.
CREDENTIALS_OK = Verdict("True", "CredentialsVerified", "valid test-mode credentials")
PERMISSIONS_OK = Verdict("True", "PermissionsGranted", "every required permission is held")
WEBHOOK_OK = Verdict("True", "EndpointReady", "webhook we_1Health delivers 2 event types")
KEY_REJECTED = Verdict("False", "InvalidCredentials", "the key was rejected")
WAITING = Verdict("Unknown", "WaitingForCredentials", "not checked until the credentials are valid")

# Each state the reconciler reports, as the Assessment it builds for it.
STARTING = written(Assessment(starting=True))  # first sight, before any check
READY = written(Assessment(credentials=CREDENTIALS_OK, permissions=PERMISSIONS_OK, webhook=WEBHOOK_OK))
# Not stalled: in GitOps the Secret often lands after the connection.
SECRET_MISSING = written(
    Assessment(credentials=Verdict("False", "CredentialsSecretNotFound", "Secret shop-key not found"))
)
# Someone else's webhook on the same URL: left alone, the connection waits.
CONFLICT = written(
    Assessment(
        credentials=CREDENTIALS_OK,
        permissions=PERMISSIONS_OK,
        webhook=Verdict("False", "EndpointConflict", "webhook we_1Other is not owned by procon"),
    )
)
# A transient error after an earlier Ready: the domain verdicts carried over, the retry on top.
RETRYING = written(
    Assessment(
        credentials=CREDENTIALS_OK,
        permissions=PERMISSIONS_OK,
        webhook=WEBHOOK_OK,
        retrying="Stripe answered 503",
    )
)
STALLED = written(
    Assessment(credentials=KEY_REJECTED, permissions=WAITING, webhook=WAITING, stalled=KEY_REJECTED)
)


def set_status(kubectl: Kubectl, namespace: str, name: str, status: dict[str, Any]) -> None:
    kubectl.run(
        "patch",
        "pconn",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def live(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(kubectl.get_json("pconn", name, "-n", namespace))


def kstatus_of(kstatus: Path, obj: dict[str, Any]) -> dict[str, str]:
    result = subprocess.run(
        [str(kstatus)], input=yaml.safe_dump(obj), text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    return dict(json.loads(line))


# kstatus verdict -> the Argo CD health that must go with it.
AGREES = {
    "Current": "Healthy",
    "InProgress": "Progressing",
    "Failed": "Degraded",
    "Terminating": "Progressing",
}

CASES: list[tuple[str, dict[str, Any], bool, str, str]] = [
    # name, status, edit the spec after writing it, kstatus, Argo CD
    ("starting", STARTING, False, "InProgress", "Progressing"),
    ("ready", READY, False, "Current", "Healthy"),
    ("working-on-it", SECRET_MISSING, False, "InProgress", "Progressing"),
    ("endpoint-conflict", CONFLICT, False, "InProgress", "Progressing"),
    ("retrying", RETRYING, False, "InProgress", "Progressing"),
    ("stalled", STALLED, False, "Failed", "Degraded"),
    ("ready-but-spec-changed", READY, True, "InProgress", "Progressing"),
    ("stalled-but-spec-changed", STALLED, True, "InProgress", "Progressing"),
]


@pytest.mark.parametrize(
    ("status", "edit_spec", "expected_kstatus", "expected_argocd"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_kstatus_and_argocd_on_live_connections(
    kubectl: Kubectl,
    namespace: str,
    kstatus: Path,
    status: dict[str, Any],
    edit_spec: bool,
    expected_kstatus: str,
    expected_argocd: str,
) -> None:
    kubectl.apply(connection("shop"), namespace=namespace)
    set_status(kubectl, namespace, "shop", status)
    if edit_spec:
        # A new generation the operator has not seen yet: what was true is not news about it.
        kubectl.run(
            "patch", "pconn", "shop", "-n", namespace, "--type=merge", "-p", '{"spec":{"mode":"live"}}'
        )
    obj = live(kubectl, namespace, "shop")
    assert obj["metadata"]["generation"] == (2 if edit_spec else 1)
    assert obj["status"]["observedGeneration"] == 1
    # The API server stored the conditions as built (the CRD schema pruned nothing).
    assert obj["status"]["conditions"] == status["conditions"]

    verdict = kstatus_of(kstatus, obj)
    assert verdict["status"] == expected_kstatus, verdict
    argocd = health(obj)
    assert argocd["status"] == expected_argocd, argocd
    assert AGREES[verdict["status"]] == argocd["status"]


def test_stalled_says_why(kubectl: Kubectl, namespace: str, kstatus: Path) -> None:
    kubectl.apply(connection("shop"), namespace=namespace)
    set_status(kubectl, namespace, "shop", STALLED)
    obj = live(kubectl, namespace, "shop")
    assert health(obj)["message"] == "InvalidCredentials: the key was rejected"
    assert kstatus_of(kstatus, obj)["message"] == "the key was rejected"


def test_a_connection_being_deleted(kubectl: Kubectl, namespace: str, kstatus: Path) -> None:
    """A finalizer holds it (as the operator's does while it removes the webhook): Terminating."""
    body = connection("shop")
    body["metadata"]["finalizers"] = ["tests.procon.dev/hold"]
    kubectl.apply(body, namespace=namespace)
    set_status(kubectl, namespace, "shop", READY)
    kubectl.run("delete", "pconn", "shop", "-n", namespace, "--wait=false")
    try:
        obj = live(kubectl, namespace, "shop")
        assert obj["metadata"].get("deletionTimestamp")
        assert kstatus_of(kstatus, obj)["status"] == "Terminating"
        assert health(obj)["status"] == "Progressing"
    finally:
        kubectl.run(
            "patch",
            "pconn",
            "shop",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )


def test_before_the_operator_writes_a_status(kubectl: Kubectl, namespace: str, kstatus: Path) -> None:
    """kstatus calls an object without conditions Current (its documented corner case), which is why
    the operator writes Ready=False and Reconciling=True soon after it first sees a connection, if
    its first pass has not written a verdict by then (the `starting` case above). Argo CD's check
    does not wait for that: no status is Progressing."""
    kubectl.apply(connection("shop"), namespace=namespace)
    obj = live(kubectl, namespace, "shop")
    assert "status" not in obj
    assert kstatus_of(kstatus, obj)["status"] == "Current"
    assert health(obj)["status"] == "Progressing"


def test_kstatus_reads_lists_and_files(
    kubectl: Kubectl, namespace: str, kstatus: Path, tmp_path: Path
) -> None:
    """The tool itself: a `kubectl get -o json` List gives one verdict per item; a file works too."""
    for name, status in (("ready", READY), ("stalled", STALLED)):
        kubectl.apply(connection(name), namespace=namespace)
        set_status(kubectl, namespace, name, status)
    listing = kubectl.run("get", "pconn", "-n", namespace, "-o", "json").stdout
    path = tmp_path / "list.json"
    path.write_text(listing)
    result = subprocess.run([str(kstatus), str(path)], text=True, capture_output=True, check=True)
    verdicts = {v["name"]: v["status"] for v in map(json.loads, result.stdout.splitlines())}
    assert verdicts == {"ready": "Current", "stalled": "Failed"}


def test_the_gitops_connections_apply(
    kubectl: Kubectl, namespace: str, repo_root: Path, kstatus: Path
) -> None:
    """What examples/gitops deploys from Git is accepted by the API server (in a test namespace),
    and before any operator has seen it Argo CD calls it Progressing."""
    rendered = kubectl.run("kustomize", str(repo_root / "examples" / "gitops" / "connections")).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    kubectl.apply(docs, namespace=namespace)
    for doc in docs:
        obj = live(kubectl, namespace, doc["metadata"]["name"])
        assert health(obj)["status"] == "Progressing"


def test_a_paused_connection(kubectl: Kubectl, namespace: str, kstatus: Path) -> None:
    """procon.dev/paused: Argo CD shows Suspended; kstatus has no such state and reads the status
    the operator wrote before the pause."""
    kubectl.apply(connection("shop"), namespace=namespace)
    set_status(kubectl, namespace, "shop", READY)
    kubectl.run("annotate", "pconn", "shop", "-n", namespace, "procon.dev/paused=true")
    obj = live(kubectl, namespace, "shop")
    assert health(obj)["status"] == "Suspended"
    assert kstatus_of(kstatus, obj)["status"] == "Current"
    kubectl.run("annotate", "--overwrite", "pconn", "shop", "-n", namespace, "procon.dev/paused=false")
    assert health(live(kubectl, namespace, "shop"))["status"] == "Healthy"

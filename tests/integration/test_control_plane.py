"""The local control plane behaves like a cluster where an operator needs it to:
authentication and RBAC are on, and the controller-manager cascades owner
references, empties deleted namespaces and issues ServiceAccount tokens."""

from __future__ import annotations

import ssl
import uuid

import httpx

from tests.integration.conftest import Kubectl
from tests.waiting import wait_for


def test_admin_identity_and_version(kubectl: Kubectl) -> None:
    whoami = kubectl.run("auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}").stdout
    assert "system:masters" in whoami
    raw = kubectl.run("get", "--raw=/version").stdout
    assert '"gitVersion": "v1.' in raw


def test_anonymous_requests_are_refused(kubectl: Kubectl) -> None:
    ca = kubectl.cluster.state_dir / "pki" / "ca.crt"
    response = httpx.get(
        f"{kubectl.cluster.server}/api/v1/namespaces", verify=ssl.create_default_context(cafile=ca)
    )
    assert response.status_code == 401


def test_garbage_collector_follows_owner_references(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "configmap", "owner", "-n", namespace)
    owner_uid = kubectl.get_json("configmap", "owner", "-n", namespace)["metadata"]["uid"]
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
                ],
            },
            "stringData": {"k": "v"},
        },
        namespace=namespace,
    )
    kubectl.run("delete", "configmap", "owner", "-n", namespace)
    wait_for(
        lambda: kubectl.run("get", "secret", "owned", "-n", namespace, check=False).returncode != 0,
        what="the owned Secret to be garbage-collected",
    )


def test_namespace_deletion_completes(kubectl: Kubectl) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    kubectl.run("create", "configmap", "content", "-n", name)
    kubectl.run("delete", "namespace", name, "--wait=false")
    wait_for(
        lambda: kubectl.run("get", "namespace", name, check=False).returncode != 0,
        what=f"namespace {name} to be deleted",
    )


def test_service_accounts_and_tokens(kubectl: Kubectl, namespace: str) -> None:
    wait_for(
        lambda: kubectl.run("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0,
        what="the default ServiceAccount",
    )
    wait_for(
        lambda: (
            kubectl.run("get", "configmap", "kube-root-ca.crt", "-n", namespace, check=False).returncode == 0
        ),
        what="the kube-root-ca.crt ConfigMap",
    )
    token = kubectl.run("create", "token", "default", "-n", namespace).stdout.strip()
    as_sa = [
        "--token",
        token,
        "--kubeconfig=/dev/null",
        f"--server={kubectl.cluster.server}",
        "--insecure-skip-tls-verify",
    ]
    who = kubectl.run("auth", "whoami", *as_sa, "-o", "jsonpath={.status.userInfo.username}").stdout
    assert who == f"system:serviceaccount:{namespace}:default"
    # RBAC is on: a fresh ServiceAccount may not read Secrets.
    can = kubectl.run("auth", "can-i", "get", "secrets", "-n", namespace, *as_sa, check=False)
    assert can.stdout.strip() == "no"

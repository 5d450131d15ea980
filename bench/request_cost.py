"""What each Kubernetes request of a new connection's first pass costs the API server and etcd.

A fleet's first pass is bound by the API server's CPU on a small machine (``bench/fleet.py``), so
this measures its requests one kind at a time. It starts the local control plane (see
``bench/_harness.py``) with the CRD as generated, or, with ``--granular-status``, with the
status tracked field by field for server-side apply (the CRD before the status was made
atomic), creates N ProcessorConnections shaped like the fleet bench's, and makes each request
of a first pass N times, 8 at a time, with the admin credentials:

- create (a POST, as the request to compare the others with);
- the finalizer merge patch (procon's), the signing Secret's read while absent (404), its
  write-ahead create and its publish patch, the status merge patch of a Ready connection, the
  event;
- a read of the connection from etcd (no resourceVersion), and the read procon makes, not older
  than a version it has seen (from the API server's watch cache).

For each it prints the CPU time the kube-apiserver and etcd processes spent (from /proc) per
request, and the stored size of a Ready connection. Figures from one run differ by about 10 %
from the next on a quiet machine; compare runs side by side.

With ``--finalizer-policy`` the chart's MutatingAdmissionPolicy (``finalizerPolicy``, Kubernetes
1.36+) is in force, so each create carries procon's finalizer from the start: compare its cost
with the create and the finalizer patch without it.

Usage: python bench/request_cost.py [--requests 1500] [--granular-status] [--finalizer-policy]
[--state-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import await_finalizer_policy, bench_cluster, cpu_seconds, kubectl, server_pids  # noqa: E402
from kubernetes_asyncio import client, config  # noqa: E402
from tests.integration.operator_harness import ANALYTICS_PERMISSIONS  # noqa: E402

from procon.api.crd import crd_yaml  # noqa: E402
from procon.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION  # noqa: E402
from procon.dev import cluster as control_plane  # noqa: E402
from procon.k8s.kube import discard, raw_json  # noqa: E402

CONCURRENCY = 8
STAMP = "2026-12-02T00:00:00Z"


def spec(i: int) -> dict[str, Any]:
    return {
        "processor": "stripe",
        "mode": "test",
        "credentialsSecretRef": {"name": f"acct-{i // 10:05d}"},
        "requiredPermissions": ANALYTICS_PERMISSIONS,
        "webhook": {
            "url": f"https://hooks.example.com/fleet/c-{i:05d}",
            "events": ["charge.succeeded", "payout.paid"],
            "signingSecretRef": {"name": f"c-{i:05d}-webhook"},
        },
    }


def ready_status() -> dict[str, Any]:
    """A Ready connection's status, as procon writes it."""
    message = "webhook we_Mqm9TrmMWbQ9u21wjThmLPn7 delivers 2 event types"
    conditions = [
        ("Ready", "True", "Ready", message),
        ("Reconciling", "False", "ReconcileSucceeded", ""),
        ("Stalled", "False", "NotStalled", ""),
        ("CredentialsValid", "True", "CredentialsVerified", "valid test-mode credentials"),
        ("PermissionsValid", "True", "PermissionsGranted", "every required permission is held"),
        ("WebhookReady", "True", "EndpointReady", message),
    ]
    return {
        "observedGeneration": 1,
        "account": {"id": "acct_1Fzk7Z6STSn78k", "mode": "test"},
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": text,
                "observedGeneration": 1,
                "lastTransitionTime": STAMP,
            }
            for kind, status, reason, text in conditions
        ],
        "missingPermissions": [],
        "verifiedCredentials": {
            "generation": 1,
            "secretResourceVersion": "225",
            "secretUid": "591ea756-c4f6-42cf-883a-035faaacc914",
            "verifiedAt": STAMP,
        },
        "webhook": {
            "id": "we_Mqm9TrmMWbQ9u21wjThmLPn7",
            "url": "https://hooks.example.com/fleet/c",
            "status": "enabled",
            "events": ["charge.succeeded", "payout.paid"],
        },
    }


def granular_status_crd() -> str:
    """The CRD with the status tracked field by field for server-side apply, as before it was atomic."""
    docs = list(yaml.safe_load_all(crd_yaml()))
    for version in docs[0]["spec"]["versions"]:
        version["schema"]["openAPIV3Schema"]["properties"]["status"].pop("x-kubernetes-map-type", None)
    return yaml.safe_dump_all(docs)


def install_finalizer_policy(running: control_plane.Cluster) -> str:
    """The chart's finalizer policy (cluster-wide, as `helm install` renders it on 1.36+), in force;
    returns its manifests, to delete it after."""
    rendered = subprocess.run(
        [
            "helm",
            "template",
            "cost",
            str(ROOT / "charts" / "procon"),
            "-n",
            "procon-system",
            "--kube-version=1.36.0",
            "--api-versions=admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
            "--show-only=templates/finalizer-policy.yaml",
        ],
        env=running.env(),
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    kubectl(running, "apply", "-f", "-", stdin=rendered)
    await_finalizer_policy(running, "default")
    return rendered


async def measure(running: control_plane.Cluster, requests: int, label: str) -> None:
    await config.load_kube_config(str(running.kubeconfig))
    async with client.ApiClient() as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        namespace = f"cost-{int(time.time())}"
        new_namespace: Any = {"metadata": {"name": namespace}}
        await core.create_namespace(new_namespace)
        pids = server_pids(running.state_dir)
        versions: dict[int, str] = {}
        merge: dict[str, Any] = {"_content_type": "application/merge-patch+json", "_preload_content": False}
        status = {"status": ready_status()}

        async def create(i: int) -> None:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "metadata": {"name": f"c-{i:05d}"},
                "spec": spec(i),
            }
            await discard(
                await custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
                )
            )

        async def finalizer(i: int) -> None:
            patch = {"metadata": {"finalizers": ["procon.dev/finalizer"]}}
            await discard(
                await custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, f"c-{i:05d}", patch, **merge
                )
            )

        async def absent_secret(i: int) -> None:
            try:
                await discard(
                    await core.read_namespaced_secret(f"c-{i:05d}-webhook", namespace, _preload_content=False)
                )
            except client.ApiException as error:
                if error.status != 404:
                    raise
            else:
                raise AssertionError("the signing Secret exists before its create")

        async def write_ahead(i: int) -> None:
            body: Any = {
                "metadata": {
                    "name": f"c-{i:05d}-webhook",
                    "labels": {"app.kubernetes.io/managed-by": "procon"},
                },
                "data": {"pendingCreate": "eyJrZXkiOiAiayIsICJwYXJhbXMiOiAicCJ9"},
            }
            await discard(await core.create_namespaced_secret(namespace, body, _preload_content=False))

        async def publish(i: int) -> None:
            patch = {"data": {"signingSecret": "d2hzZWNfZXhhbXBsZQ==", "pendingCreate": None}}
            await discard(await core.patch_namespaced_secret(f"c-{i:05d}-webhook", namespace, patch, **merge))

        async def write_status(i: int) -> None:
            response = await custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, f"c-{i:05d}", status, **merge
            )
            versions[i] = (await raw_json(response))["metadata"]["resourceVersion"]

        async def event(i: int) -> None:
            body: Any = {
                "metadata": {"generateName": f"c-{i:05d}."},
                "involvedObject": {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": f"c-{i:05d}",
                    "namespace": namespace,
                },
                "reason": "CreatedWebhookEndpoint",
                "message": f"created webhook we_x; its signing secret is in Secret c-{i:05d}-webhook",
                "type": "Normal",
                "source": {"component": "procon"},
            }
            await discard(await core.create_namespaced_event(namespace, body, _preload_content=False))

        async def read_from_etcd(i: int) -> None:
            await discard(
                await custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, f"c-{i:05d}", _preload_content=False
                )
            )

        async def read_from_cache(i: int) -> None:
            await discard(
                await api.call_api(
                    f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/c-{i:05d}",
                    "GET",
                    query_params=[("resourceVersion", versions[i])],
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                )
            )

        steps: list[tuple[str, Callable[[int], Awaitable[None]]]] = [
            ("create (POST)", create),
            ("finalizer merge patch", finalizer),
            ("signing Secret read, absent", absent_secret),
            ("signing Secret create", write_ahead),
            ("signing Secret patch", publish),
            ("status merge patch", write_status),
            ("event (POST)", event),
            ("connection read from etcd", read_from_etcd),
            ("connection read not older than", read_from_cache),
        ]
        print(f"{label}: {requests} requests of each kind, {CONCURRENCY} at a time")
        print(f"{'request':34} {'kube-apiserver':>16} {'etcd':>10}")
        for name, step in steps:
            before = {k: cpu_seconds(p) for k, p in pids.items()}
            limit = asyncio.Semaphore(CONCURRENCY)

            async def one(
                i: int, step: Callable[[int], Awaitable[None]] = step, limit: asyncio.Semaphore = limit
            ) -> None:
                async with limit:
                    await step(i)

            await asyncio.gather(*(one(i) for i in range(requests)))
            spent = {k: 1000 * (cpu_seconds(p) - before[k]) / requests for k, p in pids.items()}
            print(f"{name:34} {spent['kube-apiserver']:11.2f} ms {spent['etcd']:7.2f} ms")
        stored = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "c-00000")
        print(f"a Ready connection as stored, managedFields included: {len(json.dumps(stored))} bytes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--granular-status", action="store_true", help="the status tracked field by field")
    parser.add_argument(
        "--finalizer-policy", action="store_true", help="the chart's finalizer policy in force on creates"
    )
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    with bench_cluster(args.state_dir, prefix="procon-cost-") as running:
        label = "the CRD as generated (status atomic)"
        if args.granular_status:
            subprocess.run(
                [
                    "kubectl",
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager=procon-dev",
                    "-f",
                    "-",
                ],
                input=granular_status_crd(),
                text=True,
                env=running.env(),
                check=True,
                capture_output=True,
            )
            label = "the CRD with the status tracked field by field"
        policy = ""
        if args.finalizer_policy:
            policy = install_finalizer_policy(running)
            label += ", the chart's finalizer policy in force"
        try:
            asyncio.run(measure(running, args.requests, label))
        finally:
            if policy:  # a control plane reused with --state-dir outlives the run
                subprocess.run(
                    ["kubectl", "delete", "--ignore-not-found", "-f", "-"],
                    input=policy,
                    text=True,
                    env=running.env(),
                    check=False,
                    capture_output=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

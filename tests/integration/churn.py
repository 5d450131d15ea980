"""Create and delete connections in bulk, along every path by which a connection goes.

Shared by the memory test (``test_connection_lifecycle.py``) and the
memory bench (``bench/lifecycle_memory.py``): both ask whether what the
operator keeps about a connection goes with it.
"""

from __future__ import annotations

import uuid
from typing import Any

from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import ANALYTICS_PERMISSIONS, StripeAccount, connection, key_secret
from tests.waiting import wait_for

# How each connection of a batch goes: deleted as it is; paused, then deleted;
# with deletionPolicy Orphan; with its namespace (whose deletion also takes
# the credentials Secret, in no set order).
PATHS = ("deleted", "paused", "orphaned", "namespace")
PAUSED = "procon.dev/paused"


def _batch(
    emulator: StripeEmulator, namespace: str, size: int
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Manifests for ``size`` connections, each with an account and key of its own; name -> path."""
    docs: list[dict[str, Any]] = []
    paths: dict[str, str] = {}
    for index in range(size):
        name = f"c{index}"
        path = PATHS[index % len(PATHS)]
        paths[name] = path
        extra: dict[str, Any] = {"deletionPolicy": "Orphan"} if path == "orphaned" else {}
        body = connection(name, url=f"https://hooks.example.com/{namespace}/{name}", **extra)
        docs += [key_secret(name, StripeAccount(emulator).key(ANALYTICS_PERMISSIONS)), body]
    return docs, paths


def _all_ready(kubectl: Kubectl, namespace: str, count: int) -> bool:
    items = kubectl.get_json("pconn", "-n", namespace)["items"]
    ready = [
        item
        for item in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
    ]
    return len(ready) == count


def churn(kubectl: Kubectl, emulator: StripeEmulator, connections: int, *, batch: int = 20) -> None:
    """Create ``connections`` connections, ``batch`` at a time in a namespace of their own; wait for
    each batch to be Ready; then make them go, a quarter along each of :data:`PATHS`."""
    made = 0
    while made < connections:
        size = min(batch, connections - made)
        namespace = f"churn-{uuid.uuid4().hex[:10]}"
        kubectl.run("create", "namespace", namespace)
        docs, paths = _batch(emulator, namespace, size)
        kubectl.apply(docs, namespace=namespace)
        wait_for(
            lambda namespace=namespace, size=size: _all_ready(kubectl, namespace, size),
            timeout=60 + size,
            interval=0.5,
            what=f"{size} connections in {namespace} to be Ready",
        )
        paused = [name for name, path in paths.items() if path == "paused"]
        if paused:
            kubectl.run("annotate", "-n", namespace, "pconn", *paused, f"{PAUSED}=true")
        one_by_one = [name for name, path in paths.items() if path != "namespace"]
        if one_by_one:
            kubectl.run("delete", "-n", namespace, "pconn", *one_by_one, "--wait=true", "--timeout=120s")
        kubectl.run("delete", "namespace", namespace, "--wait=true", "--timeout=120s")
        made += size

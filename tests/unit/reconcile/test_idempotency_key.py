"""Create keys are deterministic: a retry reuses its key, a new situation gets a new one."""

from __future__ import annotations

from typing import Any

from procon.api.v1alpha1 import ProcessorConnection
from procon.processors.base import DesiredWebhook
from procon.reconcile.ports import Connection
from procon.reconcile.reconciler import idempotency_key

SPEC = {
    "processor": "stripe",
    "mode": "test",
    "credentialsSecretRef": {"name": "k"},
    "webhook": {"url": "https://h.example.com", "events": ["*"], "signingSecretRef": {"name": "s"}},
}


def conn(status: dict[str, Any] | None = None, uid: str = "uid-1") -> Connection:
    return Connection(
        model=ProcessorConnection.model_validate({"spec": SPEC}),
        namespace="ns",
        name="n",
        uid=uid,
        generation=1,
        resource_version="1",
        status=status or {},
    )


DESIRED = DesiredWebhook(url="https://h.example.com", events=("*",), description=None, metadata={"a": "b"})


def test_same_inputs_same_key() -> None:
    assert idempotency_key(conn(), DESIRED) == idempotency_key(conn(), DESIRED)
    assert len(idempotency_key(conn(), DESIRED)) <= 255  # Stripe's limit


def test_new_situations_get_new_keys() -> None:
    base = idempotency_key(conn(), DESIRED)
    assert idempotency_key(conn(uid="uid-2"), DESIRED) != base
    assert idempotency_key(conn({"webhook": {"id": "we_1"}}), DESIRED) != base
    changed = DesiredWebhook(
        url="https://other.example.com", events=("*",), description=None, metadata={"a": "b"}
    )
    assert idempotency_key(conn(), changed) != base

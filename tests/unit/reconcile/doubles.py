"""In-memory stand-ins for the reconciler's ports: a KubePort and a Stripe-like driver.

The driver models what matters for crash safety: webhooks on an account, the
signing secret returned once, and Stripe's idempotency layer (the first answer
saved per key, a success or a 500, and replayed; docs/processors/stripe.md, "Idempotency").
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from procon.api.v1alpha1 import Mode, ProcessorConnection
from procon.processors.base import (
    Account,
    CreatedWebhook,
    Credentials,
    DesiredWebhook,
    IdempotencyKeySpent,
    NotFound,
    ObservedWebhook,
    PermissionReport,
    SigningSecretSource,
    Target,
    TransientProcessorError,
    WebhookChanges,
)
from procon.reconcile.ports import (
    Connection,
    CredentialsSecret,
    EventType,
    PendingCreate,
    PublishedSecret,
    StaleObject,
)

SPEC: dict[str, Any] = {
    "processor": "stripe",
    "mode": "test",
    "credentialsSecretRef": {"name": "shop-key"},
    "requiredPermissions": ["rak_webhook_write"],
    "webhook": {
        "url": "https://hooks.example.com/a",
        "events": ["charge.succeeded"],
        "signingSecretRef": {"name": "shop-webhook"},
    },
}


class Crash(BaseException):
    """The operator died here: nothing after it runs, not even its error handling."""


@dataclass
class MemoryKube:
    """KubePort in memory: one namespace, objects as plain dicts."""

    spec: dict[str, Any] = field(default_factory=lambda: {**SPEC, "webhook": dict(SPEC["webhook"])})
    annotations: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    generation: int = 1
    version: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    resource_version: str = "0"
    secrets: dict[str, dict[str, str]] = field(default_factory=lambda: {"shop-key": {"apiKey": "sk_test_1"}})
    published: dict[str, str | None] | None = None  # webhook id, secret
    pending: PendingCreate | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    # Raise Crash at the next publish of a webhook (not the write-ahead of a key).
    crash_on_publish: int = 0

    def _bump(self) -> None:
        self.resource_version = str(next(self.version))

    def set_spec(self, **webhook: Any) -> None:
        self.spec["webhook"].update(webhook)
        self.generation += 1
        self._bump()

    async def get_connection(self, namespace: str, name: str) -> Connection | None:
        return Connection(
            model=ProcessorConnection.model_validate({"spec": self.spec}),
            namespace="ns",
            name="shop",
            uid="uid-1",
            generation=self.generation,
            resource_version=self.resource_version,
            annotations=dict(self.annotations),
            status=dict(self.status),
        )

    async def read_credentials(self, namespace: str, name: str) -> CredentialsSecret | None:
        data = self.secrets.get(name)
        return CredentialsSecret(opted_in=True, data=data) if data is not None else None

    async def read_published(self, connection: Connection) -> PublishedSecret | None:
        if self.published is None and self.pending is None:
            return None
        published = self.published or {"id": None, "secret": None}
        return PublishedSecret(published["id"], published["secret"], pending=self.pending)

    async def publish(self, connection: Connection, webhook_id: str, signing_secret: str) -> None:
        if self.crash_on_publish:
            self.crash_on_publish -= 1
            raise Crash("publish")
        self.published = {"id": webhook_id, "secret": signing_secret}
        self.pending = None

    async def record_pending(self, connection: Connection, pending: PendingCreate | None) -> None:
        self.pending = pending

    async def release_published(self, connection: Connection) -> bool:
        return self.published is not None or self.pending is not None

    async def set_annotations(
        self, connection: Connection, annotations: Mapping[str, str | None]
    ) -> Connection:
        if connection.resource_version != self.resource_version:
            raise StaleObject(connection.name)
        for key, value in annotations.items():
            if value is None:
                self.annotations.pop(key, None)
            else:
                self.annotations[key] = value
        self._bump()
        fresh = await self.get_connection("ns", "shop")
        assert fresh is not None
        return fresh

    async def write_status(self, connection: Connection, status: Mapping[str, Any]) -> Connection:
        self.status.update(status)
        return replace(connection, status=dict(self.status))

    async def post_event(self, connection: Connection, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)


CreateFault = Literal["saved_error", "lost", "unsaved_error"]


@dataclass
class FakeStripe:
    """A Stripe-like driver: the processor chooses the secret and shows it once."""

    signing_secret_source: SigningSecretSource = "processor"
    webhooks: dict[str, tuple[ObservedWebhook, str]] = field(default_factory=dict)
    saved: dict[str, CreatedWebhook | None] = field(default_factory=dict)  # None: a saved 500
    # What the next creates do (one entry used per create call).
    create_faults: list[CreateFault] = field(default_factory=list)
    keys_used: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        return Credentials({"apiKey": data["apiKey"]})

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        return tuple(sorted(events))

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        return Account("acct_1", Mode.TEST)

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        return PermissionReport(granted=tuple(required))

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        self.calls.append("list")
        return [w for w, _ in self.webhooks.values()]

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        self.calls.append("create")
        self.keys_used.append(idempotency_key)
        if idempotency_key in self.saved:
            answer = self.saved[idempotency_key]
            if answer is None:
                raise IdempotencyKeySpent("replayed 500")
            return replace(answer, replayed=True)
        fault = self.create_faults.pop(0) if self.create_faults else None
        if fault == "unsaved_error":
            raise TransientProcessorError("Stripe answered 500 before it began")
        webhook = ObservedWebhook(
            id=f"we_{next(self.ids)}",
            url=desired.url,
            events=desired.events,
            description=desired.description,
            enabled=True,
            metadata=dict(desired.metadata),
            api_version=desired.api_version,
        )
        secret = f"whsec_{secrets.token_hex(8)}"
        self.webhooks[webhook.id] = (webhook, secret)
        created = CreatedWebhook(webhook, secret, replayed=False)
        if fault == "saved_error":
            self.saved[idempotency_key] = None
            # The SDK retries a 500 with the same key and receives the saved one, marked replayed.
            raise IdempotencyKeySpent("replayed 500")
        self.saved[idempotency_key] = created
        if fault == "lost":
            raise TransientProcessorError("the answer was lost")
        return created

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        self.calls.append("update")
        if webhook_id not in self.webhooks:
            raise NotFound(webhook_id)
        webhook, secret = self.webhooks[webhook_id]
        if changes.events is not None:
            webhook = replace(webhook, events=changes.events)
        if changes.description is not None:
            webhook = replace(webhook, description=changes.description or None)
        self.webhooks[webhook_id] = (webhook, secret)
        return webhook

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        self.calls.append("delete")
        if self.webhooks.pop(webhook_id, None) is None:
            raise NotFound(webhook_id)

    def forget(self, credentials: Credentials, target: Target) -> None:
        return None

    def cached_entries(self) -> int:
        return 0

    def owned(self) -> list[str]:
        return sorted(self.webhooks)

    def secret_of(self, webhook_id: str) -> str:
        return self.webhooks[webhook_id][1]

"""In-memory stand-ins for the reconciler's ports: a KubePort and a driver of a made-up processor.

The driver is no real processor's: its webhooks have a payload ``format`` the
processor cannot change in place (so the driver's comparison, not the
reconciler, decides when to recreate), either side may choose the signing
secret, and it models what matters for crash safety: webhooks on an account,
a secret returned once, and an idempotency layer (the first answer saved per
key, a success or a 500, and replayed, as processors with idempotency keys
do; docs/processors/stripe.md, "Idempotency"). That the reconciler runs on it
unchanged proves the contract of :mod:`procon.processors.base`.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from procon.api.v1alpha1 import FINALIZER, Mode, ProcessorConnection, ProcessorConnectionSpec
from procon.processors.base import (
    Account,
    Comparison,
    CreatedWebhook,
    Credentials,
    CredentialsRejected,
    DesiredWebhook,
    IdempotencyKeySpent,
    NotFound,
    ObservedWebhook,
    PermissionDenied,
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

# The spec only validates with a processor the registry knows; the name is only the key under
# which the reconciler finds the driver, and the tests put the neutral fake there.
PROCESSOR = "stripe"

SPEC: dict[str, Any] = {
    "processor": PROCESSOR,
    "mode": "test",
    "credentialsSecretRef": {"name": "shop-key"},
    "requiredPermissions": ["hooks.write"],
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
    secrets: dict[str, dict[str, str]] = field(default_factory=lambda: {"shop-key": {"token": "fake-key-1"}})
    published: dict[str, str | None] | None = None  # webhook id, secret
    pending: PendingCreate | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    # Raise Crash at the next publish of a webhook (not the write-ahead of a key).
    crash_on_publish: int = 0
    released: bool = False
    deleting: bool = False
    # As if an earlier pass had added procon's finalizer; a new connection has none.
    finalizers: list[str] = field(default_factory=lambda: [FINALIZER])
    finalizer_writes: list[str] = field(default_factory=list)  # "hold" or "release", in order
    # The signing Secret lost procon's label: its watch knows it no more (see Kube.read_published).
    hidden_from_watch: bool = False
    published_reads: list[bool] = field(default_factory=list)  # each read's ``confirm``
    connection_reads: list[bool] = field(default_factory=list)  # each read's ``latest``
    stale_at_record_pending: int = 0  # raise StaleObject at that many record_pending calls
    status_writes: list[dict[str, Any]] = field(default_factory=list)
    secret_versions: dict[str, int] = field(default_factory=dict)
    # The connection's name and UID (a fleet of them: one MemoryKube each, see FleetKube).
    name: str = "shop"
    uid: str = "uid-1"

    def _bump(self) -> None:
        self.resource_version = str(next(self.version))

    def set_spec(self, **webhook: Any) -> None:
        self.spec["webhook"].update(webhook)
        self.generation += 1
        self._bump()

    async def get_connection(self, namespace: str, name: str, *, latest: bool = False) -> Connection | None:
        self.connection_reads.append(latest)
        return Connection(
            model=ProcessorConnection.model_validate({"spec": self.spec}),
            namespace="ns",
            name=self.name,
            uid=self.uid,
            generation=self.generation,
            resource_version=self.resource_version,
            annotations=dict(self.annotations),
            status=dict(self.status),
            deleting=self.deleting,
            finalizers=tuple(self.finalizers),
        )

    async def read_credentials(self, namespace: str, name: str) -> CredentialsSecret | None:
        data = self.secrets.get(name)
        if data is None:
            return None
        version = str(self.secret_versions.get(name, 1))
        return CredentialsSecret(opted_in=True, data=data, uid=f"uid-{name}", resource_version=version)

    def change_secret(self, name: str, data: dict[str, str]) -> None:
        """Replace a Secret's data, as an update would: its resourceVersion moves."""
        self.secrets[name] = data
        self.secret_versions[name] = self.secret_versions.get(name, 1) + 1

    async def read_published(
        self, connection: Connection, *, confirm: bool = False
    ) -> PublishedSecret | None:
        self.published_reads.append(confirm)
        if self.hidden_from_watch and not confirm:
            return None  # the watch of procon's Secrets does not see it (its label was removed)
        if self.published is None and self.pending is None:
            return None
        published = self.published or {"id": None, "secret": None}
        return PublishedSecret(published["id"], published["secret"], pending=self.pending)

    async def publish(self, connection: Connection, webhook_id: str, signing_secret: str) -> None:
        if self.crash_on_publish and webhook_id:
            self.crash_on_publish -= 1
            raise Crash("publish")
        self.published = {"id": webhook_id, "secret": signing_secret}
        self.pending = None

    async def record_pending(self, connection: Connection, pending: PendingCreate | None) -> None:
        if self.stale_at_record_pending:
            # As Kube does when a create finds a Secret its watch took for absent.
            self.stale_at_record_pending -= 1
            raise StaleObject(connection.name)
        self.pending = pending

    async def release_published(self, connection: Connection) -> bool:
        self.released = self.published is not None or self.pending is not None
        return self.released

    async def _patch_metadata(self, connection: Connection, change: Callable[[], None]) -> Connection:
        """A write of the metadata as the API server makes it (procon's carry the resourceVersion):
        refused unless made at the current version, then a new version."""
        if connection.resource_version != self.resource_version:
            raise StaleObject(connection.name)
        change()
        self._bump()
        fresh = await self.get_connection("ns", self.name)
        assert fresh is not None
        return fresh

    async def set_annotations(
        self, connection: Connection, annotations: Mapping[str, str | None]
    ) -> Connection:
        def annotate() -> None:
            for key, value in annotations.items():
                if value is None:
                    self.annotations.pop(key, None)
                else:
                    self.annotations[key] = value

        return await self._patch_metadata(connection, annotate)

    async def hold(self, connection: Connection) -> Connection:
        def add() -> None:
            self.finalizer_writes.append("hold")
            self.finalizers.append(FINALIZER)

        return await self._patch_metadata(connection, add)

    async def release(self, connection: Connection) -> None:
        def remove() -> None:
            self.finalizer_writes.append("release")
            self.finalizers.remove(FINALIZER)

        await self._patch_metadata(connection, remove)

    async def write_status(self, connection: Connection, status: Mapping[str, Any]) -> Connection:
        self.status_writes.append(dict(status))
        self.status.update(status)
        return replace(connection, status=dict(self.status))

    async def post_event(self, connection: Connection, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


@dataclass
class FleetKube:
    """KubePort over many connections in one namespace, each a :class:`MemoryKube`, all using one
    credentials Secret (one key to one account)."""

    connections: dict[str, MemoryKube] = field(default_factory=dict)

    def add(self, name: str) -> MemoryKube:
        kube = MemoryKube(name=name, uid=f"uid-{name}")
        kube.spec["webhook"].update(url=f"https://hooks.example.com/{name}", signingSecretRef={"name": name})
        self.connections[name] = kube
        return kube

    async def get_connection(self, namespace: str, name: str, *, latest: bool = False) -> Connection | None:
        return await self.connections[name].get_connection(namespace, name)

    async def read_credentials(self, namespace: str, name: str) -> CredentialsSecret | None:
        return await next(iter(self.connections.values())).read_credentials(namespace, name)

    async def read_published(
        self, connection: Connection, *, confirm: bool = False
    ) -> PublishedSecret | None:
        return await self.connections[connection.name].read_published(connection, confirm=confirm)

    async def publish(self, connection: Connection, webhook_id: str, signing_secret: str) -> None:
        await self.connections[connection.name].publish(connection, webhook_id, signing_secret)

    async def record_pending(self, connection: Connection, pending: PendingCreate | None) -> None:
        await self.connections[connection.name].record_pending(connection, pending)

    async def release_published(self, connection: Connection) -> bool:
        return await self.connections[connection.name].release_published(connection)

    async def set_annotations(
        self, connection: Connection, annotations: Mapping[str, str | None]
    ) -> Connection:
        return await self.connections[connection.name].set_annotations(connection, annotations)

    async def hold(self, connection: Connection) -> Connection:
        return await self.connections[connection.name].hold(connection)

    async def release(self, connection: Connection) -> None:
        await self.connections[connection.name].release(connection)

    async def write_status(self, connection: Connection, status: Mapping[str, Any]) -> Connection:
        return await self.connections[connection.name].write_status(connection, status)

    async def post_event(self, connection: Connection, type_: EventType, reason: str, message: str) -> None:
        await self.connections[connection.name].post_event(connection, type_, reason, message)

    def writes(self) -> int:
        """Kubernetes writes over the fleet: status patches, events, Secret writes."""
        return sum(len(k.status_writes) + len(k.events) for k in self.connections.values())


CreateFault = Literal["saved_error", "lost", "unsaved_error"]

KEY_FIELD = "token"
# The permission the fake's webhook calls need; a listing without it is refused naming it.
WEBHOOK_PERMISSION = "hooks.write"


@dataclass(frozen=True)
class FakeDesired(DesiredWebhook):
    """A webhook of the made-up processor: its payload format cannot change in place."""

    format: str = "v1"
    enabled: bool = True


@dataclass(frozen=True)
class FakeWebhook(ObservedWebhook):
    format: str = "v1"
    enabled: bool = True


@dataclass(frozen=True)
class FakeChanges(WebhookChanges):
    events: tuple[str, ...] | None = None
    enabled: bool | None = None
    metadata: Mapping[str, str] | None = None

    def describe(self) -> list[str]:
        parts = ["events"] if self.events is not None else []
        parts.extend(super().describe())
        if self.enabled is not None:
            parts.append("enabled")
        if self.metadata is not None:
            parts.append("ownership metadata")
        return parts


@dataclass
class FakeProcessor:
    """A driver of a made-up processor, every webhook in memory.

    ``signing_secret_source`` says who chooses the key: "processor" (returned once at create,
    under an idempotency layer) or "operator" (procon's key, set on create and by update).
    ``format`` is the driver's configured payload format, part of every desired webhook.
    """

    signing_secret_source: SigningSecretSource = "processor"
    permission_noun: str = "grant"
    format: str = "v1"
    valid_keys: set[str] = field(default_factory=lambda: {"fake-key-1"})
    # What the key holds; names outside ``known`` are not the processor's.
    granted: set[str] = field(default_factory=lambda: {WEBHOOK_PERMISSION, "reports.read"})
    known: set[str] = field(default_factory=lambda: {WEBHOOK_PERMISSION, "reports.read", "payouts.read"})
    webhooks: dict[str, tuple[FakeWebhook, str]] = field(default_factory=dict)
    saved: dict[str, CreatedWebhook | None] = field(default_factory=dict)  # None: a saved 500
    # What the next creates do (one entry used per create call).
    create_faults: list[CreateFault] = field(default_factory=list)
    keys_used: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # webhook calls
    checks: list[str] = field(default_factory=list)  # verifications and permission checks
    forgotten: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- pure ---------------------------------------------------------------------------

    def target(self, spec: ProcessorConnectionSpec) -> Target:
        return Target(mode=spec.mode)

    def desired_webhook(
        self, spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]
    ) -> DesiredWebhook:
        return FakeDesired(
            url=spec.webhook.url, events=tuple(sorted(events)), metadata=dict(tag), format=self.format
        )

    def compare(self, observed: ObservedWebhook, desired: DesiredWebhook) -> Comparison:
        assert isinstance(observed, FakeWebhook)
        assert isinstance(desired, FakeDesired)
        if observed.url != desired.url:
            return Comparison(recreate_because="its URL changed")
        if observed.format != desired.format:
            return Comparison(recreate_because="its payload format changed")
        changes = FakeChanges(
            events=desired.events if tuple(sorted(observed.events)) != desired.events else None,
            enabled=True if not observed.enabled else None,
            metadata=dict(desired.metadata)
            if any(observed.metadata.get(k) != v for k, v in desired.metadata.items())
            else None,
        )
        return Comparison(changes=changes if changes.describe() else None)

    def required_permission(self, denied: str | None, required: Sequence[str]) -> str | None:
        return denied

    def missing_permissions_advice(self, required: Sequence[str]) -> str | None:
        return "Ask the account's owner for them"

    # --- calls --------------------------------------------------------------------------

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        value = data.get(key or KEY_FIELD)
        if not value:
            raise CredentialsRejected("CredentialsKeyMissing", f"the Secret has no key {key or KEY_FIELD!r}")
        return Credentials({KEY_FIELD: value})

    def _check(self, credentials: Credentials) -> None:
        if credentials[KEY_FIELD] not in self.valid_keys:
            raise CredentialsRejected("CredentialsInvalid", "the processor does not know this key")

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        return tuple(sorted(events))

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        self.checks.append("verify")
        self._check(credentials)
        return Account("acct_1", Mode.TEST)

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        self.checks.append("permissions")
        self._check(credentials)
        return PermissionReport(
            missing=tuple(p for p in required if p in self.known and p not in self.granted),
            unknown=tuple(p for p in required if p not in self.known),
            granted=tuple(p for p in required if p in self.granted),
        )

    def _may_use_webhooks(self, credentials: Credentials) -> None:
        self._check(credentials)
        if WEBHOOK_PERMISSION not in self.granted:
            raise PermissionDenied(f"the key may not use webhooks ({WEBHOOK_PERMISSION})", WEBHOOK_PERMISSION)

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        self.calls.append("list")
        self._may_use_webhooks(credentials)
        return [w for w, _ in self.webhooks.values()]

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        self.calls.append("create")
        self._may_use_webhooks(credentials)
        assert isinstance(desired, FakeDesired)
        self.keys_used.append(idempotency_key)
        if idempotency_key in self.saved:
            answer = self.saved[idempotency_key]
            if answer is None:
                raise IdempotencyKeySpent("replayed 500")
            return replace(answer, replayed=True)
        fault = self.create_faults.pop(0) if self.create_faults else None
        if fault == "unsaved_error":
            raise TransientProcessorError("the processor answered 500 before it began")
        webhook = FakeWebhook(
            id=f"wh_{next(self.ids)}",
            url=desired.url,
            events=desired.events,
            metadata=dict(desired.metadata),
            format=desired.format,
        )
        if self.signing_secret_source == "operator":
            assert desired.signing_secret, "procon chooses the key: it must come with the create"
            secret = desired.signing_secret
        else:
            secret = f"whsec_{secrets.token_hex(8)}"
        self.webhooks[webhook.id] = (webhook, secret)
        created = CreatedWebhook(webhook, secret, replayed=False)
        if fault == "saved_error":
            self.saved[idempotency_key] = None
            # A client retries a 500 with the same key and receives the saved one, marked replayed.
            raise IdempotencyKeySpent("replayed 500")
        self.saved[idempotency_key] = created
        if fault == "lost":
            raise TransientProcessorError("the answer was lost")
        return created

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook:
        self.calls.append("update")
        self._may_use_webhooks(credentials)
        if webhook_id not in self.webhooks:
            raise NotFound(webhook_id)
        webhook, secret = self.webhooks[webhook_id]
        if isinstance(changes, FakeChanges):
            if changes.events is not None:
                webhook = replace(webhook, events=changes.events)
            if changes.enabled is not None:
                webhook = replace(webhook, enabled=changes.enabled, status="enabled")
            if changes.metadata is not None:
                webhook = replace(webhook, metadata=dict(changes.metadata))
        if changes.signing_secret is not None:
            assert self.signing_secret_source == "operator", "a processor-chosen secret is never set"
            secret = changes.signing_secret
        self.webhooks[webhook_id] = (webhook, secret)
        return webhook

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        self.calls.append("delete")
        self._may_use_webhooks(credentials)
        if self.webhooks.pop(webhook_id, None) is None:
            raise NotFound(webhook_id)

    def forget(self, credentials: Credentials, target: Target) -> None:
        self.forgotten += 1

    def cached_entries(self) -> int:
        return 0

    # --- for the tests ----------------------------------------------------------------

    def owned(self) -> list[str]:
        return sorted(self.webhooks)

    def secret_of(self, webhook_id: str) -> str:
        return self.webhooks[webhook_id][1]

    def add(self, webhook: FakeWebhook) -> None:
        """A webhook made outside procon (a person, another tool, another connection)."""
        self.webhooks[webhook.id] = (webhook, f"whsec_{secrets.token_hex(8)}")

    def tamper(self, webhook_id: str, **fields: Any) -> None:
        """Change a webhook outside procon."""
        webhook, secret = self.webhooks[webhook_id]
        self.webhooks[webhook_id] = (replace(webhook, **fields), secret)

"""What every processor driver offers the reconciler, and the errors it may raise.

The reconciler speaks only these types. A driver turns them into a
processor's API calls and turns the processor's answers back into them, so
the decision logic in :mod:`procon.reconcile` never sees an SDK object, an
HTTP status or a raw processor message.

Errors are split by what can help, because that decides the conditions:
:class:`TransientProcessorError` (retrying can help: Reconciling with
backoff) versus the others (only a change to the spec, the Secret or the
processor-side configuration can help: Stalled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from procon.api.v1alpha1 import Mode


class ProcessorError(Exception):
    """Base of every driver error. Messages are already redacted: safe for status, events and logs."""

    reason = "ProcessorError"


class TransientProcessorError(ProcessorError):
    """5xx, timeouts, dropped connections, rate limits: retrying later can help."""

    reason = "ProcessorUnavailable"


class IdempotencyKeySpent(TransientProcessorError):
    """A create's idempotency key answers only with a saved error: it is of no more use.

    The create may or may not have happened, and its result (for Stripe, the
    signing secret) cannot be had under this key. Retrying with the same key
    would get the same saved answer until the processor prunes the key, so the
    caller drops it, cleans up what the create may have left, and creates
    afresh under a new key (docs/processors/stripe.md, "Idempotency").
    """

    reason = "ProcessorUnavailable"


class MalformedResponse(TransientProcessorError):
    """An answer that is not the processor's: not JSON, cut short, too large, or without the fields promised.

    Transient because procon cannot tell a proxy's passing hiccup (an HTML
    error page, a connection cut mid-body) from a lasting fault, and nothing
    in the spec or the Secret can fix it: retrying with backoff is the only
    thing that can help, and the message says what came back.
    """

    reason = "MalformedResponse"


class CredentialsRejected(ProcessorError):
    """The credentials are unusable: invalid, expired, of the wrong mode or account."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDenied(ProcessorError):
    """A call was refused for a missing permission, named in ``permission`` when the processor says which."""

    reason = "InsufficientPermissions"

    def __init__(self, message: str, permission: str | None, account_id: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission
        # Processors name the account in the refusal; it identifies the key's
        # account even when reading the account is not permitted.
        self.account_id = account_id


class EndpointLimitReached(ProcessorError):
    """The account holds as many webhook endpoints as the processor allows."""

    reason = "EndpointLimitReached"


class RequestRejected(ProcessorError):
    """The processor refused a request as invalid (for a webhook: its URL, events or version)."""

    reason = "WebhookRejected"


class IdempotencyConflict(ProcessorError):
    """A replayed create no longer matches the request first sent under its idempotency key."""

    reason = "IdempotencyConflict"


class NotFound(ProcessorError):
    """The object is not (or no longer) at the processor."""

    reason = "NotFound"


@dataclass(frozen=True)
class Credentials:
    """Credential material from the Secret. ``repr`` never shows it."""

    values: Mapping[str, str] = field(repr=False)
    # The fields whose value had leading or trailing whitespace, removed (the
    # reconciler says so in an event): names only, never values.
    stripped: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> str:
        return self.values[key]


@dataclass(frozen=True)
class Account:
    """Who the credentials belong to, as verified with the processor."""

    id: str
    mode: Mode


@dataclass(frozen=True)
class PermissionReport:
    """The outcome of checking the required permissions against the credentials.

    ``unknown`` names are not permissions of the processor as procon knows them
    (a typo, another processor's name): never counted as held. ``unverifiable``
    ones exist but cannot be checked without side effects.
    """

    missing: tuple[str, ...] = ()
    unverifiable: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    granted: tuple[str, ...] = ()
    probes: int = 0


@dataclass(frozen=True)
class DesiredWebhook:
    """The webhook a connection wants, in processor-neutral terms.

    ``metadata`` is procon's ownership tag; each driver stores it its own way
    (Stripe: the endpoint's metadata; Checkout.com: the workflow's name).
    ``signing_secret`` is set only for processors where procon chooses the key.
    """

    url: str
    events: tuple[str, ...]
    description: str | None
    metadata: Mapping[str, str]
    api_version: str | None = None
    connect: bool = False
    entities: tuple[str, ...] = ()
    processing_channels: tuple[str, ...] = ()
    signing_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ObservedWebhook:
    """A webhook as the processor reports it."""

    id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    enabled: bool
    metadata: Mapping[str, str]
    api_version: str | None = None
    status: str = "enabled"
    entities: tuple[str, ...] = ()
    processing_channels: tuple[str, ...] = ()
    # When the processor created it (Unix seconds), where the processor says:
    # of two procon webhooks at one URL, the older one holds it.
    created: int | None = None
    # Processor-specific ids a driver needs to update parts of the webhook
    # (Checkout.com: the ids of the workflow's conditions and action).
    parts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreatedWebhook:
    """A webhook just created, with the signing secret the processor returned once."""

    webhook: ObservedWebhook
    signing_secret: str = field(repr=False)
    # Whether the processor says this answer is a replay of an earlier create under the same
    # idempotency key (True), a fresh create (False), or cannot tell (None).
    replayed: bool | None = None


@dataclass(frozen=True)
class WebhookChanges:
    """Fields to update in place. ``None`` means leave as is."""

    events: tuple[str, ...] | None = None
    description: str | None = None
    enabled: bool | None = None
    metadata: Mapping[str, str] | None = None
    entities: tuple[str, ...] | None = None
    processing_channels: tuple[str, ...] | None = None
    signing_secret: str | None = field(default=None, repr=False)

    def describe(self) -> list[str]:
        parts = []
        if self.events is not None:
            parts.append("events")
        if self.entities is not None:
            parts.append("entities")
        if self.processing_channels is not None:
            parts.append("processing channels")
        if self.signing_secret is not None:
            parts.append("signing key")
        if self.description is not None:
            parts.append("description")
        if self.enabled is not None:
            parts.append("enabled" if self.enabled else "disabled")
        if self.metadata is not None:
            parts.append("ownership metadata")
        return parts


@dataclass(frozen=True)
class Target:
    """Where on the processor a connection acts.

    The mode always; for Stripe, optionally a connected account; for
    Checkout.com, the account's client id (which selects its hosts) and the
    entities the connection is for.
    """

    mode: Mode
    connected_account: str | None = None
    client_id: str | None = None
    entities: tuple[str, ...] = ()


SigningSecretSource = Literal["processor", "operator"]


class ProcessorDriver(Protocol):
    """The operations the reconciler needs from a processor."""

    # Who chooses a webhook's signing secret: the processor returns it once at
    # creation (Stripe), or procon generates it and sends it (Checkout.com).
    signing_secret_source: SigningSecretSource

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        """Pick the credential fields from a Secret's data; ``key`` is the spec's explicit key.

        Raises :class:`CredentialsRejected` (reason ``CredentialsKeyMissing``) naming what is missing.
        """
        ...

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        """The spec's events as the processor's event ids (Checkout.com expands categories)."""
        ...

    async def verify(self, credentials: Credentials, target: Target) -> Account:
        """Check the credentials are valid and of ``target.mode``; return the account they belong to."""
        ...

    async def check_permissions(
        self, credentials: Credentials, target: Target, required: Sequence[str]
    ) -> PermissionReport:
        """Which of ``required`` the credentials hold, lack, or cannot be checked for."""
        ...

    async def list_webhooks(
        self, credentials: Credentials, target: Target, owner: Mapping[str, str] | None = None
    ) -> list[ObservedWebhook]:
        """Every webhook on the account, owned by procon or not.

        ``owner`` is the asking connection's tag: a driver that must fetch
        webhooks one by one may serve the others from a cache.
        """
        ...

    async def create_webhook(
        self, credentials: Credentials, target: Target, desired: DesiredWebhook, *, idempotency_key: str
    ) -> CreatedWebhook:
        """Create the webhook; a retry with the same key must not create a second one."""
        ...

    async def update_webhook(
        self, credentials: Credentials, target: Target, webhook_id: str, changes: WebhookChanges
    ) -> ObservedWebhook: ...

    async def delete_webhook(self, credentials: Credentials, target: Target, webhook_id: str) -> None:
        """Delete it; an already-deleted webhook raises :class:`NotFound`."""
        ...

    def forget(self, credentials: Credentials, target: Target) -> None:
        """Drop whatever is cached for these credentials and target (their connection is gone, or a
        refusal proved the cache stale): a cache must not outlive the connections that fill it."""
        ...

    def cached_entries(self) -> int:
        """How many entries the driver's caches hold (for the operator's own metrics)."""
        ...

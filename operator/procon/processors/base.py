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
from typing import TYPE_CHECKING, Any, Literal, Protocol

from procon.api.schema import Mode

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec


class ProcessorError(Exception):
    """Base of every driver error. Messages are already redacted: safe for status, events and logs."""

    reason = "ProcessorError"


class TransientProcessorError(ProcessorError):
    """5xx, timeouts, dropped connections, rate limits: retrying later can help."""

    reason = "ProcessorUnavailable"


class RateLimited(TransientProcessorError):
    """The processor refused for its rate limit (HTTP 429): the whole account waits, not only the caller.

    ``retry_after`` is the wait the answer asked for (its ``Retry-After``, capped), None when it
    named none. The layer that admits requests (procon.processors.calls) has paused the account
    already; the reconciler retries the connection with backoff like any transient error.
    """

    reason = "RateLimited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyKeySpent(TransientProcessorError):
    """A create's idempotency key answers only with a saved error: it is of no more use.

    The create may or may not have happened, and its result (where the
    processor returns it once, the signing secret) cannot be had under this key. Retrying with the same key
    would get the same saved answer until the processor prunes the key, so the
    caller drops it, cleans up what the create may have left, and creates
    afresh under a new key (the "Idempotency" section of a processor's docs/processors/ page).
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
class Target:
    """Where on the processor a connection acts: the mode always.

    A processor that needs more (an account to act on, a client id that selects
    its hosts) returns its own subclass from :meth:`ProcessorDriver.target`; the
    reconciler only hands it back.
    """

    mode: Mode


@dataclass(frozen=True)
class DesiredWebhook:
    """The webhook a connection wants, as the reconciler sees it.

    ``metadata`` is procon's ownership tag (plus whatever the processor adds to
    it); each driver stores it its own way (in the webhook's metadata, or
    encoded in its name where the processor keeps nothing else). ``signing_secret`` is set only for
    processors where procon chooses the key. A driver builds its own subclass
    (:meth:`ProcessorDriver.desired_webhook`) carrying the processor's fields;
    the reconciler and the planner read only these.
    """

    url: str
    events: tuple[str, ...]
    metadata: Mapping[str, str]
    signing_secret: str | None = field(default=None, repr=False, kw_only=True)

    def create_parameters(self) -> dict[str, Any]:
        """What a replayed create must match (hashed into the write-ahead record); no secret in it."""
        return {"url": self.url, "events": list(self.events), "metadata": dict(sorted(self.metadata.items()))}


@dataclass(frozen=True)
class ObservedWebhook:
    """A webhook as the processor reports it, as the reconciler sees it.

    ``metadata`` is the ownership tag as the driver decoded it (empty for a
    webhook procon did not tag); ``events`` and ``status`` are shown in the
    connection's status. A driver returns its own subclass carrying what it
    needs to compare and update; the reconciler and the planner read only these.
    """

    id: str
    url: str
    events: tuple[str, ...]
    metadata: Mapping[str, str]
    status: str = field(default="enabled", kw_only=True)
    # When the processor created it (Unix seconds), where the processor says:
    # of two procon webhooks at one URL, the older one holds it.
    created: int | None = field(default=None, kw_only=True)


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
    """What to update in place. A driver's subclass adds its fields; ``None`` means leave as is.

    ``signing_secret`` is the one change the reconciler itself asks for: a
    rotation, or adopting a webhook whose key procon chose. :meth:`describe`
    names the parts for events and condition messages, in a stable order.
    """

    signing_secret: str | None = field(default=None, repr=False, kw_only=True)

    def describe(self) -> list[str]:
        return ["signing key"] if self.signing_secret is not None else []


@dataclass(frozen=True)
class Comparison:
    """How an observed webhook stands against the desired one: the driver's answer.

    ``recreate_because`` says why it cannot serve without being recreated (a
    field the processor cannot change in place), in words for an event
    ("its URL changed"); ``None`` when it can. ``changes`` are what to update in
    place, ``None`` when nothing differs.
    """

    recreate_because: str | None = None
    changes: WebhookChanges | None = None


SigningSecretSource = Literal["processor", "operator"]


class ProcessorDriver(Protocol):
    """The operations the reconciler needs from a processor."""

    # Who chooses a webhook's signing secret: the processor returns it once at
    # creation ("processor"), or procon generates it and sends it ("operator").
    signing_secret_source: SigningSecretSource
    # What the processor calls what ``spec.requiredPermissions`` lists ("permission", "scope",
    # "role"), for messages.
    permission_noun: str

    # --- pure: what the spec means at this processor (no call is made) ------------------

    def target(self, spec: ProcessorConnectionSpec) -> Target:
        """Where the connection acts: the mode, and whatever ``spec.<processor>`` adds."""
        ...

    def desired_webhook(
        self, spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]
    ) -> DesiredWebhook:
        """The webhook ``spec`` asks for, tagged with the owning connection's ``tag``; ``events`` as
        :meth:`resolve_events` resolved them."""
        ...

    def compare(self, observed: ObservedWebhook, desired: DesiredWebhook) -> Comparison:
        """Whether ``observed`` (one of this driver's) can serve as ``desired``: recreate, update or keep."""
        ...

    def required_permission(self, denied: str | None, required: Sequence[str]) -> str | None:
        """The required permission a refusal naming ``denied`` is about (what to grant)."""
        ...

    def missing_permissions_advice(self, required: Sequence[str]) -> str | None:
        """What to add to the message naming missing permissions (a link to grant them, say)."""
        ...

    # --- calls -------------------------------------------------------------------------

    def credentials_from(self, data: Mapping[str, str], key: str | None) -> Credentials:
        """Pick the credential fields from a Secret's data; ``key`` is the spec's explicit key.

        Raises :class:`CredentialsRejected` (reason ``CredentialsKeyMissing``) naming what is missing.
        """
        ...

    async def resolve_events(
        self, credentials: Credentials, target: Target, events: Sequence[str]
    ) -> tuple[str, ...]:
        """The spec's events as the processor's event ids (a driver may expand categories)."""
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

        ``owner`` is the asking connection's tag, a hint only: the answer must not depend on it,
        for procon shares one listing among the connections on an account
        (procon.reconcile.accounts). A 429 raises :class:`RateLimited`; every HTTP request a
        driver sends goes through ``procon.processors.calls.admitted()`` (the account's rate,
        its pause after a 429, the bound on requests in flight).
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

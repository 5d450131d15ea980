"""What the reconciler needs from Kubernetes, as a protocol.

The reconciler calls these and nothing else, so it runs the same against the
real API (:mod:`procon.k8s.kube`) and against an in-memory double in unit
tests of the decision flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from procon.api.v1alpha1 import FINALIZER, ProcessorConnection

EventType = Literal["Normal", "Warning"]


class StaleObject(Exception):
    """The connection changed since it was read; the reconcile starts again from a fresh read."""


class SecretNotOwned(Exception):
    """The signing-secret Secret exists and was not created by this connection."""


@dataclass(frozen=True)
class Connection:
    """A ProcessorConnection as read, with the metadata the reconciler needs."""

    model: ProcessorConnection
    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)
    deleting: bool = False
    finalizers: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        """Whether procon's finalizer holds the connection: its clean-up runs before it goes."""
        return FINALIZER in self.finalizers

    @property
    def body(self) -> dict[str, Any]:
        """Enough of the object for an event's involvedObject."""
        return {
            "apiVersion": self.model.api_version,
            "kind": self.model.kind,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }


@dataclass(frozen=True)
class PendingCreate:
    """The write-ahead record of a webhook create whose result is not published yet.

    Kept in the signing Secret, beside what it will replace, so only those
    who may read the signing secret can see the key: anyone else holding a
    key to the same processor account could otherwise replay the create and
    receive its signing secret.
    """

    key: str = field(repr=False)  # the idempotency key the create is sent with
    params: str  # digest of the create's parameters: a replay must match them
    replaces: str | None = None  # the webhook the new one replaces, deleted once it is published
    rotation: str | None = None  # the rotation request the create carries out, if any


@dataclass(frozen=True)
class CredentialsSecret:
    """A credentials Secret as the reconciler may see it.

    ``data`` is filled only when the Secret opted in with the
    ``procon.dev/credentials: "true"`` label: the data of any other Secret is
    never handed to the reconciler (the adapter reads it filtered by that label).
    """

    opted_in: bool
    annotations: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Which Secret, and which version of it: a verification recorded for these (in the status)
    # holds until either changes. Never a digest of the data.
    uid: str = ""
    resource_version: str = ""


@dataclass(frozen=True)
class PublishedSecret:
    """What the signing-secret Secret holds."""

    webhook_id: str | None
    signing_secret: str | None = field(repr=False)
    pending: PendingCreate | None = None


class KubePort(Protocol):
    async def get_connection(self, namespace: str, name: str, *, latest: bool = False) -> Connection | None:
        """The connection (None when it does not exist), at least as new as any version of it this
        process has seen; ``latest``: as stored now, for a pass started over after a conflict."""
        ...

    async def read_credentials(self, namespace: str, name: str) -> CredentialsSecret | None:
        """A credentials Secret (its data only if it opted in), or None when it does not exist."""
        ...

    async def read_published(
        self, connection: Connection, *, confirm: bool = False
    ) -> PublishedSecret | None:
        """The published signing secret; raises :class:`SecretNotOwned` for someone else's Secret.

        None may rest on the watch's word that the Secret is not there (its watch sees only
        Secrets labelled as procon's, and one may lose the label), which is enough before a
        create, since a create fails on a Secret that exists. ``confirm`` reads the Secret
        whatever the watch says: before anything is decided on "nothing published" that a
        create would not undo, such as deleting a webhook of this connection.
        """
        ...

    async def publish(self, connection: Connection, webhook_id: str, signing_secret: str) -> None:
        """Create or update the signing-secret Secret, owned by and labelled for the connection.

        Clears the pending-create record in the same write: what it was for is now published.
        """
        ...

    async def record_pending(self, connection: Connection, pending: PendingCreate | None) -> None:
        """Write (None: remove) the pending-create record in the signing-secret Secret, creating
        the Secret if needed; what is published there is left as it is."""
        ...

    async def release_published(self, connection: Connection) -> bool:
        """Leave the signing-secret Secret behind when the connection goes (its owner reference
        removed, marked as orphaned); False when there is none. Raises :class:`SecretNotOwned`."""
        ...

    async def set_annotations(
        self, connection: Connection, annotations: Mapping[str, str | None]
    ) -> Connection:
        """Patch annotations (None removes one) conditionally on the resourceVersion; raises StaleObject."""
        ...

    async def hold(self, connection: Connection) -> Connection:
        """Add procon's finalizer, conditionally on the resourceVersion; returns the connection as
        written. Raises :class:`StaleObject` when the generation moved or a deletion began."""
        ...

    async def release(self, connection: Connection) -> None:
        """Remove procon's finalizer, conditionally on the resourceVersion (another controller's
        finalizers are kept). Raises :class:`StaleObject` when it keeps changing under us."""
        ...

    async def write_status(self, connection: Connection, status: Mapping[str, Any]) -> Connection:
        """Patch the status subresource; returns the connection as written (its new resourceVersion)."""
        ...

    async def post_event(
        self, connection: Connection, type_: EventType, reason: str, message: str
    ) -> None: ...

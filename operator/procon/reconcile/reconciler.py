"""One idempotent reconcile of a ProcessorConnection, and its clean-up on deletion.

Level-based: every run reads the connection, its Secret and the processor's
webhooks afresh, decides with the pure functions of this package, acts, and
writes the complete status. Running it twice in a row does nothing the
second time, so it is safe to trigger for any reason: a spec change, a
Secret change, the periodic drift check, a restart.

The create of a processor webhook is the one step a crash can split: the
processor returns the signing secret once, and a crash before it is
published would lose it. So, before the call, the idempotency key of the
create is recorded on the connection (written conditionally on the
resourceVersion, so a stale read never creates). After a crash the next run
replays the create under the same key, and the processor answers with the
original response, secret included. If the replay cannot help (the key
expired, the spec changed), the unpublished webhook is just another owned
webhook without a published secret, and the planner deletes it and creates
a fresh one. Either way the published secret belongs to the live webhook.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from procon import metrics
from procon.api.v1alpha1 import DeletionPolicy, ProcessorConnectionSpec
from procon.processors.base import (
    Account,
    CreatedWebhook,
    Credentials,
    CredentialsRejected,
    DesiredWebhook,
    EndpointLimitReached,
    IdempotencyConflict,
    NotFound,
    ObservedWebhook,
    PermissionDenied,
    PermissionReport,
    ProcessorDriver,
    ProcessorError,
    RequestRejected,
    Target,
    TransientProcessorError,
)
from procon.processors.stripe.permissions import dashboard_link
from procon.reconcile import conditions, credentials_access, webhook_plan
from procon.reconcile.conditions import Assessment, Verdict
from procon.reconcile.ownership import Owner, Relation, relation
from procon.reconcile.ports import Connection, KubePort, PublishedSecret, SecretNotOwned, StaleObject
from procon.redaction import redact, register_secret

logger = logging.getLogger(__name__)

PENDING_CREATE = "procon.dev/pending-create"
# "true": leave the connection and its webhook alone (no processor calls, no
# status writes); deleting it then leaves the webhook, as Orphan does.
PAUSED = "procon.dev/paused"
ROTATE_SIGNING_SECRET = "procon.dev/rotate-signing-secret"  # also a watch trigger in procon.k8s.kube


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended: the daemon picks its next wake-up from it."""

    state: str  # "ready" | "stalled" | "progressing" | "retrying" | "paused" | "gone"
    processor: str = "unknown"


class _Stalled(Exception):
    """Internal: stop here and report ``assessment``.

    Usually only a change outside the operator can help (``assessment.stalled``
    is set); a missing credentials Secret is the exception, waited for instead.
    """

    def __init__(self, assessment: Assessment, missing: Sequence[str] = ()) -> None:
        self.assessment = assessment
        self.missing = tuple(missing)


class Reconciler:
    """Reconciles connections with a driver per processor and a Kubernetes port."""

    def __init__(self, kube: KubePort, drivers: Mapping[str, ProcessorDriver], *, cluster_name: str) -> None:
        self._kube = kube
        self._drivers = drivers
        self._cluster = cluster_name
        # The credentials each connection last reconciled with, kept in memory
        # only, for clean-up after its Secret is gone.
        self._last_access: dict[tuple[str, str], tuple[ProcessorDriver, Credentials, Target]] = {}

    # --- entry points -----------------------------------------------------------

    async def reconcile(self, namespace: str, name: str) -> Outcome:
        """Bring one connection to its desired state and report it in status."""
        for _ in range(3):
            connection = await self._kube.get_connection(namespace, name)
            if connection is None or connection.deleting:
                return Outcome("gone")
            processor = connection.model.spec.processor.value
            if connection.annotations.get(PAUSED) == "true":
                return Outcome("paused", processor)
            try:
                return replace(await self._reconcile(connection), processor=processor)
            except StaleObject:
                continue  # changed under us: read again, decide again
        return Outcome("retrying")

    async def finalize(self, namespace: str, name: str, *, final_attempt: bool) -> bool:
        """Clean up before the object goes. Returns True when the finalizer may be released.

        Transient failures raise (the caller retries with backoff) until
        ``final_attempt``; permanent ones (a revoked key) release at once with
        a Warning event, so an invalid key never traps the object.
        """
        connection = await self._kube.get_connection(namespace, name)
        if connection is None:
            return True
        spec = connection.model.spec
        metrics.forget_connection(namespace, name, spec.processor.value)
        if connection.annotations.get(PAUSED) == "true":
            await self._event(
                connection,
                "Normal",
                "OrphanedWebhookEndpoint",
                "paused: left the webhook at the processor untouched",
            )
            return True
        if spec.deletion_policy is DeletionPolicy.ORPHAN:
            webhook_id = (connection.status.get("webhook") or {}).get("id")
            await self._event(
                connection,
                "Normal",
                "OrphanedWebhookEndpoint",
                f"deletionPolicy is Orphan: left webhook {webhook_id or '(none)'} at the processor",
            )
            return True
        try:
            try:
                driver, credentials, target = await self._access(connection)
            except _Stalled:
                # Deleting a namespace deletes the credentials Secret too, in no set
                # order: the credentials the last reconcile used still clean up.
                remembered = self._last_access.get((namespace, name))
                if remembered is None:
                    raise
                driver, credentials, target = remembered
            owner = self._owner(connection)
            for webhook in await driver.list_webhooks(credentials, target, owner.metadata()):
                if relation(webhook.metadata, owner) in (Relation.MINE, Relation.PREDECESSOR):
                    try:
                        await driver.delete_webhook(credentials, target, webhook.id)
                    except NotFound:
                        continue
                    await self._event(
                        connection,
                        "Normal",
                        "DeletedWebhookEndpoint",
                        f"deleted webhook {webhook.id}: connection deleted",
                    )
            self._last_access.pop((namespace, name), None)
            return True
        except TransientProcessorError as error:
            if not final_attempt:
                raise
            message = f"gave up deleting the webhook after retries: {error}; it may remain at the processor"
        except (_Stalled, ProcessorError) as error:
            detail = error.assessment.credentials.message if isinstance(error, _Stalled) else str(error)
            message = (
                f"cannot delete the webhook ({detail}); releasing the connection, the webhook may remain"
            )
        await self._event(connection, "Warning", "WebhookCleanupFailed", message)
        self._last_access.pop((namespace, name), None)
        return True

    # --- the reconcile ------------------------------------------------------------

    async def _reconcile(self, connection: Connection) -> Outcome:
        if not connection.status.get("conditions"):
            # First sight: never let a GitOps tool read "no status" as healthy.
            # The write moves the resourceVersion: carry on with the object as written.
            connection = await self._write_status(
                connection, Assessment(starting=True), account=None, webhook=None, missing=()
            )

        account: Account | None = None
        report: PermissionReport | None = None
        try:
            driver, credentials, target = await self._access(connection)
            account = await self._verify(connection, driver, credentials, target)
            report = await self._check_permissions(connection, driver, credentials, target)
            webhook, webhook_verdict, rotation = await self._reconcile_webhook(
                connection, driver, credentials, target
            )
        except _Stalled as stopped:
            await self._write_status(
                connection, stopped.assessment, account=account, webhook=None, missing=stopped.missing
            )
            await self._warn_on_change(connection, stopped.assessment)
            return Outcome("stalled" if stopped.assessment.stalled else "progressing")
        except TransientProcessorError as error:
            assessment = self._carry_over(connection, Assessment(retrying=str(error)), account, report)
            await self._write_status(
                connection, assessment, account=account, webhook=None, missing=(), keep_rest=True
            )
            return Outcome("retrying")

        assessment = Assessment(
            credentials=_credentials_ok(account),
            permissions=_permissions_ok(report),
            webhook=webhook_verdict,
            # A foreign webhook beside the owned one: only a person can settle it, exactly
            # as when it blocks the create, so it is reported the same way.
            stalled=webhook_verdict if webhook_verdict.reason == "EndpointConflict" else None,
        )
        await self._write_status(
            connection, assessment, account=account, webhook=webhook, missing=(), rotation=rotation
        )
        if assessment.stalled is not None:
            await self._warn_on_change(connection, assessment)
            return Outcome("stalled")
        return Outcome("ready" if webhook_verdict.status == "True" else "progressing")

    async def _access(self, connection: Connection) -> tuple[ProcessorDriver, Credentials, Target]:
        spec = connection.model.spec
        driver = self._drivers.get(spec.processor.value)
        if driver is None:
            raise _Stalled(
                _stalled_credentials(
                    "ProcessorNotEnabled", f"this operator has no {spec.processor.value} driver"
                )
            )
        ref = spec.credentials_secret_ref
        secret = await self._kube.read_credentials(connection.namespace, ref.name)
        if secret is None:
            # Not stalled: in GitOps the Secret often lands after the connection,
            # and its arrival wakes the reconcile.
            raise _Stalled(
                Assessment(
                    credentials=Verdict("False", "CredentialsSecretNotFound", f"Secret {ref.name} not found"),
                    stalled=None,
                )
            ) from None
        refused = credentials_access.refusal(
            ref.name, opted_in=secret.opted_in, annotations=secret.annotations, connection=connection.name
        )
        if refused is not None:
            raise _Stalled(_stalled_credentials(refused.reason, refused.message))
        data = secret.data
        for value in data.values():
            register_secret(value)
        try:
            credentials = driver.credentials_from(data, ref.key)
        except CredentialsRejected as rejected:
            raise _Stalled(_stalled_credentials(rejected.reason, f"Secret {ref.name}: {rejected}")) from None
        target = Target(
            mode=spec.mode,
            connected_account=spec.stripe.account if spec.stripe else None,
            client_id=spec.checkout.client_id if spec.checkout else None,
            entities=tuple(spec.checkout.entities) if spec.checkout else (),
        )
        self._last_access[(connection.namespace, connection.name)] = (driver, credentials, target)
        return driver, credentials, target

    async def _verify(
        self, connection: Connection, driver: ProcessorDriver, credentials: Credentials, target: Target
    ) -> Account:
        try:
            return await driver.verify(credentials, target)
        except CredentialsRejected as rejected:
            raise _Stalled(_stalled_credentials(rejected.reason, str(rejected))) from None

    async def _check_permissions(
        self, connection: Connection, driver: ProcessorDriver, credentials: Credentials, target: Target
    ) -> PermissionReport:
        spec = connection.model.spec
        try:
            report = await driver.check_permissions(credentials, target, spec.required_permissions)
        except CredentialsRejected as rejected:
            raise _Stalled(_stalled_credentials(rejected.reason, str(rejected))) from None
        if report.missing:
            verdict = Verdict("False", "InsufficientPermissions", _missing_message(spec, report))
            raise _Stalled(
                Assessment(
                    credentials=Verdict("True", "CredentialsVerified", "the credentials are valid"),
                    permissions=verdict,
                    webhook=Verdict(
                        "Unknown", "WaitingForPermissions", "not checked until the permissions are granted"
                    ),
                    stalled=verdict,
                ),
                missing=report.missing,
            )
        return report

    async def _reconcile_webhook(
        self, connection: Connection, driver: ProcessorDriver, credentials: Credentials, target: Target
    ) -> tuple[ObservedWebhook | None, Verdict, str | None]:
        """Reconcile the webhook; returns it, its verdict, and the rotation request it carried out."""
        spec = connection.model.spec
        owner = self._owner(connection)
        try:
            published = await self._kube.read_published(connection)
            if published is not None and published.signing_secret:
                register_secret(published.signing_secret)
        except SecretNotOwned:
            name = spec.webhook.signing_secret_ref.name
            raise _Stalled(
                _stalled_webhook(
                    "SigningSecretConflict",
                    f"Secret {name} exists and is not managed by this connection; "
                    "choose another webhook.signingSecretRef or delete that Secret",
                )
            ) from None
        rotation = connection.annotations.get(ROTATE_SIGNING_SECRET)
        rotate = bool(rotation) and rotation != connection.status.get("signingSecretRotation")

        try:
            events = await driver.resolve_events(credentials, target, spec.webhook.events)
            desired = _desired(spec, owner, events)
            new_secret: str | None = None
            if driver.signing_secret_source == "operator":
                desired, published, new_secret = await self._write_ahead(
                    connection, desired, published, rotate
                )
            else:
                published, connection = await self._recover_pending_create(
                    connection, driver, credentials, target, desired, published
                )
                if rotate:
                    # Stripe has no API to roll a secret: a new endpoint brings a new one.
                    published = None
            observed = await driver.list_webhooks(credentials, target, owner.metadata())
            plan = webhook_plan.plan(
                desired,
                owner,
                observed,
                published_id=published.webhook_id if published else None,
                replace_foreign=spec.webhook.conflict_policy.value == "Replace",
                signing_secret=new_secret,
            )
            drift = self._is_drift(connection)

            for deletion in plan.delete:
                try:
                    await driver.delete_webhook(credentials, target, deletion.webhook.id)
                except NotFound:
                    continue
                await self._event(
                    connection,
                    "Normal",
                    "DeletedWebhookEndpoint",
                    f"deleted webhook {deletion.webhook.id}: {deletion.why}",
                )

            if plan.blocked_by_conflict:
                ids = ", ".join(w.id for w in plan.conflicts)
                raise _Stalled(
                    _stalled_webhook(
                        "EndpointConflict",
                        f"webhook {ids} at {spec.webhook.url} is not owned by this connection "
                        "and was left alone; delete it at the processor "
                        "or set webhook.conflictPolicy: Replace",
                    )
                )

            keeper = plan.keep
            vanished = False
            if keeper is not None and plan.update is not None:
                try:
                    keeper = await driver.update_webhook(credentials, target, keeper.id, plan.update)
                except NotFound:
                    # Deleted between the list and the update (a person or a script cleaning
                    # up): nothing is left to update, so this pass creates it instead of
                    # failing and leaving the connection without a webhook until a retry.
                    vanished = True
            if plan.create or vanished:
                keeper = await self._create(connection, driver, credentials, target, desired, drift=drift)
            elif keeper is not None and plan.update is not None:
                what = ", ".join(plan.update.describe())
                if drift:
                    await self._event(
                        connection,
                        "Normal",
                        "DriftCorrected",
                        f"webhook {keeper.id} was changed outside procon; restored {what}",
                    )
                else:
                    await self._event(
                        connection, "Normal", "UpdatedWebhookEndpoint", f"updated webhook {keeper.id}: {what}"
                    )
        except PermissionDenied as denied:
            permission = _as_required(denied.permission, spec.required_permissions)
            missing = permission or "a webhook permission"
            verdict = Verdict("False", "InsufficientPermissions", f"the key lacks {missing}: {denied}")
            raise _Stalled(
                Assessment(
                    credentials=Verdict("True", "CredentialsVerified", "the credentials are valid"),
                    permissions=verdict,
                    webhook=Verdict("False", "InsufficientPermissions", verdict.message),
                    stalled=verdict,
                ),
                missing=[permission] if permission else [],
            ) from None
        except CredentialsRejected as rejected:
            raise _Stalled(_stalled_credentials(rejected.reason, str(rejected))) from None
        except EndpointLimitReached as error:
            raise _Stalled(
                _stalled_webhook(
                    "EndpointLimitReached",
                    f"{error}. Delete unused webhook endpoints in the processor's dashboard; "
                    "procon deletes only endpoints it owns",
                )
            ) from None
        except RequestRejected as error:
            raise _Stalled(_stalled_webhook("WebhookRejected", str(error))) from None

        assert keeper is not None  # a plan without conflict either keeps or creates
        handled = rotation if rotate else None
        if rotate:
            await self._event(
                connection,
                "Normal",
                "SigningSecretRotated",
                f"webhook {keeper.id} signs with a new secret ({rotation})",
            )
        if plan.conflicts:
            ids = ", ".join(w.id for w in plan.conflicts)
            message = f"webhook {ids} is not owned by procon and targets the same URL; left alone"
            return keeper, Verdict("False", "EndpointConflict", message), handled
        verdict = Verdict(
            "True", "EndpointReady", f"webhook {keeper.id} delivers {len(keeper.events)} event types"
        )
        return keeper, verdict, handled

    async def _create(
        self,
        connection: Connection,
        driver: ProcessorDriver,
        credentials: Credentials,
        target: Target,
        desired: DesiredWebhook,
        *,
        drift: bool,
    ) -> ObservedWebhook:
        key = idempotency_key(connection, desired)
        write_ahead = driver.signing_secret_source == "processor"
        if write_ahead:
            # The secret comes back once: record how to ask for it again first.
            pending = json.dumps({"key": key, "params": _params_digest(desired)}, separators=(",", ":"))
            connection = await self._kube.set_annotations(connection, {PENDING_CREATE: pending})
        created = await driver.create_webhook(credentials, target, desired, idempotency_key=key)
        await self._publish(connection, created)
        if write_ahead:
            await self._kube.set_annotations(connection, {PENDING_CREATE: None})
        previous_id = (connection.status.get("webhook") or {}).get("id")
        if drift and previous_id:
            await self._event(
                connection,
                "Normal",
                "DriftCorrected",
                f"webhook {previous_id} was deleted or changed outside procon; created {created.webhook.id}",
            )
        else:
            await self._event(
                connection, "Normal", "CreatedWebhookEndpoint", f"created webhook {created.webhook.id}"
            )
        return created.webhook

    async def _publish(self, connection: Connection, created: CreatedWebhook) -> None:
        await self._kube.publish(connection, created.webhook.id, created.signing_secret)
        ref = connection.model.spec.webhook.signing_secret_ref
        await self._event(
            connection,
            "Normal",
            "SigningSecretPublished",
            f"published the signing secret of webhook {created.webhook.id} to Secret {ref.name}",
        )

    async def _write_ahead(
        self, connection: Connection, desired: DesiredWebhook, published: PublishedSecret | None, rotate: bool
    ) -> tuple[DesiredWebhook, PublishedSecret, str | None]:
        """For processors that take procon's key: make sure the Secret holds it before any call uses it.

        Returns the desired webhook carrying the key, what is now published, and
        the key if the live webhook must be switched to it (a rotation).
        """
        keep = published is not None and published.signing_secret and not rotate
        key = (
            published.signing_secret if keep and published and published.signing_secret else new_signing_key()
        )
        register_secret(key)  # ours, but a secret all the same: never in a log line or a message
        webhook_id = published.webhook_id if published else None
        if published is None or published.signing_secret != key:
            await self._kube.publish(connection, webhook_id or "", key)
            published = PublishedSecret(webhook_id, key)
        return replace(desired, signing_secret=key), published, (key if rotate and webhook_id else None)

    async def _recover_pending_create(
        self,
        connection: Connection,
        driver: ProcessorDriver,
        credentials: Credentials,
        target: Target,
        desired: DesiredWebhook,
        published: PublishedSecret | None,
    ) -> tuple[PublishedSecret | None, Connection]:
        """Finish a create that a crash (or a lost response) left unpublished."""
        raw = connection.annotations.get(PENDING_CREATE)
        if not raw:
            return published, connection
        try:
            pending = json.loads(raw)
        except ValueError:
            pending = {}
        if pending.get("params") == _params_digest(desired) and isinstance(pending.get("key"), str):
            try:
                created = await driver.create_webhook(
                    credentials, target, desired, idempotency_key=pending["key"]
                )
            except (IdempotencyConflict, RequestRejected, NotFound):
                created = None  # the planner deletes whatever the lost create left
            if created is not None:
                logger.info("recovered webhook %s from an interrupted create", created.webhook.id)
                await self._publish(connection, created)
                published = PublishedSecret(created.webhook.id, created.signing_secret)
        connection = await self._kube.set_annotations(connection, {PENDING_CREATE: None})
        return published, connection

    # --- helpers ------------------------------------------------------------------

    def _owner(self, connection: Connection) -> Owner:
        return Owner(
            cluster=self._cluster, namespace=connection.namespace, name=connection.name, uid=connection.uid
        )

    @staticmethod
    def _is_drift(connection: Connection) -> bool:
        """Whether a difference found now was made outside procon: nothing changed since the last Ready."""
        ready = next((c for c in connection.status.get("conditions") or [] if c.get("type") == "Ready"), None)
        return bool(
            ready
            and ready.get("status") == "True"
            and connection.status.get("observedGeneration") == connection.generation
        )

    def _carry_over(
        self,
        connection: Connection,
        assessment: Assessment,
        account: Account | None,
        report: PermissionReport | None,
    ) -> Assessment:
        """On a transient error, keep what earlier runs established for the parts not re-checked."""
        before = {c.get("type"): c for c in connection.status.get("conditions") or []}

        def previous(kind: str) -> Verdict:
            old = before.get(kind)
            if not old or old.get("reason") == "Pending":
                return conditions.PENDING
            return Verdict(old["status"], old["reason"], old.get("message", ""))

        return replace(
            assessment,
            credentials=_credentials_ok(account) if account else previous("CredentialsValid"),
            permissions=_permissions_ok(report) if report else previous("PermissionsValid"),
            webhook=previous("WebhookReady"),
        )

    async def _write_status(
        self,
        connection: Connection,
        assessment: Assessment,
        *,
        account: Account | None,
        webhook: ObservedWebhook | None,
        missing: Sequence[str],
        keep_rest: bool = False,
        rotation: str | None = None,
    ) -> Connection:
        previous = connection.status.get("conditions") or []
        status: dict[str, Any] = {
            "observedGeneration": connection.generation,
            "conditions": conditions.build(assessment, generation=connection.generation, previous=previous),
            "missingPermissions": sorted(missing),
        }
        if not keep_rest:
            status["account"] = {"id": account.id, "mode": account.mode.value} if account else None
            status["webhook"] = (
                {
                    "id": webhook.id,
                    "url": webhook.url,
                    "status": webhook.status,
                    "events": list(webhook.events),
                }
                if webhook
                else None
            )
        metrics.connection_conditions(
            connection.namespace, connection.name, connection.model.spec.processor.value, status["conditions"]
        )
        if rotation is not None:
            # Written only when carried out: a merge patch without the key keeps it.
            status["signingSecretRotation"] = rotation
        unchanged = (
            conditions.same_conditions(previous, status["conditions"])
            and connection.status.get("observedGeneration") == connection.generation
            and all(
                connection.status.get(k) == v or (not connection.status.get(k) and not v)
                for k, v in status.items()
                if k != "conditions"
            )
        )
        if unchanged:
            return connection
        return await self._kube.write_status(connection, status)

    async def _warn_on_change(self, connection: Connection, assessment: Assessment) -> None:
        """A Warning event when a connection becomes stalled for a new reason (not on every drift check)."""
        stalled = assessment.stalled
        if stalled is None:
            return
        before: Mapping[str, Any] = next(
            (c for c in connection.status.get("conditions") or [] if c.get("type") == "Stalled"), {}
        )
        if (
            before.get("status") == "True"
            and before.get("reason") == stalled.reason
            and before.get("message") == conditions.message_of(stalled)
        ):
            return
        await self._event(connection, "Warning", stalled.reason, stalled.message)

    async def _event(self, connection: Connection, type_: str, reason: str, message: str) -> None:
        level = logging.WARNING if type_ == "Warning" else logging.INFO
        logger.log(level, "%s/%s: %s: %s", connection.namespace, connection.name, reason, redact(message))
        await self._kube.post_event(
            connection, "Warning" if type_ == "Warning" else "Normal", reason, redact(message)
        )


# --- pure helpers ---------------------------------------------------------------------


def _desired(spec: ProcessorConnectionSpec, owner: Owner, events: Sequence[str]) -> DesiredWebhook:
    connect = bool(spec.stripe and spec.stripe.connect)
    stripe = spec.processor.value == "stripe"
    return DesiredWebhook(
        url=spec.webhook.url,
        events=tuple(sorted(events)),
        # Checkout.com workflows have no description; their name is procon's tag.
        description=spec.webhook.description if stripe else None,
        metadata=owner.metadata(connect=connect),
        api_version=spec.stripe.api_version if spec.stripe else None,
        connect=connect,
        entities=tuple(sorted(spec.checkout.entities)) if spec.checkout else (),
        processing_channels=tuple(sorted(spec.checkout.processing_channels)) if spec.checkout else (),
    )


def new_signing_key() -> str:
    """A webhook signing key for processors that take ours: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def idempotency_key(connection: Connection, desired: DesiredWebhook) -> str:
    """The key of a webhook create: the same inputs give the same key.

    Made of the connection's UID, the create's parameters and the webhook it
    replaces, so a retry of one create reuses its key while a create for a new
    situation (the spec changed, the previous webhook was deleted outside
    procon) gets a fresh one and is never answered with an old response.
    """
    previous = (connection.status.get("webhook") or {}).get("id") or "none"
    digest = hashlib.sha256(f"{connection.uid}|{_params_digest(desired)}|{previous}".encode()).hexdigest()
    return f"procon-{digest[:40]}"


def _params_digest(desired: DesiredWebhook) -> str:
    """What a replay must match: the create's parameters, hashed."""
    canonical = json.dumps(
        {
            "url": desired.url,
            "events": list(desired.events),
            "description": desired.description,
            "metadata": dict(sorted(desired.metadata.items())),
            "api_version": desired.api_version,
            "connect": desired.connect,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _as_required(permission: str | None, required: Sequence[str]) -> str | None:
    """The required permission a refusal is about: a key with no webhook access at all is refused
    ``rak_webhook_read`` by the listing, but what the spec asks, and what to grant, is the write
    (which implies the read)."""
    if permission and permission.endswith("_read"):
        write = permission.removesuffix("_read") + "_write"
        if write in required:
            return write
    return permission


def _stalled_credentials(reason: str, message: str) -> Assessment:
    verdict = Verdict("False", reason, message)
    return Assessment(
        credentials=verdict,
        permissions=Verdict(
            "Unknown", "WaitingForCredentials", "not checked until the credentials are valid"
        ),
        webhook=Verdict("Unknown", "WaitingForCredentials", "not checked until the credentials are valid"),
        stalled=verdict,
    )


def _stalled_webhook(reason: str, message: str) -> Assessment:
    verdict = Verdict("False", reason, message)
    return Assessment(
        credentials=Verdict("True", "CredentialsVerified", "the credentials are valid"),
        permissions=Verdict("True", "PermissionsGranted", "every required permission is held"),
        webhook=verdict,
        stalled=verdict,
    )


def _credentials_ok(account: Account | None) -> Verdict:
    if account is None:
        return conditions.PENDING
    # The account itself is in status.account (and the Account column), not repeated here.
    return Verdict("True", "CredentialsVerified", f"valid {account.mode.value}-mode credentials")


def _permissions_ok(report: PermissionReport | None) -> Verdict:
    if report is None:
        return conditions.PENDING
    if report.unverifiable:
        return Verdict(
            "True",
            "PermissionsGranted",
            "every checkable permission is held; cannot be verified: " + ", ".join(report.unverifiable),
        )
    return Verdict("True", "PermissionsGranted", "every required permission is held")


def _missing_message(spec: ProcessorConnectionSpec, report: PermissionReport) -> str:
    message = "the credentials lack: " + ", ".join(report.missing)
    if report.unverifiable:
        message += "; cannot be verified: " + ", ".join(report.unverifiable)
    if spec.processor.value == "stripe":
        link = dashboard_link(list(spec.required_permissions), "procon")
        message += f". Grant them, or create a restricted key with exactly the required permissions: {link}"
    return message

"""One idempotent reconcile of a ProcessorConnection, and its clean-up on deletion.

Level-based: every run reads the connection, its Secret and the processor's
webhooks afresh, decides with the pure functions of this package, acts, and
writes the complete status. Running it twice in a row does nothing the
second time, so it is safe to trigger for any reason: a spec change, a
Secret change, the periodic drift check, a restart.

The create of a processor webhook is the one step a crash can split: the
processor returns the signing secret once, and a crash before it is
published would lose it. So, before the call, a random idempotency key for
the create is recorded in the signing Secret (never on the connection: a
reader of the connection holding a key to the same account could replay the
create and receive its secret). After a crash the next run replays the
create under the same key, and the processor answers with the original
response, secret included; the answer is published only if the account
still lists that webhook. If the replay cannot help (the key is spent on a
saved error, expired, or the spec changed), the key is dropped for good, the
unpublished webhook is just another owned webhook without a published
secret, and the planner deletes it and creates a fresh one under a new key.

Replacements are made before they break: the new webhook is created and its
secret published before the old one is deleted, so the Secret always names a
live webhook and a failed create leaves the old pair serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from procon import metrics, redaction
from procon.api.v1alpha1 import DeletionPolicy, Mode
from procon.processors.base import (
    Account,
    CreatedWebhook,
    Credentials,
    CredentialsRejected,
    DesiredWebhook,
    EndpointLimitReached,
    IdempotencyConflict,
    IdempotencyKeySpent,
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
from procon.reconcile import accounts, conditions, credentials_access, webhook_plan
from procon.reconcile import annotations as procon_annotations
from procon.reconcile.conditions import Assessment, Verdict
from procon.reconcile.ownership import CLUSTER, Owner, Relation, relation
from procon.reconcile.ports import (
    Connection,
    CredentialsSecret,
    KubePort,
    PendingCreate,
    PublishedSecret,
    SecretNotOwned,
    StaleObject,
)
from procon.reconcile.retry import retry_delay

logger = logging.getLogger(__name__)

# Where earlier versions recorded a create's key; no longer written, removed when found.
PENDING_CREATE = procon_annotations.PENDING_CREATE
PAUSED = procon_annotations.PAUSED
ROTATE_SIGNING_SECRET = procon_annotations.ROTATE_SIGNING_SECRET
# How long one reconcile (or one clean-up) may take, however slowly a processor answers.
DEFAULT_RECONCILE_TIMEOUT = 120.0
# How long a verification (credentials valid, their account, the permissions granted) is reused
# while what it was made from is unchanged, before the processor is asked again
# (PROCON_PERMISSION_RECHECK_INTERVAL).
DEFAULT_RECHECK_INTERVAL = 86400.0
# The share of the recheck interval a verification's reuse is shortened by, at most, per connection:
# connections verified together (a fleet applied at once, or started at once) would otherwise be
# rechecked together every interval; each is rechecked between 90% and 100% of it instead.
RECHECK_SPREAD = 0.1
# How far ahead of this process's clock a recorded verification time may be and still be trusted:
# replicas' clocks differ a little; a time further ahead is not one procon wrote.
MAX_CLOCK_SKEW = 300.0
# How long after a Secret version's key was asked about afresh the drivers' caches may answer for it
# (the default PROCON_PERMISSION_CACHE_TTL): within it, other connections on that Secret share
# the answer; after it, the next verification asks afresh again.
FRESH_ANSWER_WINDOW = 600.0
# Transient failures of a create under one idempotency key before the key counts as spent.
REPLAY_BUDGET = 2
# Attempts at a deleted connection's clean-up, one after another failed, before the last one
# releases the connection whatever happens (with the retry schedule, about half a minute).
CLEAN_UP_ATTEMPTS = 6
# How long a connection's first pass may run before its status says Reconciling. A pass that ends
# sooner writes its verdict as the first status: one status write instead of two, and a status write
# is the API server's costliest request for a connection (docs/design/work-queue.md).
FIRST_REPORT_DELAY = 2.0

# PermissionsValid reasons.
INSUFFICIENT_PERMISSIONS = "InsufficientPermissions"
UNKNOWN_PERMISSION = "UnknownPermission"


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended: the work queue schedules the connection's next run from it."""

    state: str  # "ready" | "stalled" | "progressing" | "retrying" | "paused" | "gone"
    processor: str = "unknown"
    # For "retrying": seconds until the next attempt, as the status says.
    retry_in: float | None = None
    # "gone": nothing is kept about the connection any more (True: it no longer exists, or procon
    # released it), rather than being deleted with procon's part done or another's finalizer on it.
    absent: bool = False


class _Stalled(Exception):
    """Internal: stop here and report ``assessment``.

    Usually only a change outside the operator can help (``assessment.stalled``
    is set); a missing credentials Secret is the exception, waited for instead.
    """

    def __init__(self, assessment: Assessment, missing: Sequence[str] = ()) -> None:
        self.assessment = assessment
        self.missing = tuple(missing)


class _FirstReport:
    """The Reconciling status of a connection seen for the first time, written only if its first
    pass is still running after a delay.

    A connection without status reads as healthy to kstatus (docs/argocd/README.md), so the operator
    says soon that it is at work; but a pass that finishes within the delay says what it found
    instead, and that single write is all the connection costs the API server until it changes.
    Every status write of the pass settles this report first, so the two never land out of order.
    The delayed write keeps to the pass's deadline: a request without end cannot hold the pass.
    """

    def __init__(
        self, write: Callable[[], Awaitable[object]], delay: float, *, deadline: float, name: str
    ) -> None:
        self._write = write
        self._writing = False
        self._name = name
        self._task = asyncio.create_task(self._after(delay, deadline), name="procon first status")

    async def _after(self, delay: float, deadline: float) -> None:
        await asyncio.sleep(delay)
        self._writing = True
        async with asyncio.timeout_at(deadline):
            await self._write()

    async def settle(self, *, write: bool = False) -> None:
        """Call the write off if it has not begun (``write``: make it now instead), or let it
        finish: what follows writes after it."""
        if not self._task.done():
            if not self._writing:
                self._task.cancel()
            try:
                await asyncio.wait({self._task})
            except asyncio.CancelledError:
                self._task.cancel()  # the pass is cancelled: its report goes with it
                raise
        if not self._task.cancelled() and (error := self._task.exception()) is not None:
            # Not fatal: the pass's own write follows (or the failure report, which is retried).
            logger.warning("%s: could not write a first status", self._name, exc_info=error)
        elif self._task.cancelled() and write and not self._writing:
            # Once: steps of a pass may each ask for it (a rotation marked, a start-over after a
            # conflict), and one "at work" status says it.
            self._writing = True
            await self._write()


class Reconciler:
    """Reconciles connections with a driver per processor and a Kubernetes port."""

    def __init__(
        self,
        kube: KubePort,
        drivers: Mapping[str, ProcessorDriver],
        *,
        cluster_name: str,
        reconcile_timeout: float = DEFAULT_RECONCILE_TIMEOUT,
        draw: Callable[[], float] = random.random,
        recheck_interval: float = DEFAULT_RECHECK_INTERVAL,
        clock: Callable[[], float] = time.time,
        first_report_delay: float = FIRST_REPORT_DELAY,
    ) -> None:
        self._kube = kube
        self._drivers = drivers
        self._cluster = cluster_name
        self._timeout = reconcile_timeout
        self._draw = draw  # jitter of retry delays
        # A verification recorded in a connection's status is reused for up to this long after it
        # was made (wall-clock seconds: the record outlives the process), less the connection's
        # share of RECHECK_SPREAD (see recheck_age). A record without a time, written by an
        # earlier procon, is not reused: each connection is verified once after the upgrade.
        self._clock = clock
        self._recheck_interval = recheck_interval
        # Credentials Secret versions (UID, resourceVersion) whose key a verification asked the
        # processor about afresh, and when: the first verification of a version drops what the
        # driver kept about the key; the others on it within FRESH_ANSWER_WINDOW share the answer.
        # In the order they were asked, which is time order: pruned from the front.
        self._asked_afresh: OrderedDict[tuple[str, str], float] = OrderedDict()
        # Transient failures in a row, per connection: the retry schedule.
        self._failures: dict[tuple[str, str], int] = {}
        # Failed clean-ups in a row, per connection being deleted (see _clean_up).
        self._clean_up_failures: dict[tuple[str, str], int] = {}
        # Per connection: the key of its pending create and its transient failures (see _send_create).
        self._replays: dict[tuple[str, str], tuple[str, int]] = {}
        # The credentials each connection last reconciled with, kept in memory
        # only, for clean-up after its Secret is gone.
        self._last_access: dict[tuple[str, str], tuple[ProcessorDriver, Credentials, Target]] = {}
        # What each connection was last told about, so a warning or notice comes once per
        # change, not on every drift check (in memory: a restart says it once more).
        self._annotation_warnings: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}
        self._whitespace_noticed: dict[tuple[str, str], str] = {}
        # The Reconciling status of each first pass in progress, until the pass writes its own.
        self._first_report_delay = first_report_delay
        self._first_reports: dict[tuple[str, str], _FirstReport] = {}

    # --- entry points -----------------------------------------------------------

    async def reconcile(
        self, namespace: str, name: str, *, changed: bool = True, changed_since: float | None = None
    ) -> Outcome:
        """Bring one connection to its desired state and report it in status.

        ``changed``: the pass was asked for by a change (to the connection, its Secret, an
        annotation), not by the periodic check. Only a periodic check of an unchanged, Ready
        connection acts on the account's shared listing of up to a drift interval ago
        (procon.reconcile.accounts); every other pass on a listing begun after
        ``changed_since`` (when the change was seen; by default, during this pass).

        Whatever goes wrong ends in status: a pass that outlives the deadline
        (a processor answering slowly, or without end) or fails unexpectedly
        reports Ready=False and Reconciling=True with the reason, never leaving
        an earlier Ready=True standing, and the caller retries with backoff.
        """
        for attempt in range(3):
            # Started over after a conflict: the object changed in ways the watch may not have
            # delivered yet, so this read asks etcd itself.
            connection = await self._kube.get_connection(namespace, name, latest=attempt > 0)
            if connection is None:
                self.forget(namespace, name)
                return Outcome("gone", absent=True)
            if connection.deleting:
                if not connection.held:
                    # Released already, or never held (deleted before its first pass got to it):
                    # nothing to do, nothing to keep, whatever else holds it.
                    self.forget(namespace, name)
                    return Outcome("gone", absent=True)
                return await self._clean_up(connection)
            processor = connection.model.spec.processor
            # A name deleted and created again (its DELETED event missed) starts with no failed clean-up.
            self._clean_up_failures.pop((namespace, name), None)
            await self._warn_about_annotations(connection)
            if procon_annotations.is_paused(connection.annotations):
                if not connection.held:
                    # Its signing Secret is let go when it is deleted (see _finalize): that needs the
                    # finalizer too. (A pass that acts holds it in _reconcile_pass.)
                    try:
                        await self._kube.hold(connection)
                    except StaleObject:
                        continue
                # procon makes no call for it: nothing of it can end up in a message,
                # and no credentials are kept for calls.
                self._forget_secrets(namespace, name)
                self._forget_access(namespace, name)
                return Outcome("paused", processor)
            deadline = asyncio.timeout(self._timeout)
            try:
                with accounts.current_listing(changed or not self._is_drift(connection), since=changed_since):
                    async with deadline:
                        outcome = replace(await self._reconcile(connection), processor=processor)
            except StaleObject:
                continue  # changed under us: read again, decide again
            except TimeoutError:
                if not deadline.expired():
                    raise
                message = (
                    f"the reconcile did not finish within {self._timeout:g}s "
                    "(a processor answer too slow or without end)"
                )
                delay = await self._report_failure(connection, "ReconcileTimedOut", message)
                return Outcome("retrying", processor, retry_in=delay)
            except Exception as error:
                # A bug, or an answer no check foresaw: the traceback goes to the log (redacted),
                # status says that it happened and that procon retries.
                logger.exception("%s/%s: the reconcile failed", namespace, name)
                message = (
                    f"the reconcile failed with an unexpected {type(error).__name__} "
                    "(details in the operator's log)"
                )
                delay = await self._report_failure(connection, "UnexpectedError", message)
                return Outcome("retrying", processor, retry_in=delay)
            if outcome.state != "retrying":
                self._failures.pop((namespace, name), None)
            return outcome
        return Outcome("retrying")

    async def left_unfinished(self, namespace: str, name: str) -> bool | None:
        """After a start, for a connection whose status says it is settled: whether the last
        process left work on it unfinished (a create whose write-ahead record is still in the
        signing Secret, a rotation not carried out, a replacement published but not yet in
        status, no signing Secret at all; a deletion procon's finalizer waits on). Reads
        Kubernetes only, asks no processor, writes nothing. None when the connection is gone,
        or going with nothing left for procon to do."""
        connection = await self._kube.get_connection(namespace, name)
        if connection is None or (connection.deleting and not connection.held):
            return None
        if connection.deleting:
            return True  # its clean-up
        if PENDING_CREATE in connection.annotations:
            return True
        rotation = procon_annotations.rotation(connection.annotations)
        if rotation and rotation != connection.status.get("signingSecretRotation"):
            return True
        try:
            published = await self._kube.read_published(connection)
        except SecretNotOwned:
            return True  # the reconcile reports it
        if published is None:
            return True
        # A pass that finished wrote the webhook it published into status; a kill between the
        # publish of a replacement and that write leaves them apart.
        shown = (connection.status.get("webhook") or {}).get("id")
        return published.pending is not None or published.webhook_id != shown

    def _next_retry(self, connection: Connection) -> float:
        """Count one more transient failure in a row; seconds until the next attempt."""
        key = (connection.namespace, connection.name)
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        return retry_delay(failures, self._draw)

    async def _report_failure(self, connection: Connection, reason: str, message: str) -> float:
        """Status for a pass that ended without a verdict: not Ready, reconciling, why, and when
        the next attempt is. Returns that delay."""
        delay = self._next_retry(connection)
        try:
            fresh = await self._kube.get_connection(connection.namespace, connection.name) or connection
            assessment = self._carry_over(
                fresh,
                Assessment(retrying=f"{message}; retrying in {delay:.0f}s", retry_reason=reason),
                None,
                None,
            )
            await self._write_status(
                fresh, assessment, account=None, webhook=None, missing=(), keep_rest=True
            )
        except Exception:
            # Kubernetes itself failing: nothing more can be reported; the caller retries.
            logger.exception("%s/%s: could not report the failure", connection.namespace, connection.name)
        return delay

    async def _warn_about_annotations(self, connection: Connection) -> None:
        """A Warning event for each procon annotation that is ignored, once per distinct value."""
        key = (connection.namespace, connection.name)
        problems = procon_annotations.problems(connection.annotations)
        told = self._annotation_warnings.get(key, frozenset())
        for problem in problems:
            if (problem.annotation, problem.value_digest) not in told:
                await self._event(connection, "Warning", "AnnotationIgnored", problem.message)
        current = frozenset((p.annotation, p.value_digest) for p in problems)
        if current:
            self._annotation_warnings[key] = current
        else:
            self._annotation_warnings.pop(key, None)

    async def _clean_up(self, connection: Connection) -> Outcome:
        """A pass over a connection being deleted that procon's finalizer holds: the clean-up, then
        the finalizer released. A failure is retried with backoff, CLEAN_UP_ATTEMPTS in a row at
        most; the last attempt releases whatever happens (with a Warning event), so that no
        processor outage traps a connection, or its namespace, for ever."""
        namespace, name = connection.namespace, connection.name
        processor = connection.model.spec.processor
        failures = self._clean_up_failures.get((namespace, name), 0)
        final_attempt = failures >= CLEAN_UP_ATTEMPTS - 1
        try:
            with accounts.current_listing():
                await self._finalize(connection, final_attempt=final_attempt)
        except Exception as error:
            if not isinstance(error, ProcessorError):
                logger.exception("%s/%s: the clean-up failed", namespace, name)
            if not final_attempt:
                self._clean_up_failures[(namespace, name)] = failures + 1
                delay = retry_delay(failures + 1, self._draw)
                logger.warning(
                    "%s/%s: webhook clean-up failed, retrying in %.0fs: %s",
                    namespace,
                    name,
                    delay,
                    redaction.redact(str(error), _scope(connection)),
                )
                return Outcome("retrying", processor, retry_in=delay)
            await self._event(
                connection,
                "Warning",
                "WebhookCleanupFailed",
                f"gave up the clean-up after {CLEAN_UP_ATTEMPTS} attempts ({type(error).__name__}); "
                "the webhook may remain at the processor",
            )
        try:
            await self._kube.release(connection)
        except StaleObject:
            # Still changing under us after retries on conflicts: the next pass reads it afresh.
            return Outcome("retrying", processor, retry_in=retry_delay(1, self._draw))
        self.forget(namespace, name)
        return Outcome("gone", processor, absent=True)

    def forget(self, namespace: str, name: str) -> None:
        """Drop everything kept in memory for a connection: it is gone."""
        self._forget_access(namespace, name)
        self._forget_secrets(namespace, name)
        self._annotation_warnings.pop((namespace, name), None)
        self._whitespace_noticed.pop((namespace, name), None)
        self._failures.pop((namespace, name), None)
        self._clean_up_failures.pop((namespace, name), None)
        self._replays.pop((namespace, name), None)
        if not self._last_access:
            # No connection left whose verification could share a fresh answer: nothing is kept.
            self._asked_afresh.clear()

    def _forget_secrets(self, namespace: str, name: str) -> None:
        """Stop redacting the connection's secrets: it is gone, paused or orphaned."""
        redaction.forget(redaction.connection_scope(namespace, name))

    def _forget_access(self, namespace: str, name: str) -> None:
        """Drop the credentials kept for a connection and what the driver cached for them.

        Another connection with the same key only misses the driver's cache once.
        """
        remembered = self._last_access.pop((namespace, name), None)
        if remembered is not None:
            driver, credentials, target = remembered
            driver.forget(credentials, target)

    def state_entries(self) -> dict[str, int]:
        """Sizes of the per-connection stores (for the operator's own metrics)."""
        return {
            "remembered_credentials": len(self._last_access),
            "annotation_warnings": len(self._annotation_warnings),
            "whitespace_noticed": len(self._whitespace_noticed),
            "retry_schedules": len(self._failures),
            "clean_up_failures": len(self._clean_up_failures),
            "first_reports": len(self._first_reports),
            "create_replays": len(self._replays),
            "fresh_secret_versions": len(self._asked_afresh),
            "driver_cache": sum(driver.cached_entries() for driver in self._drivers.values()),
            "redacted_values": redaction.registered_count(),
        }

    async def _finalize(self, connection: Connection, *, final_attempt: bool) -> None:
        """Clean up before the connection goes.

        Transient failures raise (the pass is retried with backoff) until ``final_attempt``;
        permanent ones (a revoked key) end the clean-up at once with a Warning event, so an
        invalid key never traps the object.
        """
        namespace, name = connection.namespace, connection.name
        spec = connection.model.spec
        metrics.forget_connection(namespace, name)
        if procon_annotations.is_paused(connection.annotations):
            kept = await self._keep_signing_secret(connection)
            await self._event(
                connection,
                "Normal",
                "OrphanedWebhookEndpoint",
                f"paused: left the webhook at the processor untouched{kept}",
            )
            return
        if spec.deletion_policy is DeletionPolicy.ORPHAN:
            webhook_id = await self._orphaned_webhook(connection)
            kept = await self._keep_signing_secret(connection)
            if webhook_id:
                await self._delete_leftovers(connection, keep=webhook_id)
            await self._event(
                connection,
                "Normal",
                "OrphanedWebhookEndpoint",
                f"deletionPolicy is Orphan: left webhook {webhook_id or '(none)'} at the processor{kept}",
            )
            return
        try:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._delete_owned(connection)
            except TimeoutError:
                raise TransientProcessorError(
                    f"the clean-up did not finish within {self._timeout:g}s"
                ) from None
            return
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

    async def _orphaned_webhook(self, connection: Connection) -> str | None:
        """The webhook an Orphan deletion leaves: the one whose secret is published (the status's
        when nothing is)."""
        try:
            published = await self._kube.read_published(connection, confirm=True)
        except SecretNotOwned:
            published = None
        if published is not None and published.webhook_id:
            return published.webhook_id
        webhook_id = (connection.status.get("webhook") or {}).get("id")
        return str(webhook_id) if webhook_id else None

    async def _delete_leftovers(self, connection: Connection, *, keep: str) -> None:
        """Orphan leaves one webhook, the published one. Another owned webhook beside it is what a
        crash left (a create or replacement interrupted before its secret was published): nobody
        can verify its deliveries, and nobody would own it once the connection is gone. Best
        effort: when the processor cannot be reached, it stays, as it would have before."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._delete_owned(connection, keep=keep, why="a leftover beside the orphaned webhook")
        except (TimeoutError, _Stalled, ProcessorError) as error:
            if isinstance(error, _Stalled):
                detail = error.assessment.credentials.message
            else:
                detail = str(error) or f"no answer within {self._timeout:g}s"
            await self._event(
                connection,
                "Warning",
                "WebhookCleanupFailed",
                f"could not look for leftover webhooks beside {keep} ({detail}); any may remain",
            )

    async def _delete_owned(
        self, connection: Connection, *, keep: str | None = None, why: str = "connection deleted"
    ) -> None:
        namespace, name = connection.namespace, connection.name
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
            # Its own only: a predecessor's tag is a claim anyone sharing the account (another
            # cluster under the same name) could make; the reconcile deals with predecessors.
            if relation(webhook.metadata, owner) is Relation.MINE and webhook.id != keep:
                try:
                    await driver.delete_webhook(credentials, target, webhook.id)
                except NotFound:
                    continue
                await self._event(
                    connection, "Normal", "DeletedWebhookEndpoint", f"deleted webhook {webhook.id}: {why}"
                )

    async def _keep_signing_secret(self, connection: Connection) -> str:
        """The webhook stays, so its signing secret must too: release the Secret from the connection
        before the garbage collector follows the owner reference. Returns what to add to the event."""
        name = connection.model.spec.webhook.signing_secret_ref.name
        try:
            released = await self._kube.release_published(connection)
        except SecretNotOwned:
            return ""
        return f"; kept its signing secret in Secret {name}" if released else ""

    # --- the reconcile ------------------------------------------------------------

    async def _reconcile(self, connection: Connection) -> Outcome:
        if connection.status.get("conditions"):
            return await self._reconcile_pass(connection)
        # First sight: never leave "no status" for long, which a GitOps tool reads as healthy.
        key = (connection.namespace, connection.name)
        report = _FirstReport(
            lambda: self._write_status(
                connection,
                Assessment(starting=True),
                account=None,
                webhook=None,
                missing=(),
                first_report=True,
            ),
            self._first_report_delay,
            deadline=asyncio.get_running_loop().time() + self._timeout,
            name=f"{connection.namespace}/{connection.name}",
        )
        self._first_reports[key] = report
        try:
            return await self._reconcile_pass(connection)
        except StaleObject:
            # Read again and decided again from the start: its status says it is at work meanwhile.
            await report.settle(write=True)
            raise
        finally:
            del self._first_reports[key]
            await report.settle()

    async def _settle_first_report(self, connection: Connection, *, write: bool = False) -> None:
        report = self._first_reports.get((connection.namespace, connection.name))
        if report is not None:
            await report.settle(write=write)

    async def _reconcile_pass(self, connection: Connection) -> Outcome:
        account: Account | None = None
        report: PermissionReport | None = None
        recorded: Verdict | None = None  # the permissions verdict reused from the status
        verified: Mapping[str, Any] | None = None  # what status.verifiedCredentials is to say
        # The URL goes to the processor whole, but what it hides when shown (a token in its
        # query) is a secret too, caught also where the URL travels encoded.
        redaction.remember(
            _scope(connection), redaction.url_secrets(connection.model.spec.webhook.url), part="webhook-url"
        )
        # procon's finalizer, for a connection without it: added while the credentials are read and
        # verified (which leave nothing at the processor) and in place before the webhook step does
        # anything there, so that nothing procon does outlives the connection unseen. (Where the
        # chart's finalizer policy is in force it is there from the create: charts/procon/README.md,
        # "The finalizer at creation".)
        holding = None if connection.held else asyncio.ensure_future(self._kube.hold(connection))
        try:
            try:
                driver, credentials, target, secret = await self._read_access(connection)
                reused = self._recorded_verification(connection, secret)
                if reused is not None:
                    # Verified for this generation and this very Secret version within the recheck
                    # interval (by this process or the one before it): asking the processor again
                    # would only repeat the answer. A drift check costs the account's listing alone.
                    account, recorded, verified = reused
                    if isinstance(driver, accounts.AccountDriver):
                        driver.remember_account(credentials, target, account)
                else:
                    self._ask_afresh(driver, credentials, target, secret)
                    account = await self._verify(connection, driver, credentials, target)
                    report = await self._check_permissions(connection, driver, credentials, target)
                    verified = self._verification_record(connection, secret)
                if holding is not None:
                    connection, holding = await holding, None  # StaleObject: the pass starts over
                webhook, webhook_verdict, rotation = await self._reconcile_webhook(
                    connection, driver, credentials, target
                )
            finally:
                if holding is not None:
                    await _settled_hold(holding)
        except _Stalled as stopped:
            assessment = _with_earlier_steps(stopped.assessment, account, report, recorded)
            await self._write_status(
                connection,
                assessment,
                account=account,
                webhook=None,
                missing=stopped.missing,
                verified=verified,
            )
            await self._warn_on_change(connection, assessment)
            return Outcome("stalled" if assessment.stalled else "progressing")
        except ProcessorError as error:
            # Transient errors, and any the steps above did not turn into a verdict (an answer
            # of a kind procon does not know): retrying with backoff is all that can help.
            delay = self._next_retry(connection)
            assessment = self._carry_over(
                connection,
                Assessment(retrying=f"{error}; retrying in {delay:.0f}s", retry_reason=error.reason),
                account,
                report,
            )
            await self._write_status(
                connection, assessment, account=account, webhook=None, missing=(), keep_rest=True
            )
            return Outcome("retrying", retry_in=delay)

        assessment = Assessment(
            credentials=_credentials_ok(account),
            permissions=recorded or _permissions_ok(report),
            webhook=webhook_verdict,
            # A webhook procon does not own beside the owned one: only a person can settle
            # it, exactly as when it blocks the create, so it is reported the same way. (Another
            # connection's webhook beside the owned one is that newcomer's to report, never this
            # connection's: see procon.reconcile.webhook_plan.)
            stalled=webhook_verdict if webhook_verdict.reason == "EndpointConflict" else None,
        )
        await self._write_status(
            connection,
            assessment,
            account=account,
            webhook=webhook,
            missing=(),
            rotation=rotation,
            verified=verified,
        )
        if assessment.stalled is not None:
            await self._warn_on_change(connection, assessment)
            return Outcome("stalled")
        return Outcome("ready" if webhook_verdict.status == "True" else "progressing")

    async def _access(self, connection: Connection) -> tuple[ProcessorDriver, Credentials, Target]:
        driver, credentials, target, _ = await self._read_access(connection)
        return driver, credentials, target

    def _ask_afresh(
        self, driver: ProcessorDriver, credentials: Credentials, target: Target, secret: CredentialsSecret
    ) -> None:
        """Before a verification: unless another connection on this very Secret version was just
        verified, drop what the driver kept about the key, so the verification reaches the
        processor. A Secret touched to have its key checked now (or a verification past the
        recheck interval) is answered by the processor, not by a cache filled before; connections
        sharing the Secret still cost one set of probes."""
        now = self._clock()
        # Oldest first, up to the first still within the window: a verification costs the entries
        # it expires, not a scan of all of them (10,000 Secrets verified together).
        while self._asked_afresh:
            oldest, at = next(iter(self._asked_afresh.items()))
            if now - at < FRESH_ANSWER_WINDOW:
                break
            del self._asked_afresh[oldest]
        version = (secret.uid, secret.resource_version)
        if not all(version) or version in self._asked_afresh:
            return
        driver.forget(credentials, target)
        self._asked_afresh[version] = now

    def _verification_record(
        self, connection: Connection, secret: CredentialsSecret
    ) -> dict[str, Any] | None:
        """What status.verifiedCredentials says after a verification made now: what it was made
        from (the Secret's version, the generation) and when. None for a Secret without a version."""
        if not (secret.uid and secret.resource_version):
            return None
        return {
            "secretUid": secret.uid,
            "secretResourceVersion": secret.resource_version,
            "generation": connection.generation,
            "verifiedAt": datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _recorded_verification(
        self, connection: Connection, secret: CredentialsSecret
    ) -> tuple[Account, Verdict, Mapping[str, Any]] | None:
        """The account, permissions verdict and record of a verification the status records for
        this generation and this version of the credentials Secret, made within the connection's
        recheck age (see recheck_age); else None (then the processor is asked).

        A refusal of a processor call for the credentials or a permission leaves no record (the
        status it writes says what failed), so the pass after it verifies again.
        """
        if not (secret.uid and secret.resource_version):
            return None
        status = connection.status
        record = status.get("verifiedCredentials") or {}
        if (
            record.get("secretUid") != secret.uid
            or record.get("secretResourceVersion") != secret.resource_version
            or status.get("observedGeneration") != connection.generation
            # A record without a generation was written by an earlier procon, for observedGeneration.
            or record.get("generation", connection.generation) != connection.generation
        ):
            return None
        made = self._recorded_time(record)
        now = self._clock()
        max_age = recheck_age(self._recheck_interval, connection.uid)
        if made is None or not now - max_age < made <= now + MAX_CLOCK_SKEW:
            return None
        found = {c.get("type"): c for c in status.get("conditions") or []}
        for kind in ("CredentialsValid", "PermissionsValid"):
            condition = found.get(kind) or {}
            if (
                condition.get("status") != "True"
                or condition.get("observedGeneration") != connection.generation
            ):
                return None
        account = status.get("account") or {}
        try:
            mode = Mode(str(account.get("mode")))
        except ValueError:
            return None
        if not account.get("id") or mode != connection.model.spec.mode:
            return None
        permissions = found["PermissionsValid"]
        verdict = Verdict("True", str(permissions.get("reason")), str(permissions.get("message", "")))
        return Account(id=str(account["id"]), mode=mode), verdict, record

    def _recorded_time(self, record: Mapping[str, Any]) -> float | None:
        """When a recorded verification was made, in this process's clock; None when unreadable
        or absent. A record without a time was written by an earlier procon: counting it as made at
        this process's start would trust it for ever under restarts less than an interval apart."""
        if "verifiedAt" not in record:
            return None
        try:
            made = datetime.fromisoformat(str(record["verifiedAt"]).replace("Z", "+00:00"))
        except ValueError:
            return None
        return made.timestamp() if made.tzinfo is not None else None

    async def _read_access(
        self, connection: Connection
    ) -> tuple[ProcessorDriver, Credentials, Target, CredentialsSecret]:
        spec = connection.model.spec
        driver = self._drivers.get(spec.processor)
        if driver is None:
            raise _Stalled(
                _stalled_credentials("ProcessorNotEnabled", f"this operator has no {spec.processor} driver")
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
        try:
            credentials = driver.credentials_from(data, ref.key)
        except CredentialsRejected as rejected:
            raise _Stalled(_stalled_credentials(rejected.reason, f"Secret {ref.name}: {rejected}")) from None
        # Only the fields the driver uses, and only for this connection: whatever else the
        # Secret holds is never sent anywhere, and a value a tenant chose must not blank
        # words out of another tenant's messages. A changed Secret replaces them.
        redaction.remember(_scope(connection), credentials.values.values(), part="credentials")
        await self._notice_whitespace(connection, ref.name, data, credentials.stripped)
        target = driver.target(spec)
        self._last_access[(connection.namespace, connection.name)] = (driver, credentials, target)
        return driver, credentials, target, secret

    async def _notice_whitespace(
        self, connection: Connection, secret: str, data: Mapping[str, str], fields: Sequence[str]
    ) -> None:
        """A Normal event when key material came with surrounding whitespace, once per value."""
        key = (connection.namespace, connection.name)
        if not fields:
            self._whitespace_noticed.pop(key, None)
            return
        # A one-way print of the values as stored: a new value with the same mistake is told again.
        printed = hashlib.sha256(
            "\0".join(f"{f}={data.get(f, '')}" for f in sorted(fields)).encode()
        ).hexdigest()
        if self._whitespace_noticed.get(key) == printed:
            return
        self._whitespace_noticed[key] = printed
        await self._event(
            connection,
            "Normal",
            "CredentialsWhitespaceStripped",
            f"Secret {secret}: the value of {', '.join(sorted(fields))} has leading or trailing "
            "whitespace (a line break from echo?); procon uses it without. No key contains "
            "whitespace: remove it from the Secret to silence this",
        )

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
        if report.unknown or report.missing:
            required = spec.required_permissions
            verdict = (
                Verdict("False", UNKNOWN_PERMISSION, _unknown_message(spec.processor, driver, report))
                if report.unknown
                else Verdict(
                    "False",
                    INSUFFICIENT_PERMISSIONS,
                    _missing_message(required, driver, report),
                )
            )
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

    async def _read_published(
        self, connection: Connection, *, confirm: bool = False
    ) -> PublishedSecret | None:
        """What the signing Secret holds (see KubePort.read_published); its secret is redacted from
        then on, and someone else's Secret of that name stalls the connection."""
        try:
            published = await self._kube.read_published(connection, confirm=confirm)
        except SecretNotOwned:
            name = connection.model.spec.webhook.signing_secret_ref.name
            raise _Stalled(
                _stalled_webhook(
                    "SigningSecretConflict",
                    f"Secret {name} exists and is not managed by this connection; "
                    "choose another webhook.signingSecretRef or delete that Secret",
                )
            ) from None
        if published is not None and published.signing_secret:
            redaction.remember(_scope(connection), [published.signing_secret], part="signing")
        return published

    async def _reconcile_webhook(
        self, connection: Connection, driver: ProcessorDriver, credentials: Credentials, target: Target
    ) -> tuple[ObservedWebhook | None, Verdict, str | None]:
        """Reconcile the webhook; returns it, its verdict, and the rotation request it carried out."""
        spec = connection.model.spec
        owner = self._owner(connection)
        published = await self._read_published(connection)
        if PENDING_CREATE in connection.annotations:
            # Where earlier versions kept the create's key, readable by anyone who can read the
            # connection: never trusted, only removed. What that create left is an owned webhook
            # without a published secret, which the planner deletes.
            connection = await self._kube.set_annotations(connection, {PENDING_CREATE: None})
        rotation = procon_annotations.rotation(connection.annotations)
        rotate = bool(rotation) and rotation != connection.status.get("signingSecretRotation")
        by_processor = driver.signing_secret_source == "processor"

        try:
            events = await driver.resolve_events(credentials, target, spec.webhook.events)
            desired = driver.desired_webhook(spec, owner.metadata(), events)
            new_secret: str | None = None
            if not by_processor:
                desired, published, new_secret = await self._write_ahead(
                    connection, desired, published, rotate
                )
            rotated = False
            keeper: ObservedWebhook | None = None
            plan: webhook_plan.WebhookPlan | None = None
            # A spent idempotency key is dropped by the create that found it; the second round
            # looks at the account again and creates afresh under a new key, in this very pass.
            for round_ in range(2):
                observed = await driver.list_webhooks(credentials, target, owner.metadata())
                if published is None and any(
                    relation(w.metadata, owner) in (Relation.MINE, Relation.PREDECESSOR) for w in observed
                ):
                    # The plan deletes an owned webhook whose secret is not published. "Nothing
                    # published" may be the watch's word only: the Secret is read before that.
                    published = await self._read_published(connection, confirm=True)
                if by_processor and published is not None and published.pending is not None:
                    published, recovered, recovered_rotation = await self._recover_pending_create(
                        connection, driver, credentials, target, desired, published, observed
                    )
                    if recovered is not None and recovered.id not in {w.id for w in observed}:
                        observed = [*observed, recovered]  # created by the replay itself, just now
                    if rotate and recovered is not None and recovered_rotation == rotation:
                        rotate, rotated = False, True  # the interrupted create was this rotation's
                plan = webhook_plan.plan(
                    desired,
                    owner,
                    observed,
                    compare=driver.compare,
                    published_id=published.webhook_id if published else None,
                    replace_foreign=spec.webhook.conflict_policy.value == "Replace",
                    signing_secret=new_secret,
                    # A secret the processor chose cannot be rolled: a new webhook brings a new one.
                    replace_published=rotate and by_processor,
                    adopt=not by_processor,
                )
                try:
                    keeper = await self._carry_out(
                        connection,
                        driver,
                        credentials,
                        target,
                        desired,
                        plan,
                        rotation=rotation if rotate else None,
                    )
                except IdempotencyKeySpent:
                    if round_:
                        raise
                    logger.info(
                        "%s/%s: the create's idempotency key is spent; creating afresh",
                        connection.namespace,
                        connection.name,
                    )
                    if published is not None:
                        published = replace(published, pending=None)
                    continue
                if rotate:
                    rotated = True
                break
        except PermissionDenied as denied:
            self._refused(driver, credentials, target)
            permission = driver.required_permission(denied.permission, spec.required_permissions)
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
            self._refused(driver, credentials, target)
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

        # A plan without conflict either keeps or creates.
        assert keeper is not None
        assert plan is not None
        handled = rotation if rotated else None
        if rotated:
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

    @staticmethod
    def _refused(driver: ProcessorDriver, credentials: Credentials, target: Target) -> None:
        """A call was refused for the credentials or a permission: whatever the driver learnt about
        them is stale. The status this pass writes keeps no verification record, and the driver
        keeps nothing either, so the next pass asks the processor afresh and reports what it finds."""
        driver.forget(credentials, target)

    async def _carry_out(
        self,
        connection: Connection,
        driver: ProcessorDriver,
        credentials: Credentials,
        target: Target,
        desired: DesiredWebhook,
        plan: webhook_plan.WebhookPlan,
        *,
        rotation: str | None,
    ) -> ObservedWebhook | None:
        """Act on ``plan``: delete leftovers, create or update, publish, and only then retire."""
        spec = connection.model.spec
        drift = self._is_drift(connection)
        for deletion in plan.delete:
            await self._delete(connection, driver, credentials, target, deletion)

        if plan.blocked_by_conflict:
            raise _Stalled(
                _stalled_webhook(
                    "EndpointConflict",
                    webhook_plan.blocked_message(plan, self._owner(connection), spec.webhook.url),
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
        retire = plan.retire
        if plan.create or vanished:
            try:
                keeper = await self._create(
                    connection,
                    driver,
                    credentials,
                    target,
                    desired,
                    drift=drift,
                    plan=plan,
                    rotation=rotation,
                )
            except EndpointLimitReached:
                if retire is None:
                    raise
                # No room for the new webhook beside the old: the old one goes first after all.
                await self._delete(
                    connection, driver, credentials, target, retire, "to make room for its replacement"
                )
                retire = None
                keeper = await self._create(
                    connection,
                    driver,
                    credentials,
                    target,
                    desired,
                    drift=drift,
                    plan=plan,
                    rotation=rotation,
                )
        elif keeper is not None and plan.adopt:
            assert desired.signing_secret is not None  # adopt is only planned with procon's key
            await self._publish(connection, CreatedWebhook(keeper, desired.signing_secret))
            await self._event(
                connection,
                "Normal",
                "AdoptedWebhookEndpoint",
                f"webhook {keeper.id} was created by procon but its id never published; adopted it",
            )
        elif keeper is not None and plan.update is not None:
            what = ", ".join(plan.update.describe())
            owner = self._owner(connection)
            tagged = (plan.keep.metadata if plan.keep else {}).get(CLUSTER)
            if tagged != owner.cluster:
                # Its own by UID, tagged under an earlier cluster identity (the old default
                # "default", a renamed cluster): an upgrade, not a change made outside procon.
                what += f" (cluster identity {tagged} is now {owner.cluster})"
            if drift and tagged == owner.cluster:
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
        if retire is not None and keeper is not None:
            await self._delete(
                connection, driver, credentials, target, retire, f"its replacement {keeper.id} is published"
            )
        return keeper

    async def _delete(
        self,
        connection: Connection,
        driver: ProcessorDriver,
        credentials: Credentials,
        target: Target,
        deletion: webhook_plan.Deletion,
        when: str = "",
    ) -> None:
        try:
            await driver.delete_webhook(credentials, target, deletion.webhook.id)
        except NotFound:
            return
        why = f"{deletion.why}; {when}" if when else deletion.why
        await self._event(
            connection, "Normal", "DeletedWebhookEndpoint", f"deleted webhook {deletion.webhook.id}: {why}"
        )

    async def _create(
        self,
        connection: Connection,
        driver: ProcessorDriver,
        credentials: Credentials,
        target: Target,
        desired: DesiredWebhook,
        *,
        drift: bool,
        plan: webhook_plan.WebhookPlan,
        rotation: str | None,
    ) -> ObservedWebhook:
        replaces = plan.retire.webhook.id if plan.retire else None
        if driver.signing_secret_source == "processor":
            # The secret comes back once: record how to ask for it again first, where only
            # those who may read the signing secret can read it.
            pending = PendingCreate(
                key=new_idempotency_key(),
                params=_params_digest(desired),
                replaces=replaces,
                rotation=rotation,
            )
            await self._kube.record_pending(connection, pending)
            created = await self._send_create(connection, driver, credentials, target, desired, pending)
        else:
            # Procon's key is published already, so a lost answer needs no replay: the
            # webhook it made signs with that key, and the next pass adopts it (a
            # processor may take no idempotency key at all for such a create).
            created = await driver.create_webhook(
                credentials, target, desired, idempotency_key=new_idempotency_key()
            )
        # One event says both (a fleet's new connections cost the API server one event each),
        # at once: whatever fails after the publish, the webhook made is on record.
        await self._publish(connection, created, announce=False)
        previous_id = (connection.status.get("webhook") or {}).get("id")
        published = (
            f"published its signing secret to Secret {connection.model.spec.webhook.signing_secret_ref.name}"
        )
        if drift and previous_id and rotation is None:  # a rotation is asked for, not drift
            await self._event(
                connection,
                "Normal",
                "DriftCorrected",
                f"webhook {previous_id} was deleted or changed outside procon; "
                f"created {created.webhook.id} and {published}",
            )
        else:
            await self._event(
                connection,
                "Normal",
                "CreatedWebhookEndpoint",
                f"created webhook {created.webhook.id} and {published}",
            )
        webhook = created.webhook
        # A driver may create a webhook that delivers nothing until its secret is published (one
        # whose processor generates the key creates it switched off, so no event is signed with a
        # key the receiver lacks). Now that it is published: whatever the driver still finds to change.
        finish = driver.compare(webhook, desired).changes
        if finish is not None:
            webhook = await driver.update_webhook(credentials, target, webhook.id, finish)
        if rotation is not None:
            await self._mark_rotated(connection, rotation)
        return webhook

    async def _send_create(
        self,
        connection: Connection,
        driver: ProcessorDriver,
        credentials: Credentials,
        target: Target,
        desired: DesiredWebhook,
        pending: PendingCreate,
    ) -> CreatedWebhook:
        """Send (or replay) the recorded create; drop its key once it can give nothing more.

        A key is spent when the processor replays a saved error, when it no longer accepts the
        request as the key's first (other parameters), or after REPLAY_BUDGET transient failures
        in a row (a saved error a processor does not mark as a replay looks just like that).
        """
        # Whoever holds it and a key to the account could replay the create: as secret as the secret.
        redaction.remember(_scope(connection), [pending.key], part="idempotency-key")
        try:
            created = await driver.create_webhook(credentials, target, desired, idempotency_key=pending.key)
        except (IdempotencyKeySpent, IdempotencyConflict) as error:
            await self._drop_pending(connection, pending)
            raise IdempotencyKeySpent(str(error)) from None
        except TransientProcessorError as error:
            key = (connection.namespace, connection.name)
            counted_key, counted = self._replays.get(key, (pending.key, 0))
            tries = (counted if counted_key == pending.key else 0) + 1
            self._replays[key] = (pending.key, tries)
            if tries < REPLAY_BUDGET:
                raise
            await self._drop_pending(connection, pending)
            raise IdempotencyKeySpent(f"{error} (after {tries} attempts under one idempotency key)") from None
        self._replays.pop((connection.namespace, connection.name), None)
        return created

    async def _drop_pending(self, connection: Connection, pending: PendingCreate) -> None:
        """Forget a create's key for good: it is never sent again."""
        self._replays.pop((connection.namespace, connection.name), None)
        await self._kube.record_pending(connection, None)

    async def _mark_rotated(self, connection: Connection, rotation: str) -> None:
        """Record at once that the rotation is done: a crash before the status write at the end
        of the pass must not rotate a second time."""
        # Written whole first on a first pass: this patch alone would leave a status without
        # conditions, which kstatus reads as healthy.
        await self._settle_first_report(connection, write=True)
        await self._kube.write_status(connection, {"signingSecretRotation": rotation})

    async def _publish(
        self, connection: Connection, created: CreatedWebhook, *, announce: bool = True
    ) -> None:
        """Publish a new webhook's signing secret; ``announce``: with an event of its own (a create
        says it in its own event)."""
        redaction.remember(_scope(connection), [created.signing_secret], part="signing")
        await self._kube.publish(connection, created.webhook.id, created.signing_secret)
        if not announce:
            return
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
        # Ours, but a secret all the same: never in a log line or a message. Until the
        # switch is done the webhook may still sign with the published one.
        redaction.remember(
            _scope(connection),
            [key, *([published.signing_secret] if published and published.signing_secret else [])],
            part="signing",
        )
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
        published: PublishedSecret,
        observed: Sequence[ObservedWebhook],
    ) -> tuple[PublishedSecret | None, ObservedWebhook | None, str | None]:
        """Finish a create that a crash (or a lost answer) left unpublished, by replaying it.

        Returns what is published now, the webhook recovered (if any), and the rotation the
        recovered create carried out. A
        replayed webhook is published only if the account still has it: a deleted one is never
        reported, and its key is dropped, never used again.
        """
        pending = published.pending
        assert pending is not None
        after = replace(published, pending=None) if published.webhook_id or published.signing_secret else None
        if pending.params != _params_digest(desired):
            # The spec changed since: whatever that create left is an owned webhook without a
            # published secret, and the planner deletes it.
            await self._drop_pending(connection, pending)
            return after, None, None
        try:
            created = await self._send_create(connection, driver, credentials, target, desired, pending)
        except IdempotencyKeySpent:
            return after, None, None  # dropped: the planner deletes the leftover and creates afresh
        except (RequestRejected, NotFound):
            await self._drop_pending(connection, pending)
            return after, None, None
        # A fresh create (the first attempt was never saved) made a webhook the list cannot show yet.
        if created.replayed is not False and created.webhook.id not in {w.id for w in observed}:
            logger.info(
                "%s/%s: the replayed create answers with webhook %s, which is gone; dropping its key",
                connection.namespace,
                connection.name,
                created.webhook.id,
            )
            await self._drop_pending(connection, pending)
            return after, None, None
        logger.info("recovered webhook %s from an interrupted create", created.webhook.id)
        await self._publish(connection, created)
        if pending.rotation is not None:
            await self._mark_rotated(connection, pending.rotation)
        return PublishedSecret(created.webhook.id, created.signing_secret), created.webhook, pending.rotation

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
        verified: Mapping[str, Any] | None = None,
        first_report: bool = False,
    ) -> Connection:
        """Write what the pass found, unless status says it already. ``first_report``: this is the
        delayed first status itself; every other write settles that one first (_FirstReport)."""
        if not first_report:
            await self._settle_first_report(connection)
        previous = connection.status.get("conditions") or []
        status: dict[str, Any] = {
            "observedGeneration": connection.generation,
            "conditions": conditions.build(
                assessment, generation=connection.generation, previous=previous, scope=_scope(connection)
            ),
            "missingPermissions": sorted(missing),
        }
        if not keep_rest:
            status["account"] = {"id": account.id, "mode": account.mode.value} if account else None
            status["webhook"] = (
                {
                    "id": webhook.id,
                    # Shown, so without userinfo or query values; the processor has it whole.
                    "url": redaction.redact(webhook.url, _scope(connection)),
                    "status": webhook.status,
                    "events": list(webhook.events),
                }
                if webhook
                else None
            )
            # Recorded only when both the credentials and the permissions passed.
            both_passed = account is not None and assessment.permissions.status == "True"
            status["verifiedCredentials"] = dict(verified) if verified is not None and both_passed else None
        metrics.connection_conditions(
            connection.namespace, connection.name, connection.model.spec.processor, status["conditions"]
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
            and before.get("message") == conditions.message_of(stalled, _scope(connection))
        ):
            return
        await self._event(connection, "Warning", stalled.reason, stalled.message)

    async def _event(self, connection: Connection, type_: str, reason: str, message: str) -> None:
        level = logging.WARNING if type_ == "Warning" else logging.INFO
        scope = _scope(connection)
        message = redaction.redact(message, scope)
        logger.log(
            level,
            "%s/%s: %s: %s",
            connection.namespace,
            connection.name,
            reason,
            message,
            extra={redaction.SCOPE_ATTRIBUTE: scope},
        )
        await self._kube.post_event(
            connection, "Warning" if type_ == "Warning" else "Normal", reason, message
        )


# --- pure helpers ---------------------------------------------------------------------


def recheck_age(interval: float, uid: str) -> float:
    """How long a connection's recorded verification is reused: between (1 - RECHECK_SPREAD) and
    all of the recheck interval, the same for a connection in every process (derived from its
    UID, not drawn), so a fleet verified together is rechecked spread over the last part of the
    interval, and a restart does not move a connection's recheck."""
    share = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") / 2**64
    return interval * (1.0 - RECHECK_SPREAD * share)


async def _settled_hold(holding: asyncio.Future[Connection]) -> None:
    """A finalizer write started by a pass that ended before it needed it: let it finish (the
    connection is held for the next pass), whatever it answers; the next pass looks again."""
    try:
        await holding
    except Exception as error:  # the pass that needs the finalizer reports its failure
        logger.debug("procon's finalizer was not added (%s): the next pass tries again", type(error).__name__)


def _scope(connection: Connection) -> str:
    """The redaction scope of a connection's secrets and of everything shown about it."""
    return redaction.connection_scope(connection.namespace, connection.name)


def new_signing_key() -> str:
    """A webhook signing key for processors that take ours: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_idempotency_key() -> str:
    """A fresh key for one webhook create: random, so nobody can derive it from the connection.

    A V4 UUID, the shape processors suggest (docs/processors/*.md, "Idempotency"). A retry of the same
    create reuses it from the write-ahead record; a new create always gets a new one.
    """
    return f"procon-{uuid.uuid4()}"


def _params_digest(desired: DesiredWebhook) -> str:
    """What a replay must match: the create's parameters, hashed."""
    canonical = json.dumps(desired.create_parameters(), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


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
    """A webhook problem. Credentials and permissions were checked before it: left pending here,
    the reconcile fills in what it found (:func:`_with_earlier_steps`), never a blanket "held"."""
    verdict = Verdict("False", reason, message)
    return Assessment(webhook=verdict, stalled=verdict)


def _with_earlier_steps(
    assessment: Assessment,
    account: Account | None,
    report: PermissionReport | None,
    recorded: Verdict | None = None,
) -> Assessment:
    """``assessment`` with the verdicts of the steps that passed before it stopped (``recorded``:
    the permissions verdict taken over from the status instead of checking again)."""
    return replace(
        assessment,
        credentials=_credentials_ok(account)
        if assessment.credentials == conditions.PENDING
        else assessment.credentials,
        permissions=(recorded or _permissions_ok(report))
        if assessment.permissions == conditions.PENDING
        else assessment.permissions,
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


def _unknown_message(processor: str, driver: ProcessorDriver, report: PermissionReport) -> str:
    """Names procon does not know: a typo or another processor's vocabulary; no grant can help."""
    message = (
        f"not a {processor} {driver.permission_noun} procon knows: "
        + ", ".join(report.unknown)
        + "; correct or remove it in spec.requiredPermissions"
    )
    if report.missing:
        message += "; the credentials also lack: " + ", ".join(report.missing)
    return message


def _missing_message(required: Sequence[str], driver: ProcessorDriver, report: PermissionReport) -> str:
    message = "the credentials lack: " + ", ".join(report.missing)
    if report.unverifiable:
        message += "; cannot be verified: " + ", ".join(report.unverifiable)
    advice = driver.missing_permissions_advice(list(required))
    if advice:
        message += f". {advice}"
    return message

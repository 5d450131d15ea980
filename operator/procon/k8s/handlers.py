"""kopf glue: when to reconcile which connection.

kopf watches ProcessorConnections and credentials Secrets; its ``on.event``
handlers turn what they see into keys (namespace/name) on a work queue
(:mod:`procon.k8s.workqueue`), and a bounded set of workers runs the
reconciler for them. One key is never reconciled by two workers at once; a
key queued while it is being reconciled runs again after, if what queued it
is still news then. What a worker does next with a key follows from the
reconcile's outcome: the drift check after the drift interval (jittered), a
retry after its backoff, nothing for a connection that is gone.

Keys are served by priority: changes first (a spec edit, a new connection, a
change or deletion of a Secret it references), then retries, then periodic
drift checks, so a wave of drift checks never delays a new connection.

After a start, a connection whose status shows it Ready for its current
generation (any rotation asked for carried out) first gets a look at
Kubernetes only, at drift priority (``_resume``: the connection and its
signing Secret, no processor call): if the last process left work on it
unfinished (a create's write-ahead record, a rotation, a replacement webhook
not yet in status, a signing Secret gone) it is reconciled at once; otherwise
its drift check is scheduled at a random point of the drift interval, so a
restart neither checks every connection at once nor asks the processor what
the status already answers. A change seen before that look is reconciled as a
change. A watch's listing of Secrets (no event type) queues nothing for a
Secret no reconcile has read (each connection reads its Secrets in its first
pass), but does for one a reconcile found absent: its connection waits for it.

Wake-ups come from:

- the connection itself, when its generation changes (a spec edit) or a
  trigger annotation does;
- a Secret it references: its credentials Secret, through kopf's Secret watch,
  an ``on.event`` handler, not ``on.create``/``on.update``, because those
  store a copy of the object, Secret data included, in an annotation; the
  signing secret it publishes, through a metadata-only watch of procon's own
  Secrets (:mod:`procon.k8s.secret_watch`). Both are filtered by label on the
  API server, so no other Secret reaches the operator.

Deletion is a pass like any other: the reconciler adds procon's finalizer
before it first acts for a connection, and a connection being deleted that it
holds is queued as a change; its pass cleans up and releases it, or retries
with backoff, on the same workers. kopf has no change handler (on.create,
on.update, on.delete), so it adds no finalizer and writes nothing to the object:
a clean-up that waits for a processor holds a procon worker, never one of kopf's
event workers, which every other connection's events need.

What the operator keeps in memory about a connection goes with it, on every
path: a reconcile that finds it gone from the API server, or releases it,
drops everything kept (queue, wake-up checks, failure counts, the Kube
adapter's and the reconciler's stores: no DELETED event may come, since a watch
that lists afresh reports what is there, not what vanished), and so does the
watch's DELETED event (whether procon released the finalizer or someone else
did). A connection deleted and created again while a pass read the old one is
reconciled, not forgotten. Secret events only queue
connections the queue knows, never create state for a connection that has
none.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web
from kubernetes_asyncio.client.exceptions import ApiException

from procon import metrics, processors
from procon.api.v1alpha1 import FINALIZER, GROUP, PLURAL, VERSION
from procon.k8s import metrics_server
from procon.k8s.bookkeeping import NoDiffBase
from procon.k8s.kube import CONNECTION_LABEL, Kube, api_client
from procon.k8s.secret_watch import watch_managed_secrets
from procon.k8s.workqueue import Key, Priority, WorkQueue
from procon.processors.calls import CallAdmission
from procon.processors.plugin import DriverContext
from procon.reconcile import annotations as procon_annotations
from procon.reconcile.accounts import account_drivers
from procon.reconcile.credentials_access import CREDENTIALS_SELECTOR
from procon.reconcile.reconciler import Reconciler
from procon.reconcile.retry import FIRST_DELAY, MAX_DELAY
from procon.redaction import install_log_redaction
from procon.settings import LEGACY_DEFAULT_CLUSTER_NAME, OperatorSettings

logger = logging.getLogger("procon")

SECRETS = ("", "v1", "secrets")
# kopf's own finalizer, which it never adds (it has no change handler), and must not be procon's:
# kopf removes a finalizer of its name that none of its handlers needs.
KOPF_FINALIZER = "kopf.procon.dev/unused"
# How long a stopping operator waits for reconciles in progress (kopf gave its daemons as long).
WORKER_STOP_TIMEOUT = 10.0
# kopf's per-object event workers at once, and how long an idle one stays (see startup).
KOPF_WORKERS = 128
KOPF_WORKER_IDLE_SECONDS = 0.05
# Objects per page of a watch's first listing (see startup).
LIST_PAGE_SIZE = 500


@dataclass
class Runtime:
    """What the handlers share: built once at start-up, kept in kopf's memo."""

    settings: OperatorSettings
    kube: Kube
    reconciler: Reconciler
    queue: WorkQueue = field(default_factory=WorkQueue)
    # Per key being reconciled: the checks of the wake-ups that came meanwhile. A watch event
    # can outrun the answer to the request that caused it (the operator's own Secret write,
    # say), so each is run again after the reconcile; only if one still holds does the key run
    # again, and a reconcile that already saw the change does not run twice for it.
    reasons: dict[Key, list[Callable[[], bool]]] = field(default_factory=dict)
    # Keys queued by a change seen by a watch (or first seen unsettled), until their next pass,
    # and when the first such change was seen (see _reconcile_key).
    changed: dict[Key, float] = field(default_factory=dict)
    # Keys first seen settled after the start, not looked at yet (see _resume).
    resuming: set[Key] = field(default_factory=set)
    # Per key whose reconciles failed unexpectedly in a row: how many (see _Backoff).
    failures: dict[Key, int] = field(default_factory=dict)
    # (namespace, Secret name) -> names of the connections whose spec names it, and the reverse:
    # which connections a Secret change concerns. procon's own and not a kopf index: kopf holds
    # every handler until an index has seen every object, and with its event workers bounded
    # (KOPF_WORKERS) a start with more connections than workers never got there.
    secret_users: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    secrets_named: dict[Key, frozenset[tuple[str, str]]] = field(default_factory=dict)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    busy: set[asyncio.Task[None] | None] = field(default_factory=set)  # workers in a reconcile
    stopping: bool = False
    signing_watch: asyncio.Task[None] | None = None
    metrics_server: web.AppRunner | None = None
    # Run at the stop: a driver holding connections open closes them with its (optional) aclose.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def wake(self, namespace: str, name: str, still_new: Callable[[], bool]) -> None:
        """Queue a known connection for a change (a connection the queue does not know is read
        afresh when it first comes anyway)."""
        key = (namespace, name)
        if not self.queue.is_known(key):
            return
        if self.queue.is_active(key):
            self.reasons.setdefault(key, []).append(still_new)
            return
        self.saw_change(key)
        self.queue.add(key, Priority.CHANGE)

    def saw_change(self, key: Key) -> None:
        """Remember that a change to ``key`` was seen, and the first moment since its last pass."""
        self.changed.setdefault(key, time.monotonic())

    def names_secrets(self, namespace: str, name: str, secrets: frozenset[tuple[str, str]]) -> None:
        """Record which Secrets the connection's spec names now."""
        key = (namespace, name)
        before = self.secrets_named.get(key, frozenset())
        if before == secrets:
            return
        for secret in before - secrets:
            users = self.secret_users.get(secret)
            if users is not None:
                users.discard(name)
                if not users:
                    del self.secret_users[secret]
        for secret in secrets - before:
            self.secret_users.setdefault(secret, set()).add(name)
        if secrets:
            self.secrets_named[key] = secrets
        else:
            self.secrets_named.pop(key, None)

    def forget(self, namespace: str, name: str) -> None:
        """The connection is gone: drop everything kept about it."""
        key = (namespace, name)
        self.names_secrets(namespace, name, frozenset())
        self.queue.forget(key)
        self.reasons.pop(key, None)
        self.failures.pop(key, None)
        self.resuming.discard(key)
        self.changed.pop(key, None)
        self.kube.forget(namespace, name)
        self.reconciler.forget(namespace, name)
        metrics.forget_connection(namespace, name)

    def state_entries(self) -> dict[str, int]:
        """How many entries each per-connection store holds: all go back to 0 with the connections."""
        return {
            **{f"queue_{store}": count for store, count in self.queue.state_entries().items()},
            "wakeup_reasons": len(self.reasons),
            "secret_users": len(self.secret_users),
            "failure_counts": len(self.failures),
            "resuming": len(self.resuming),
            "changed": len(self.changed),
            **self.kube.state_entries(),
            **self.reconciler.state_entries(),
            "condition_records": metrics.connection_records(),
        }


def _ns(namespace: str | None) -> str:
    """ProcessorConnections are namespaced; kopf types the kwarg for cluster-scoped resources too."""
    if not namespace:
        raise kopf.PermanentError("a namespaced object without a namespace")
    return namespace


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    install_log_redaction()
    config = OperatorSettings.from_env()
    # kopf's own bookkeeping carries procon's name, not kopf's.
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="procon.dev")
    # No copy of the object in its annotations: procon.k8s.bookkeeping says why.
    settings.persistence.diffbase_storage = NoDiffBase()
    # Only the events procon posts itself (see procon.k8s.kube), never log lines.
    settings.posting.enabled = False
    # Re-establish watches that went silent behind a load balancer (kopf >= 1.44).
    settings.watching.inactivity_timeout = 70
    settings.watching.server_timeout = 300
    # kopf runs a worker per object with events; a burst (an apply of thousands) would have
    # thousands at once, each holding its object's body while it waits on the API server (at
    # 10,000 connections: 500 workers peaked past 256 MiB, 64 stayed near 210). The handlers
    # only queue keys, so a bound keeps up if an idle worker goes at
    # once: kopf queues every event beyond the bound with its object's body, and with workers
    # that lingered 0.5 s (at most 256 objects a second) a start's listing of 10,000 connections
    # piled up there (peak RSS across a restart: 307 MiB with 0.5 s, 204 MiB with 0.05 s).
    settings.queueing.worker_limit = KOPF_WORKERS
    # A watch's first listing in pages: 10,000 connections listed at once came as one answer of
    # tens of MiB, which took the operator past 450 MiB as it was decoded, and the API server
    # answered a second such list with 429 while the first was being served.
    settings.watching.chunk_size = LIST_PAGE_SIZE
    settings.queueing.idle_timeout = KOPF_WORKER_IDLE_SECONDS
    # Only credentials Secrets that opted in, filtered by the API server: the
    # data of every other Secret never reaches the operator (handler-level
    # `labels=` filters would only drop events after receiving them).
    settings.watching.label_selectors[SECRETS] = CREDENTIALS_SELECTOR

    api = await api_client()
    # A credentials Secret the watch delivered is read afresh at least every drift interval.
    kube = Kube(api, credentials_max_age=config.drift_interval)
    cluster = config.cluster_name or await _cluster_identity(kube)
    if cluster == LEGACY_DEFAULT_CLUSTER_NAME:
        logger.warning(
            "PROCON_CLUSTER_NAME=%s is the name every earlier procon used when none was set: another "
            "cluster sharing a processor account may use it too; unset it to use this cluster's UID",
            cluster,
        )
    # A driver's cache never outlives a recheck: a verification asked for again must reach the processor.
    context = DriverContext(
        permission_cache_ttl=min(config.permission_cache_ttl, config.permission_recheck_interval),
        recheck_interval=config.permission_recheck_interval,
    )
    # Listings shared per account and every request within its account's budget and the bound on
    # requests in flight (procon.reconcile.accounts, procon.processors.calls).
    processor_drivers = {
        plugin.name: plugin.driver(config.processor_env, context) for plugin in processors.plugins()
    }
    drivers = account_drivers(
        processor_drivers,
        {plugin.name: plugin.rate_limit for plugin in processors.plugins()},
        CallAdmission(config.max_concurrent_calls),
        max_age=config.drift_interval,
    )
    runtime = Runtime(
        settings=config,
        kube=kube,
        reconciler=Reconciler(
            kube,
            drivers,
            cluster_name=cluster,
            reconcile_timeout=config.reconcile_timeout,
            recheck_interval=config.permission_recheck_interval,
        ),
    )
    runtime.closers = [
        close for driver in processor_drivers.values() if (close := getattr(driver, "aclose", None))
    ]
    metrics.track_state_entries(runtime.state_entries)
    runtime.metrics_server = await metrics_server.serve(
        api, config.metrics_port, cert_file=config.metrics_cert_file, key_file=config.metrics_key_file
    )
    runtime.signing_watch = asyncio.create_task(
        watch_managed_secrets(
            kube.core,
            config.namespaces,
            lambda type_, meta: _signing_secret_changed(runtime, type_, meta),
            kube.signing_index,
        ),
        name="procon signing-secret watch",
    )
    runtime.workers = [
        asyncio.create_task(_work(runtime), name=f"procon reconcile worker {number}")
        for number in range(config.reconcile_workers)
    ]
    memo["runtime"] = runtime
    logger.info("reconcile workers started: %d", config.reconcile_workers)
    logger.info(
        "procon started: %s, drift interval %.0fs, at most %d processor requests in flight, cluster %s",
        ", ".join(f"{p.name} {p.describe(config.processor_env)}" for p in processors.plugins()),
        config.drift_interval,
        config.max_concurrent_calls,
        cluster,
    )


async def _cluster_identity(kube: Kube) -> str:
    """This cluster's default identity; without it the operator does not start, for a shared
    identity would let two clusters take each other's webhooks for their own."""
    try:
        return await kube.cluster_uid()
    except ApiException as error:
        raise kopf.PermanentError(
            "cannot read the kube-system namespace to identify this cluster "
            f"({error.status} {error.reason}): grant get on namespaces/kube-system (the chart does) "
            "or set PROCON_CLUSTER_NAME"
        ) from None


def _secrets_named(namespace: str, spec: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """The Secrets a connection's spec names: its credentials and its signing secret."""
    credentials = (spec.get("credentialsSecretRef") or {}).get("name")
    signing = ((spec.get("webhook") or {}).get("signingSecretRef") or {}).get("name")
    return frozenset((namespace, secret) for secret in (credentials, signing) if secret)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return
    if runtime.signing_watch is not None:
        runtime.signing_watch.cancel()
    # Idle workers stop at once; a reconcile in progress gets a moment to finish.
    runtime.stopping = True
    for worker in runtime.workers:
        if worker not in runtime.busy:
            worker.cancel()
    if runtime.workers:
        finished_and_not = await asyncio.wait(runtime.workers, timeout=WORKER_STOP_TIMEOUT)
        for worker in finished_and_not[1]:
            worker.cancel()
    if runtime.metrics_server is not None:
        await runtime.metrics_server.cleanup()
    for close in runtime.closers:
        try:
            await close()
        except Exception:  # the stop goes on: each driver's connections are closed apart
            logger.warning("could not close a processor client's connections", exc_info=True)


@kopf.on.event(*SECRETS)
async def secret_changed(
    type: str,  # kopf's name for the event type (ADDED, MODIFIED, DELETED)
    namespace: str | None,
    name: str,
    meta: Mapping[str, Any],
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A credentials Secret (labelled procon.dev/credentials=true) changed: keep it for the
    reconciles of the connections that reference it, and wake them."""
    metrics.watch_event_seen()
    metrics.secret_event_received("credentials")
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return
    # First the cache, so the reconcile this event queues reads this very version.
    runtime.kube.credentials_delivered(type, body)
    namespace = _ns(namespace)
    if _listed_unseen(runtime.kube, type, namespace, name):
        return
    still_new = _secret_still_new(runtime.kube, type, namespace, name, str(meta.get("resourceVersion")))
    if not still_new():
        return  # a reconcile has read (or written) this very version
    for connection in sorted(runtime.secret_users.get((namespace, name), ())):
        logger.debug("%s/%s: Secret %s changed (%s)", namespace, connection, name, type)
        runtime.wake(namespace, connection, still_new)


def _signing_secret_changed(runtime: Runtime, type_: str | None, meta: Mapping[str, Any]) -> None:
    """A Secret labelled managed-by=procon changed: wake the connection its label names, if it runs."""
    metrics.watch_event_seen()
    metrics.secret_event_received("signing")
    namespace, name = meta.get("namespace"), meta.get("name")
    connection = (meta.get("labels") or {}).get(CONNECTION_LABEL)
    if not (namespace and name and connection):
        return
    if _listed_unseen(runtime.kube, type_, str(namespace), str(name)):
        return
    version = str(meta.get("resourceVersion"))
    still_new = _secret_still_new(runtime.kube, type_, str(namespace), str(name), version)
    if still_new():
        logger.debug("%s/%s: Secret %s changed (%s)", namespace, connection, name, type_)
        runtime.wake(str(namespace), str(connection), still_new)


def _listed_unseen(kube: Kube, type_: str | None, namespace: str, name: str) -> bool:
    """A Secret in a watch's listing (no event type) that no reconcile of this process has read:
    after a start, that is every Secret, and none of them is news. Each connection reads its
    Secrets in its first reconcile (and a changed credentials Secret shows there against the
    version its status records as verified). A Secret a reconcile read and found absent is
    news when listed: its connection is waiting for it, and a watch that lists afresh (after
    its connection broke or expired) delivers the Secret created meanwhile this way only."""
    return type_ is None and not kube.has_read_secret(namespace, name)


def _secret_still_new(
    kube: Kube, type_: str | None, namespace: str, name: str, version: str
) -> Callable[[], bool]:
    """Whether a Secret event is still news: a reconcile may have read (or written) that version."""

    def still_new() -> bool:
        if type_ == "DELETED":
            return kube.secret_believed_present(namespace, name)
        return not kube.has_seen_secret(namespace, name, version)

    return still_new


@kopf.on.event(GROUP, VERSION, PLURAL)
async def connection_changed(
    type: str,  # kopf's name for the event type (ADDED, MODIFIED, DELETED; None while listing)
    namespace: str | None,
    name: str,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    metrics.watch_event_seen()
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return
    namespace = _ns(namespace)
    key = (namespace, name)
    if type == "DELETED":
        runtime.forget(namespace, name)
        return
    deleting = bool(meta.get("deletionTimestamp"))
    if deleting and FINALIZER not in (meta.get("finalizers") or ()):
        # procon's part is done, or it never acted for it: nothing to keep (a pass queued or in
        # progress finds it so and drops what is kept; so does the DELETED event).
        return
    runtime.names_secrets(namespace, name, _secrets_named(namespace, spec))
    runtime.kube.watched(namespace, name, str(meta.get("resourceVersion")))
    # A deletion begun is a change like a spec edit: the API server moves the generation when it
    # sets the deletion timestamp, and the pass that reads it cleans up.
    generation = int(meta.get("generation") or 0)
    annotations = dict(meta.get("annotations") or {})
    if not runtime.queue.is_known(key):
        # First sight (a new connection, or every connection after a start).
        if not deleting and _settled(status, generation, annotations):
            # Ready for this very spec when the operator last looked: a look at what the last
            # process may have left unfinished (Kubernetes reads only, behind every change),
            # then its drift check at a random point of the interval (see _resume).
            runtime.resuming.add(key)
            runtime.queue.add(key, Priority.DRIFT)
        else:
            runtime.saw_change(key)
            runtime.queue.add(key, Priority.CHANGE)
        return
    # Status writes and procon's own annotations do not bump the generation,
    # so they never queue the reconcile that made them; nor does a generation
    # a reconcile has already read.
    kube = runtime.kube

    def still_new() -> bool:
        return not kube.has_seen_generation(namespace, name, generation, annotations)

    if still_new():
        logger.debug("%s/%s: generation %s or a trigger annotation is new", namespace, name, generation)
        runtime.wake(namespace, name, still_new)


def _settled(status: Mapping[str, Any], generation: int, annotations: Mapping[str, str]) -> bool:
    """Whether the status says Ready for this generation with every request carried out (a
    rotation asked for by annotation, which moves no generation): nothing to do but the drift check."""
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    rotation = procon_annotations.rotation(annotations)
    return bool(
        ready
        and ready.get("status") == "True"
        and ready.get("observedGeneration", generation) == generation
        and status.get("observedGeneration") == generation
        and (not rotation or rotation == status.get("signingSecretRotation"))
    )


class _Backoff:
    """Jittered exponential backoff for reconciles that failed unexpectedly (an exception, not a
    processor error, whose retry the reconciler schedules and reports itself): 1 s doubling to
    the same cap, so no connection falls minutes behind."""

    @staticmethod
    def delay(failures: int, initial: float = FIRST_DELAY, maximum: float = MAX_DELAY) -> float:
        base: float = min(initial * 2.0 ** max(failures - 1, 0), maximum)
        return base * random.uniform(0.5, 1.0)  # noqa: S311


async def _work(runtime: Runtime) -> None:
    """One worker: take the most urgent ready key, reconcile it, schedule what comes next."""
    queue = runtime.queue
    me = asyncio.current_task()
    while not runtime.stopping:
        key = await queue.get()
        runtime.busy.add(me)
        try:
            await _reconcile_key(runtime, key)
        except Exception:
            # Only a bug in the scheduling itself gets here: the key is checked again later.
            logger.exception("scheduling %s/%s failed", *key)
            queue.add_after(key, MAX_DELAY, Priority.RETRY)
        finally:
            runtime.busy.discard(me)
            queue.done(key)


async def _resume(runtime: Runtime, key: Key) -> bool:
    """The first pass over a connection first seen settled after a start: True when it needs a
    full reconcile now (the last process left work on it unfinished). Otherwise its drift check
    is scheduled at a random point of the interval, so a restart neither checks every connection
    with the processor at once nor asks it anything already answered."""
    namespace, name = key
    started = time.monotonic()
    unfinished = await runtime.reconciler.left_unfinished(namespace, name)
    if unfinished is None:
        runtime.queue.forget(key)
        runtime.reasons.pop(key, None)
        return False
    if unfinished:
        return True
    metrics.reconciled("unknown", "resumed", time.monotonic() - started)
    if not runtime.reasons.get(key):
        delay = runtime.settings.drift_interval * random.random()  # noqa: S311 - jitter
        runtime.queue.add_after(key, delay, Priority.DRIFT)
    else:
        runtime.reasons.pop(key, None)
        runtime.saw_change(key)
        runtime.queue.add(key, Priority.CHANGE)
    return False


async def _reconcile_key(runtime: Runtime, key: Key) -> None:
    namespace, name = key
    queue = runtime.queue
    # Whether this pass was asked for by a change (the connection's, its Secret's): it then acts
    # on the account as it is now; a periodic check (and the first, after a start) may act on
    # the account's shared listing (procon.reconcile.accounts).
    seen_at = runtime.changed.pop(key, None)
    resuming = key in runtime.resuming
    runtime.resuming.discard(key)
    # A change seen while the key waited for its first look is acted on: the look reads only
    # what the last process may have left unfinished, not a spec edit or a new Secret version.
    if resuming and seen_at is None:
        try:
            if not await _resume(runtime, key):
                return
        except Exception:
            logger.exception("looking at %s/%s after the start failed; reconciling it", namespace, name)
    started = time.monotonic()
    processor = "unknown"
    retry_in: float | None = None
    outcome_absent = False
    try:
        outcome = await runtime.reconciler.reconcile(
            namespace, name, changed=seen_at is not None, changed_since=seen_at
        )
        state, processor, retry_in = outcome.state, outcome.processor, outcome.retry_in
        outcome_absent = outcome.absent
    except Exception:
        logger.exception("reconcile of %s/%s failed", namespace, name)
        state = "error"
    if state != "gone":
        metrics.reconciled(processor, state, time.monotonic() - started)
    reasons = [reason for reason in runtime.reasons.pop(key, []) if reason()]
    if state == "gone" and reasons:
        # The key names a new connection now (deleted and created again while this pass read
        # the old one): it is reconciled, not forgotten.
        runtime.saw_change(key)
        queue.add(key, Priority.CHANGE)
        return
    if state == "gone":
        runtime.failures.pop(key, None)
        queue.forget(key)
        if outcome_absent:
            # No DELETED event may come (a watch that listed afresh reports what is there, not
            # what vanished; or it came while this pass ran and wrote its status again).
            runtime.forget(namespace, name)
        return
    if reasons:
        runtime.saw_change(key)
        queue.add(key, Priority.CHANGE)  # changed while being reconciled, after it was read
    if state == "error":
        failures = runtime.failures[key] = runtime.failures.get(key, 0) + 1
        queue.add_after(key, _Backoff.delay(failures), Priority.RETRY)
        return
    runtime.failures.pop(key, None)
    if state == "retrying" and retry_in is not None:
        queue.add_after(key, retry_in, Priority.RETRY)  # the delay the status announces
    elif state == "retrying":
        queue.add_after(key, _Backoff.delay(1), Priority.RETRY)
    else:
        delay = runtime.settings.drift_interval * random.uniform(0.8, 1.2)  # noqa: S311
        queue.add_after(key, delay, Priority.DRIFT)


@kopf.on.probe(id="watch")
def watch_is_live(memo: kopf.Memo, **_: Any) -> dict[str, float]:
    """Liveness: fail when a connection changed and its watch event has not come.

    Plain "time since the last event" would fail a healthy operator in a quiet
    cluster. The reconcile loops read each connection at least every drift
    interval; a read that finds a version the watch never delivered, for
    longer than PROCON_WATCH_QUIET_SECONDS, means the watch has died (a
    known kopf failure: docs/design/operator-conventions.md, "Watches that go silent"), and a restart
    is the cure.
    """
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return {"seconds_since_last_watch_event": metrics.seconds_since_watch_event()}
    missed_for = runtime.kube.unwatched.longest()
    if missed_for > runtime.settings.watch_quiet_seconds:
        raise kopf.PermanentError(f"a change has gone unseen by the watch for {missed_for:.0f}s")
    return {
        "seconds_since_last_watch_event": metrics.seconds_since_watch_event(),
        "unwatched_for": missed_for,
    }

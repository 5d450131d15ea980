"""kopf glue: when to reconcile which connection.

Each ProcessorConnection gets one kopf daemon that runs the reconcile in a
loop, so reconciles of one connection never overlap. The loop sleeps until
the drift interval (jittered, so a restart does not check every connection
at once), a backoff after a transient error, or a wake-up, whichever comes
first. Wake-ups come from:

- the connection itself, when its generation changes (a spec edit);
- a Secret it references: its credentials Secret, through kopf's Secret watch,
  an ``on.event`` handler, not ``on.create``/``on.update``, because those
  store a copy of the object, Secret data included, in an annotation; the
  signing secret it publishes, through a metadata-only watch of procon's own
  Secrets (:mod:`procon.k8s.secret_watch`). Both are filtered by label on the
  API server, so no other Secret reaches the operator.

Deletion runs the clean-up in an ``on.delete`` handler (which makes kopf add
its finalizer) after kopf has stopped the daemon.

What the operator keeps in memory about a connection goes with it, on every
path: the daemon's exit, the on.delete handler, and the watch's DELETED
event (the one sure sign, whether procon released the finalizer or someone
else did). Watch events only wake a running loop, never create state for a
connection that has none.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web
from kubernetes_asyncio.client.exceptions import ApiException

from procon import metrics, processors
from procon.api.v1alpha1 import GROUP, PLURAL, VERSION
from procon.k8s import metrics_server
from procon.k8s.bookkeeping import NoDiffBase
from procon.k8s.kube import CONNECTION_LABEL, Kube, api_client
from procon.k8s.secret_watch import watch_managed_secrets
from procon.processors.calls import CallAdmission
from procon.processors.plugin import DriverContext
from procon.reconcile.accounts import account_drivers
from procon.reconcile.credentials_access import CREDENTIALS_SELECTOR
from procon.reconcile.reconciler import Reconciler
from procon.reconcile.retry import FIRST_DELAY, MAX_DELAY
from procon.redaction import connection_scope, install_log_redaction, redact
from procon.settings import LEGACY_DEFAULT_CLUSTER_NAME, OperatorSettings

logger = logging.getLogger("procon")

FINALIZER = "procon.dev/finalizer"
SECRETS = ("", "v1", "secrets")
DELETE_RETRIES = 6


class Wakeup:
    """Wakes a connection's loop, with the reasons, so a reconcile that already saw a change
    does not run again for it.

    A watch event can outrun the answer to the request that caused it (the
    operator's own Secret write, say): when it arrives, the version is not yet
    known as seen. Each reason is a check that is run again after the
    reconcile; if none still holds, the wake-up is dropped.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._reasons: list[Callable[[], bool]] = []

    def set(self, still_new: Callable[[], bool]) -> None:
        self._reasons.append(still_new)
        self.event.set()

    def begin(self) -> None:
        """A reconcile starts: everything so far is about to be read."""
        self.event.clear()
        self._reasons.clear()

    def settle(self) -> None:
        """A reconcile ended: keep only the reasons it did not cover."""
        self._reasons = [reason for reason in self._reasons if reason()]
        if not self._reasons:
            self.event.clear()


@dataclass
class Runtime:
    """What the handlers share: built once at start-up, kept in kopf's memo."""

    settings: OperatorSettings
    kube: Kube
    reconciler: Reconciler
    wakeups: dict[tuple[str, str], Wakeup] = field(default_factory=dict)
    signing_watch: asyncio.Task[None] | None = None
    metrics_server: web.AppRunner | None = None

    def wake(self, namespace: str, name: str, still_new: Callable[[], bool]) -> None:
        """Wake the connection's loop, if it runs (a loop that starts later reads everything anyway)."""
        wakeup = self.wakeups.get((namespace, name))
        if wakeup is not None:
            wakeup.set(still_new)

    def forget(self, namespace: str, name: str) -> None:
        """The connection is gone: drop everything kept about it (its loop drops its own wake-up)."""
        self.kube.forget(namespace, name)
        self.reconciler.forget(namespace, name)
        metrics.forget_connection(namespace, name)

    def state_entries(self) -> dict[str, int]:
        """How many entries each per-connection store holds: all go back to 0 with the connections."""
        return {
            "wakeups": len(self.wakeups),
            **self.kube.state_entries(),
            **self.reconciler.state_entries(),
            "condition_series": metrics.connection_series(),
        }


def _ns(namespace: str | None) -> str:
    """ProcessorConnections are namespaced; kopf types the kwarg for cluster-scoped resources too."""
    if not namespace:
        raise kopf.PermanentError("a namespaced object without a namespace")
    return namespace


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    install_log_redaction()
    config = OperatorSettings.from_env()
    # kopf's own bookkeeping carries procon's name, not kopf's.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="procon.dev")
    # No copy of the object in its annotations: procon.k8s.bookkeeping says why.
    settings.persistence.diffbase_storage = NoDiffBase()
    # Only the events procon posts itself (see procon.k8s.kube), never log lines.
    settings.posting.enabled = False
    # Re-establish watches that went silent behind a load balancer (kopf >= 1.44).
    settings.watching.inactivity_timeout = 70
    settings.watching.server_timeout = 300
    # Only credentials Secrets that opted in, filtered by the API server: the
    # data of every other Secret never reaches the operator (handler-level
    # `labels=` filters would only drop events after receiving them).
    settings.watching.label_selectors[SECRETS] = CREDENTIALS_SELECTOR

    api = await api_client()
    kube = Kube(api)
    cluster = config.cluster_name or await _cluster_identity(kube)
    if cluster == LEGACY_DEFAULT_CLUSTER_NAME:
        logger.warning(
            "PROCON_CLUSTER_NAME=%s is the name every earlier procon used when none was set: another "
            "cluster sharing a processor account may use it too; unset it to use this cluster's UID",
            cluster,
        )
    context = DriverContext(permission_cache_ttl=config.permission_cache_ttl)
    # Listings shared per account and every request within its account's budget and the bound on
    # requests in flight (procon.reconcile.accounts, procon.processors.calls).
    drivers = account_drivers(
        {plugin.name: plugin.driver(config.processor_env, context) for plugin in processors.plugins()},
        {plugin.name: plugin.rate_limit for plugin in processors.plugins()},
        CallAdmission(config.max_concurrent_calls),
        max_age=config.drift_interval,
    )
    runtime = Runtime(
        settings=config,
        kube=kube,
        reconciler=Reconciler(
            kube, drivers, cluster_name=cluster, reconcile_timeout=config.reconcile_timeout
        ),
    )
    metrics.track_state_entries(runtime.state_entries)
    runtime.metrics_server = await metrics_server.serve(
        api, config.metrics_port, cert_file=config.metrics_cert_file, key_file=config.metrics_key_file
    )
    runtime.signing_watch = asyncio.create_task(
        watch_managed_secrets(
            kube.core, config.namespaces, lambda type_, meta: _signing_secret_changed(runtime, type_, meta)
        ),
        name="procon signing-secret watch",
    )
    memo["runtime"] = runtime
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


@kopf.index(GROUP, VERSION, PLURAL)
def referenced_secrets(
    namespace: str | None, name: str, spec: Mapping[str, Any], **_: Any
) -> dict[tuple[str, str], str]:
    """(namespace, Secret name) -> connection names: which connections a Secret change concerns."""
    refs: dict[tuple[str, str], str] = {}
    credentials = (spec.get("credentialsSecretRef") or {}).get("name")
    signing = ((spec.get("webhook") or {}).get("signingSecretRef") or {}).get("name")
    for secret in (credentials, signing):
        if secret:
            refs[(_ns(namespace), secret)] = name
    return refs


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return
    if runtime.signing_watch is not None:
        runtime.signing_watch.cancel()
    if runtime.metrics_server is not None:
        await runtime.metrics_server.cleanup()


@kopf.on.event(*SECRETS)
async def secret_changed(
    type: str,  # kopf's name for the event type (ADDED, MODIFIED, DELETED)
    namespace: str | None,
    name: str,
    meta: Mapping[str, Any],
    memo: kopf.Memo,
    referenced_secrets: kopf.Index[tuple[str, str], str] | None = None,
    **_: Any,
) -> None:
    """A credentials Secret (labelled procon.dev/credentials=true) changed: wake its connections."""
    metrics.watch_event_seen()
    metrics.secret_event_received("credentials")
    runtime = memo.get("runtime")
    if referenced_secrets is None or not isinstance(runtime, Runtime):
        return
    namespace = _ns(namespace)
    still_new = _secret_still_new(runtime.kube, type, namespace, name, str(meta.get("resourceVersion")))
    if not still_new():
        return  # a reconcile has read (or written) this very version
    for connection in referenced_secrets.get((namespace, name), []):
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
    version = str(meta.get("resourceVersion"))
    still_new = _secret_still_new(runtime.kube, type_, str(namespace), str(name), version)
    if still_new():
        logger.debug("%s/%s: Secret %s changed (%s)", namespace, connection, name, type_)
        runtime.wake(str(namespace), str(connection), still_new)


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
    type: str,  # kopf's name for the event type (ADDED, MODIFIED, DELETED)
    namespace: str | None,
    name: str,
    meta: Mapping[str, Any],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    metrics.watch_event_seen()
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return
    namespace = _ns(namespace)
    if type == "DELETED":
        runtime.forget(namespace, name)
        return
    runtime.kube.watched(namespace, name, str(meta.get("resourceVersion")))
    # Status writes and procon's own annotations do not bump the generation,
    # so they never wake the loop that made them; nor does a generation the
    # loop has already read.
    generation = int(meta.get("generation") or 0)
    annotations = dict(meta.get("annotations") or {})
    kube = runtime.kube

    def still_new() -> bool:
        return not kube.has_seen_generation(namespace, name, generation, annotations)

    if still_new():
        logger.debug("%s/%s: generation %s or a trigger annotation is new", namespace, name, generation)
        runtime.wake(namespace, name, still_new)


class _Backoff:
    """Jittered exponential backoff for reconciles that failed unexpectedly (an exception, not a
    processor error, whose retry the reconciler schedules and reports itself): 1 s doubling to
    the same cap, so no connection falls minutes behind."""

    def __init__(self, initial: float = FIRST_DELAY, maximum: float = MAX_DELAY) -> None:
        self._initial, self._maximum, self._next = initial, maximum, initial

    def next(self) -> float:
        delay = self._next * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        self._next = min(self._next * 2, self._maximum)
        return delay

    def reset(self) -> None:
        self._next = self._initial


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def connection_loop(
    namespace: str | None,
    name: str,
    spec: Mapping[str, Any],
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    runtime = _runtime(memo)
    namespace = _ns(namespace)
    key = (namespace, name)
    wakeup = runtime.wakeups[key] = Wakeup()
    try:
        await _run_loop(runtime, namespace, name, spec, stopped, wakeup)
    finally:
        # A successor (the same name, re-created) may have registered its own meanwhile.
        if runtime.wakeups.get(key) is wakeup:
            del runtime.wakeups[key]


async def _run_loop(
    runtime: Runtime,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    stopped: kopf.DaemonStopped,
    wakeup: Wakeup,
) -> None:
    backoff = _Backoff()
    # Whether this pass was asked for by a change (the connection's, its Secret's): it then acts on
    # the account as it is now; a periodic check (and the first, after a start) may act on the
    # account's shared listing (procon.reconcile.accounts).
    changed = False
    while not stopped:
        wakeup.begin()
        started = time.monotonic()
        processor = str(spec.get("processor", "unknown"))
        retry_in: float | None = None
        try:
            outcome = await runtime.reconciler.reconcile(namespace, name, changed=changed)
            state, processor, retry_in = outcome.state, outcome.processor, outcome.retry_in
        except Exception:
            logger.exception("reconcile of %s/%s failed", namespace, name)
            state = "error"
        if state != "gone":
            metrics.reconciled(processor, state, time.monotonic() - started)
        state = "retrying" if state == "error" else state
        wakeup.settle()
        if state == "gone":
            return
        if state == "retrying" and retry_in is not None:
            delay = retry_in  # the delay the status announces
        elif state == "retrying":
            delay = backoff.next()
        else:
            backoff.reset()
            delay = runtime.settings.drift_interval * random.uniform(0.8, 1.2)  # noqa: S311
        changed = await _sleep_until_woken(wakeup.event, stopped, delay)


async def _sleep_until_woken(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> bool:
    """Sleep ``delay`` seconds, or until woken; whether it was a wake-up (a change seen by a watch)."""
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return wakeup.is_set()


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


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=DELETE_RETRIES, backoff=2)
async def connection_deleted(namespace: str | None, name: str, retry: int, memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime(memo)
    namespace = _ns(namespace)
    try:
        await runtime.reconciler.finalize(namespace, name, final_attempt=retry >= DELETE_RETRIES - 1)
    except Exception as error:
        # kopf stores this text in an annotation on the connection: redacted like a message.
        raise kopf.TemporaryError(
            f"webhook clean-up failed, retrying: {redact(str(error), connection_scope(namespace, name))}",
            delay=2 ** min(retry, 5),
        ) from None
    # Not before: a retry still needs the credentials remembered for it.
    runtime.forget(namespace, name)

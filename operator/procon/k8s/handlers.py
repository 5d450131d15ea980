"""kopf glue: when to reconcile which connection.

Each ProcessorConnection gets one kopf daemon that runs the reconcile in a
loop, so reconciles of one connection never overlap. The loop sleeps until
the drift interval (jittered, so a restart does not check every connection
at once), a backoff after a transient error, or a wake-up, whichever comes
first. Wake-ups come from:

- the connection itself, when its generation changes (a spec edit);
- a Secret it references (credentials, or the signing secret it publishes):
  an ``on.event`` handler, not ``on.create``/``on.update``, because those
  store a copy of the object, Secret data included, in an annotation
  (reference operator-conventions.md §0.8).

Deletion runs the clean-up in an ``on.delete`` handler (which makes kopf add
its finalizer) after kopf has stopped the daemon.
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
from kubernetes_asyncio.client.exceptions import ApiException

from procon import metrics
from procon.api.v1alpha1 import GROUP, PLURAL, VERSION
from procon.k8s.kube import Kube, api_client
from procon.processors.base import ProcessorDriver
from procon.processors.checkout.driver import CheckoutDriver
from procon.processors.stripe import StripeDriver
from procon.reconcile.reconciler import Reconciler
from procon.reconcile.retry import FIRST_DELAY, MAX_DELAY
from procon.redaction import connection_scope, install_log_redaction, redact
from procon.settings import LEGACY_DEFAULT_CLUSTER_NAME, OperatorSettings

logger = logging.getLogger("procon")

FINALIZER = "procon.dev/finalizer"
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

    def wakeup(self, namespace: str, name: str) -> Wakeup:
        return self.wakeups.setdefault((namespace, name), Wakeup())


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
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="procon.dev", key="last-handled-configuration"
    )
    # Only the events procon posts itself (see procon.k8s.kube), never log lines.
    settings.posting.enabled = False
    # Re-establish watches that went silent behind a load balancer (kopf >= 1.44).
    settings.watching.inactivity_timeout = 70
    settings.watching.server_timeout = 300

    kube = Kube(await api_client())
    cluster = config.cluster_name or await _cluster_identity(kube)
    if cluster == LEGACY_DEFAULT_CLUSTER_NAME:
        logger.warning(
            "PROCON_CLUSTER_NAME=%s is the name every earlier procon used when none was set: another "
            "cluster sharing a processor account may use it too; unset it to use this cluster's UID",
            cluster,
        )
    drivers: dict[str, ProcessorDriver] = {
        "stripe": StripeDriver(config.stripe_api_base, permission_cache_ttl=config.permission_cache_ttl),
        "checkout": CheckoutDriver(
            config.checkout_api_base, config.checkout_auth_base, cache_ttl=config.permission_cache_ttl
        ),
    }
    metrics.serve(config.metrics_port)
    memo["runtime"] = Runtime(
        settings=config,
        kube=kube,
        reconciler=Reconciler(
            kube, drivers, cluster_name=cluster, reconcile_timeout=config.reconcile_timeout
        ),
    )
    logger.info(
        "procon started: stripe API %s, checkout API %s, drift interval %.0fs, cluster %s",
        config.stripe_api_base,
        config.checkout_api_base or "Checkout.com's",
        config.drift_interval,
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


@kopf.on.event("", "v1", "secrets")
async def secret_changed(
    type: str,  # kopf's name for the event type (ADDED, MODIFIED, DELETED)
    namespace: str | None,
    name: str,
    meta: Mapping[str, Any],
    memo: kopf.Memo,
    referenced_secrets: kopf.Index[tuple[str, str], str] | None = None,
    **_: Any,
) -> None:
    metrics.watch_event_seen()
    runtime = memo.get("runtime")
    if referenced_secrets is None or not isinstance(runtime, Runtime):
        return
    namespace = _ns(namespace)
    kube = runtime.kube
    version = str(meta.get("resourceVersion"))

    def still_new() -> bool:
        if type == "DELETED":
            return kube.secret_believed_present(namespace, name)
        return not kube.has_seen_secret(namespace, name, version)

    if not still_new():
        return  # a reconcile has read (or written) this very version
    for connection in referenced_secrets.get((namespace, name), []):
        logger.debug("%s/%s: Secret %s changed (%s)", namespace, connection, name, type)
        runtime.wakeup(namespace, connection).set(still_new)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def connection_changed(
    namespace: str | None, name: str, meta: Mapping[str, Any], memo: kopf.Memo, **_: Any
) -> None:
    metrics.watch_event_seen()
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return
    namespace = _ns(namespace)
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
        runtime.wakeup(namespace, name).set(still_new)


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
    wakeup = runtime.wakeup(namespace, name)
    backoff = _Backoff()
    while not stopped:
        wakeup.begin()
        started = time.monotonic()
        processor = str(spec.get("processor", "unknown"))
        retry_in: float | None = None
        try:
            outcome = await runtime.reconciler.reconcile(namespace, name)
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
        await _sleep_until_woken(wakeup.event, stopped, delay)
    runtime.wakeups.pop((namespace, name), None)


async def _sleep_until_woken(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@kopf.on.probe(id="watch")
def watch_is_live(memo: kopf.Memo, **_: Any) -> dict[str, float]:
    """Liveness: fail when a connection changed and its watch event has not come.

    Plain "time since the last event" would fail a healthy operator in a quiet
    cluster. The reconcile loops read each connection at least every drift
    interval; a read that finds a version the watch never delivered, for
    longer than PROCON_WATCH_QUIET_SECONDS, means the watch has died (a
    known kopf failure: reference operator-conventions.md §11), and a restart
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
    finally:
        runtime.kube.forget(namespace, name)

"""Runs kopf: alone, or only while this process holds its lease.

Without leader election (``PROCON_LEADER_ELECTION`` unset) kopf starts at once, as it always
did. With it, the process stands by until it takes the lease (:mod:`procon.k8s.leader_election`),
then starts kopf and renews the lease beside it:

- standing by, it runs none of kopf: no watch, no handler, no daemon, no timer. It serves
  the liveness endpoint (healthy while its election loop runs: a standby is live and ready,
  see the chart's README) and ``/metrics`` (``procon_leader`` 0), each on the port kopf's
  and the operator's own will take over;
- leading, kopf serves both, and the handlers run as before;
- losing the lease ends the process at once; SIGTERM stops kopf, then releases the lease.

A shard selector (``PROCON_SHARD_SELECTOR``, :mod:`procon.k8s.sharding`) is handed to kopf's
watches of ProcessorConnections here, before any handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlparse

import kopf
from aiohttp import web

from procon import metrics
from procon.api.v1alpha1 import GROUP, PLURAL, VERSION
from procon.k8s import metrics_server
from procon.k8s.leader_election import (
    KubeLeaseLock,
    LeaderElectionSettings,
    LeaderElector,
    LeadershipLost,
    Watchdog,
    exit_now,
)
from procon.settings import OperatorSettings

logger = logging.getLogger("procon")


def kopf_settings(shard_selector: str) -> kopf.OperatorSettings:
    """kopf's settings as procon starts it with: the shard's connections only, filtered by the API server."""
    settings = kopf.OperatorSettings()
    if shard_selector:
        settings.watching.label_selectors[GROUP, VERSION, PLURAL] = shard_selector
    return settings


def run(
    settings: OperatorSettings,
    election: LeaderElectionSettings,
    *,
    shard_selector: str = "",
    liveness_endpoint: str | None = None,
) -> None:
    """Run the operator until SIGTERM (or, with leader election, until the lease is lost)."""
    asyncio.run(_run(settings, election, shard_selector=shard_selector, liveness_endpoint=liveness_endpoint))


def _kopf(
    settings: OperatorSettings, shard_selector: str, liveness_endpoint: str | None
) -> Coroutine[Any, Any, None]:
    return kopf.operator(
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness_endpoint,
        settings=kopf_settings(shard_selector),
    )


async def _run(
    settings: OperatorSettings,
    election: LeaderElectionSettings,
    *,
    shard_selector: str,
    liveness_endpoint: str | None,
) -> None:
    if shard_selector:
        logger.info("reconciling only the connections selected by %r", shard_selector)
    if not election.enabled:
        metrics.leading("", True)
        with contextlib.suppress(asyncio.CancelledError):
            await _kopf(settings, shard_selector, liveness_endpoint)
        return

    from kubernetes_asyncio import client

    from procon.k8s.kube import api_client

    api = await api_client()
    elector = LeaderElector(
        KubeLeaseLock(client.CoordinationV1Api(api), election.namespace, election.lease_name), election
    )
    metrics.leading(election.lease_name, False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    standby = await _Standby.start(settings, api, elector, liveness_endpoint)
    try:
        acquired = await elector.acquire(stop)
    finally:
        await standby.close()
    if not acquired:
        logger.info("stopped while standing by for lease %s", election.lease)
        await api.close()
        return
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(number)  # kopf installs its own
    metrics.leading(election.lease_name, True)
    watchdog = Watchdog(elector.deadline)
    watchdog.start()
    # Created before kopf starts: kopf leaves the tasks it found running alone.
    renewing = asyncio.create_task(_renew(elector), name="procon lease renewal")
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await _kopf(settings, shard_selector, liveness_endpoint)
    finally:
        renewing.cancel()
        watchdog.stop()
        # kopf has stopped: nothing acts any more, so a standby may start now.
        await elector.release()
        metrics.leading(election.lease_name, False)
        await api.close()


async def _renew(elector: LeaderElector, on_lost: Callable[[str], None] = exit_now) -> None:
    try:
        await elector.keep_renewing()
    except LeadershipLost as lost:
        on_lost(str(lost))


class _Standby:
    """What a standby serves: its liveness endpoint and ``/metrics``, until it leads."""

    def __init__(self, runners: list[web.AppRunner]) -> None:
        self._runners = runners

    @classmethod
    async def start(
        cls, settings: OperatorSettings, api: object, elector: LeaderElector, liveness_endpoint: str | None
    ) -> _Standby:
        runners: list[web.AppRunner] = []
        if liveness_endpoint:
            runners.append(await _serve_health(liveness_endpoint, elector))
        served = await metrics_server.serve(
            api,  # type: ignore[arg-type]  # a kubernetes_asyncio ApiClient
            settings.metrics_port,
            cert_file=settings.metrics_cert_file,
            key_file=settings.metrics_key_file,
        )
        if served is not None:
            runners.append(served)
        return cls(runners)

    async def close(self) -> None:
        for runner in self._runners:
            await runner.cleanup()


def standby_health(elector: LeaderElector, now: float) -> tuple[bool, dict[str, object]]:
    """A standby is healthy while its election loop keeps trying: one stuck for a few rounds
    would never take over, and a restart is the cure. An unreachable API server is not its
    fault and fails no probe (each attempt ends at its timeout and counts)."""
    settings = elector.settings
    stale_after = 3 * (settings.renew_deadline + settings.retry_period)
    since = now - elector.last_attempt
    return since <= stale_after, {
        "leader": False,
        "lease": settings.lease,
        "holder": elector.holder,
        "seconds_since_last_attempt": round(since, 1),
    }


async def _serve_health(endpoint: str, elector: LeaderElector) -> web.AppRunner:
    parsed = urlparse(endpoint)

    async def health(_: web.Request) -> web.Response:
        healthy, body = standby_health(elector, time.monotonic())
        return web.json_response(body, status=200 if healthy else 500)

    application = web.Application()
    application.router.add_get(parsed.path or "/", health)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host=parsed.hostname or "0.0.0.0", port=parsed.port or 80).start()  # noqa: S104
    return runner

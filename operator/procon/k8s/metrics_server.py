"""``/metrics`` for authenticated, authorized scrapers only.

The metrics name every connection in the cluster, so they are not served to
whoever reaches the pod. As controller-runtime's
``WithAuthenticationAndAuthorization`` filter does, the API server decides:
the scraper's bearer token goes to a TokenReview (who is it?), then a
SubjectAccessReview asks whether that user may ``get`` the non-resource URL
``/metrics``. No token or an invalid one: 401; a valid one without the
permission: 403. The chart's ``<release>-metrics-reader`` ClusterRole grants it.

Answers are cached for a minute per token (its SHA-256, never the token),
so a scrape every few seconds costs the API server two requests a minute.
The liveness probe is kopf's, on its own port: the kubelet needs no token.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web
from kubernetes_asyncio import client
from prometheus_client import CONTENT_TYPE_LATEST

from procon import metrics

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
CACHE_SECONDS = 60.0
CACHE_SIZE = 1024


@dataclass(frozen=True)
class Decision:
    status: int  # 200, 401 or 403
    why: str


class ApiServerAuthorizer:
    """TokenReview, then SubjectAccessReview for ``get`` on ``/metrics``, with a small cache."""

    def __init__(self, api: client.ApiClient) -> None:
        self._authn = client.AuthenticationV1Api(api)
        self._authz = client.AuthorizationV1Api(api)
        self._cache: OrderedDict[str, tuple[float, Decision]] = OrderedDict()

    async def decide(self, authorization: str | None) -> Decision:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Decision(401, "no bearer token")
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        decision = await self._review(token)
        self._cache[key] = (time.monotonic() + CACHE_SECONDS, decision)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return decision

    async def _review(self, token: str) -> Decision:
        review = await self._authn.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        )
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return Decision(401, "the token was not accepted")
        user = status.user
        access = await self._authz.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=user.username,
                    groups=user.groups,
                    uid=user.uid,
                    extra=user.extra,
                    non_resource_attributes=client.V1NonResourceAttributes(path=METRICS_PATH, verb="get"),
                )
            )
        )
        if access.status is None or not access.status.allowed:
            return Decision(403, f"{user.username} may not get {METRICS_PATH}")
        return Decision(200, user.username)


def app(authorizer: ApiServerAuthorizer) -> web.Application:
    async def scrape(request: web.Request) -> web.StreamResponse:
        try:
            decision = await authorizer.decide(request.headers.get("Authorization"))
        except Exception as error:
            logger.warning("could not review a metrics scraper's token: %s", type(error).__name__)
            return web.Response(status=503, text="the API server could not review the token\n")
        if decision.status != 200:
            logger.debug("metrics scrape refused (%s): %s", decision.status, decision.why)
            text = "Unauthorized\n" if decision.status == 401 else "Forbidden\n"
            return web.Response(status=decision.status, text=text)
        # Streamed, a piece at a time: a large fleet's body is tens of MiB of text.
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        await response.prepare(request)
        for piece in metrics.exposition():
            await response.write(piece)
        await response.write_eof()
        return response

    application = web.Application()
    application.router.add_get(METRICS_PATH, scrape)
    return application


async def serve(
    api: client.ApiClient, port: int, *, cert_file: str | None = None, key_file: str | None = None
) -> web.AppRunner | None:
    """Serve ``/metrics`` on ``port`` (0: not at all), over TLS when given a certificate."""
    if not port:
        return None
    context: ssl.SSLContext | None = None
    if cert_file and key_file:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
    runner = web.AppRunner(app(ApiServerAuthorizer(api)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port, ssl_context=context).start()  # noqa: S104
    return runner

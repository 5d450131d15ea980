"""The HTTP clients' per-request overhead: what the operator's Kubernetes API client and httpx do on
every request, beyond the request itself.

procon.k8s.kube.api_client() is exercised against a local aiohttp server standing in for the API
server (through a kubeconfig that points at it): requests must not read ~/.netrc nor look up the
proxy each time, while a proxy from the environment is still used, chosen once at start-up, and
NO_PROXY still exempts the API server. An Event's POST does not deserialize the answer it does not use."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import aiohttp.client
import pytest
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import kube_config

from procon.k8s.kube import Kube, api_client, connection_from_object, distrust_environment
from tests.unit.reconcile.doubles import SPEC

REQUESTS = 5
TOKEN = "test-token"


class Server:
    """Answers any GET with a Namespace, and remembers what each request carried."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "host": request.headers.get("Host"),
                "authorization": request.headers.get("Authorization"),
                "proxy-authorization": request.headers.get("Proxy-Authorization"),
            }
        )
        return web.json_response({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def write_kubeconfig(path: Path, server: str, *, proxy_url: str | None = None) -> None:
    proxy = f', proxy-url: "{proxy_url}"' if proxy_url else ""
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {{server: "{server}"{proxy}}}
users:
- name: local
  user: {{token: {TOKEN}}}
contexts:
- name: local
  context: {{cluster: local, user: local}}
current-context: local
"""
    )


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None) -> Path:
    """No proxy variables, a ~/.netrc (for another host), a kubeconfig path to fill in."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine elsewhere.example login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    kubeconfig = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kubernetes_asyncio reads KUBECONFIG once, when first imported.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    return kubeconfig


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts aiohttp's per-request environment lookups (they run only with trust_env)."""
    counts = {"netrc": 0, "proxy": 0}
    netrc_auth, env_proxy = aiohttp.ClientSession._get_netrc_auth, aiohttp.client.get_env_proxy_for_url

    def counting_netrc_auth(self: aiohttp.ClientSession, host: str) -> Any:
        counts["netrc"] += 1
        return netrc_auth(self, host)

    def counting_env_proxy(url: Any) -> Any:
        counts["proxy"] += 1
        return env_proxy(url)

    monkeypatch.setattr(aiohttp.ClientSession, "_get_netrc_auth", counting_netrc_auth)
    monkeypatch.setattr(aiohttp.client, "get_env_proxy_for_url", counting_env_proxy)
    return counts


async def read_namespaces(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for _ in range(REQUESTS):
        namespace = await core.read_namespace("default")
        assert namespace.metadata.name == "default"


def test_requests_do_not_read_netrc_nor_look_up_the_proxy(environment: Path, lookups: dict[str, int]) -> None:
    server = Server()

    async def main() -> None:
        async with serving(server) as port:
            write_kubeconfig(environment, f"http://127.0.0.1:{port}")
            async with await api_client() as api:
                assert api.configuration.proxy is None
                await read_namespaces(api)

    asyncio.run(main())
    assert lookups == {"netrc": 0, "proxy": 0}
    assert len(server.seen) == REQUESTS
    # The token authenticates; netrc's credentials are never sent.
    assert {seen["authorization"] for seen in server.seen} == {f"Bearer {TOKEN}"}


def test_a_netrc_entry_for_every_host_does_not_break_requests(environment: Path) -> None:
    """With ``trust_env``, aiohttp took a netrc ``default`` entry as the API server's credentials
    too, and refused every request: they already carry the bearer token."""
    (Path(os.environ["NETRC"])).write_text("default login netrc-user password netrc-password\n")
    server = Server()

    async def main() -> None:
        async with serving(server) as port:
            write_kubeconfig(environment, f"http://127.0.0.1:{port}")
            async with await api_client() as api:
                await read_namespaces(api)

    asyncio.run(main())
    assert {seen["authorization"] for seen in server.seen} == {f"Bearer {TOKEN}"}


def test_a_proxy_from_the_environment_is_chosen_once_and_used(
    environment: Path, lookups: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Server()

    async def main() -> None:
        async with serving(proxy) as port:
            # The API server's name does not resolve: only the proxy can answer for it.
            write_kubeconfig(environment, "http://kube-apiserver.invalid:6443")
            monkeypatch.setenv("HTTP_PROXY", f"http://proxy-user:proxy-password@127.0.0.1:{port}")
            async with await api_client() as api:
                assert api.configuration.proxy == f"http://proxy-user:proxy-password@127.0.0.1:{port}"
                await read_namespaces(api)

    asyncio.run(main())
    assert lookups == {"netrc": 0, "proxy": 0}
    assert len(proxy.seen) == REQUESTS
    for seen in proxy.seen:
        assert seen["host"] == "kube-apiserver.invalid:6443"
        assert seen["proxy-authorization"] == aiohttp.encode_basic_auth("proxy-user", "proxy-password")


def test_no_proxy_still_exempts_the_api_server(environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server()

    async def main() -> None:
        async with serving(server) as port:
            write_kubeconfig(environment, f"http://127.0.0.1:{port}")
            monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the discard port: nothing answers
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            async with await api_client() as api:
                assert api.configuration.proxy is None
                await read_namespaces(api)

    asyncio.run(main())
    assert len(server.seen) == REQUESTS


def test_a_proxy_the_kubeconfig_names_is_kept(environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with await api_client() as api:
            assert api.configuration.proxy == "http://named:3128"

    write_kubeconfig(environment, "http://kube-apiserver.invalid:6443", proxy_url="http://named:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://from-environment:3128")
    asyncio.run(main())


def test_distrusting_the_environment_fails_loudly_when_it_does_not_take() -> None:
    """If aiohttp renamed the attribute behind ``trust_env``, start-up must stop, not go on slow."""

    class Unchangeable:
        trust_env = True

    with pytest.raises(RuntimeError, match="trust_env"):
        distrust_environment(Unchangeable())  # type: ignore[arg-type]


class EventSink:
    """Answers an Event's POST with the given status and the created Event (as the API server does),
    or with ``refusal``, a Status, when one is given."""

    def __init__(self, status: int, refusal: dict[str, Any] | None = None) -> None:
        self.status = status
        self.refusal = refusal
        self.posted: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        event = await request.json()
        self.posted.append(event)
        if self.refusal is not None:
            return web.json_response(self.refusal, status=self.status)
        stamped = {
            **event,
            "metadata": {**event["metadata"], "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z"},
        }
        return web.json_response(stamped, status=self.status)


def post_an_event(environment: Path, sink: EventSink) -> None:
    connection = connection_from_object(
        {
            "apiVersion": "procon.dev/v1alpha1",
            "kind": "ProcessorConnection",
            "metadata": {"namespace": "shop", "name": "shop", "uid": "uid-shop", "resourceVersion": "7"},
            "spec": SPEC,
        }
    )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/namespaces/shop/events", sink.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            write_kubeconfig(environment, f"http://127.0.0.1:{runner.addresses[0][1]}")
            async with await api_client() as api:
                await Kube(api).post_event(connection, "Normal", "Verified", "credentials verified")
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_a_posted_event_is_not_deserialized(environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The created Event that the API server sends back is not used: turning it into models (dates
    parsed) was a few per cent of the operator's CPU at fleet size."""
    deserialized: list[str] = []
    deserialize = client.ApiClient.deserialize

    def counting(self: client.ApiClient, response: Any, response_type: str) -> Any:
        deserialized.append(response_type)
        return deserialize(self, response, response_type)

    monkeypatch.setattr(client.ApiClient, "deserialize", counting)
    sink = EventSink(201)
    post_an_event(environment, sink)
    assert [event["reason"] for event in sink.posted] == ["Verified"]
    assert sink.posted[0]["involvedObject"]["uid"] == "uid-shop"
    assert deserialized == []


@pytest.mark.parametrize("status", [403, 404, 409])
def test_an_event_the_api_server_refuses_is_let_go(environment: Path, status: int) -> None:
    sink = EventSink(status)
    post_an_event(environment, sink)  # events are best effort: no exception
    assert len(sink.posted) == 1


def test_an_event_failing_otherwise_raises(environment: Path) -> None:
    with pytest.raises(ApiException) as raised:
        post_an_event(environment, EventSink(500))
    assert raised.value.status == 500


def test_a_refusal_read_raw_keeps_the_api_servers_message(environment: Path) -> None:
    """An answer read raw carries the API server's message when it refuses, as the client's own
    errors do: what a person needs to tell which permission or field is at fault."""
    refusal = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": 'Event "shop.1" is invalid: involvedObject.namespace: Invalid value: "shop"',
        "reason": "Invalid",
        "code": 422,
    }
    with pytest.raises(ApiException) as raised:
        post_an_event(environment, EventSink(422, refusal))
    assert raised.value.status == 422
    assert "involvedObject.namespace: Invalid value" in str(raised.value)


class ImportRecorder(importlib.abc.MetaPathFinder):
    """Sees every import that reaches the import machinery (a module not yet in sys.modules)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.names.append(fullname)
        return None


def test_httpcore_finds_sniffio_instead_of_searching_for_it_on_every_request() -> None:
    """httpcore asks sniffio which async library runs, importing it on every connection-pool
    operation. Without sniffio installed (newer anyio no longer brings it), each of those imports
    fails after a search of the whole sys.path, on every request httpx makes; sniffio is a
    declared dependency of procon so that the import is a lookup in sys.modules."""
    from httpcore._synchronization import current_async_library

    async def detect() -> str:
        return current_async_library()

    assert asyncio.run(detect()) == "asyncio"  # imports sniffio, if found, once
    recorder = ImportRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        for _ in range(3):
            assert asyncio.run(detect()) == "asyncio"
    finally:
        sys.meta_path.remove(recorder)
    assert "sniffio" not in recorder.names

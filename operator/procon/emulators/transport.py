"""httpx transports that send every request to the emulator, whatever host its URL names.

Processors serve accounts or environments on hosts of their own (an account's
prefixed subdomain, a test or live host), which a loopback server cannot get
from DNS. With one of these transports, a client keeps real-looking URLs
(``http://acct1234.api.example.test:PORT/...``): httpx sets the ``Host`` header
from the URL, and the transport then connects to the emulator's address
instead, so the emulator sees the host the client meant::

    transport = EmulatorTransport(emulator.base_url)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://acct1234.api.example.test:8080/webhooks", headers=...)

An ``https://`` URL is sent as plain HTTP: the emulator does not do TLS.
"""

from __future__ import annotations

import httpx


def _target(base_url: str) -> tuple[str, int]:
    url = httpx.URL(base_url)
    if url.port is None:
        raise ValueError(f"the emulator's base URL must name a port: {base_url}")
    return url.host, url.port


def _redirect(request: httpx.Request, host: str, port: int) -> None:
    # The Host header was fixed when the request was built; only where it goes changes.
    request.url = request.url.copy_with(scheme="http", host=host, port=port)


class EmulatorTransport(httpx.AsyncBaseTransport):
    """An async transport connecting to ``base_url`` (the emulator's address) for every request."""

    def __init__(self, base_url: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._host, self._port = _target(base_url)
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _redirect(request, self._host, self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class EmulatorSyncTransport(httpx.BaseTransport):
    """The synchronous twin of ``EmulatorTransport``."""

    def __init__(self, base_url: str, inner: httpx.BaseTransport | None = None) -> None:
        self._host, self._port = _target(base_url)
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _redirect(request, self._host, self._port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

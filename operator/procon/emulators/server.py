"""Serve an emulator's aiohttp application on localhost.

Tests are synchronous and the operator under test runs its own event loop, so the
emulator gets a thread and an event loop of its own: ``EmulatorServer`` starts
it, reports the base URL and stops it. ``serve_forever`` is the blocking variant
for the command line.

Neither logs request headers, and the access log (off by default in tests)
redacts anything that looks like an API key, because control routes may carry
a key in their path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import signal
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

ACCESS_LOGGER = logging.getLogger("procon.emulators.access")
SHUTDOWN_TIMEOUT_SECONDS = 2.0


@functools.cache
def _key_pattern() -> re.Pattern[str]:
    """Any emulator's key prefix (each emulator declares its own), then what follows it."""
    from procon.emulators.discovery import key_prefixes

    # Longest first, so that a key keeps its whole prefix (sk_test_ rather than sk_).
    prefixes = sorted(key_prefixes(), key=len, reverse=True)
    if not prefixes:
        return re.compile(r"(?!)")  # no emulator declares a key: nothing to redact
    return re.compile(rf"\b({'|'.join(map(re.escape, prefixes))})[A-Za-z0-9]{{4,}}")


def redact_keys(text: str) -> str:
    """Replace the secret part of every API-key-shaped token in ``text``."""
    return _key_pattern().sub(lambda match: f"{match.group(1)}***", text)


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request: method, redacted path and query, status, duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, redact_keys(request.path_qs), response.status, time * 1000
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _runner(app: web.Application, access_log: bool) -> web.AppRunner:
    if access_log:
        return web.AppRunner(
            app,
            access_log_class=RedactingAccessLogger,
            access_log=ACCESS_LOGGER,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        )
    return web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)


class EmulatorServer:
    """An aiohttp application served from a background thread with its own event loop.

    An aiohttp application binds to the loop it first runs on, so a server can be
    started once; build a new application to serve again.
    """

    def __init__(
        self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False
    ) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._access_log = access_log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._used = False

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator server is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return _base_url(self._host, self.port)

    def start(self, timeout: float = 10.0) -> str:
        """Bind, serve in a background thread, and return the base URL once requests are accepted."""
        if self._used:
            raise RuntimeError("an EmulatorServer can be started only once")
        self._used = True
        sock = _bind(self._host, self._requested_port)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        async def setup() -> None:
            runner = _runner(self._app, self._access_log)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(setup())
            except BaseException as error:  # reported to the starting thread, which re-raises it
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="emulator-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the emulator server did not start within {timeout}s")
        if failure:
            sock.close()
            raise RuntimeError("the emulator server failed to start") from failure[0]
        self._port = int(sock.getsockname()[1])
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread; stopping a stopped server does nothing."""
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or thread is None or not thread.is_alive():
            self._port = None
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._port = None
        self._runner = None

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str], None] | None = None,
    access_log: bool = True,
) -> None:
    """Serve ``app`` in the calling thread until SIGINT (Ctrl-C) or SIGTERM; ``on_ready`` gets the
    base URL.

    Both signals get handlers of their own: a process started in the background by a
    non-interactive shell inherits SIGINT ignored, and a container is stopped with SIGTERM.
    """

    async def serve() -> None:
        stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        sock = _bind(host, port)
        runner = _runner(app, access_log)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            if on_ready is not None:
                on_ready(_base_url(host, int(sock.getsockname()[1])))
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return

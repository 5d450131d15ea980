"""What every emulator is: a descriptor the command line finds, and state + faults + a server in one object.

An emulator package ``procon.emulators.<name>`` holds only its processor's API
and state. It exposes ``EMULATOR``, an ``EmulatorKind`` saying how to build its
state from a fixture and its aiohttp application over that state; the shared
machinery does the rest: ``Emulator`` (the object tests use) serves it from a
background thread, ``procon emulate <name>`` (``cli``, finding it through
``discovery``) serves it until Ctrl-C, ``app`` and ``control`` give the
application its middleware and the ``/_emulator/`` routes every emulator has,
``fixtures`` reads fixtures, and ``faults`` injects faults and counts requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from aiohttp import web

from procon.emulators.faults import ExecutionGate, FaultInjector, FaultKind, FaultPlan, RequestRecord
from procon.emulators.server import EmulatorServer

# What a fixture is given as: a YAML file's path, or the decoded mapping.
FixtureSource = str | Path | Mapping[str, Any]


class EmulatorState(Protocol):
    """What the shared machinery needs of an emulator's state; the rest is the processor's own."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    def reset(self) -> None:
        """Back to the fixture."""

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON for the control API, secrets masked."""


StateT = TypeVar("StateT", bound=EmulatorState)


@dataclass(frozen=True)
class EmulatorKind(Generic[StateT]):
    """One emulator, as its package's ``EMULATOR`` describes it to the shared machinery."""

    name: str  # the package's name, and the word after ``procon emulate``
    title: str  # the processor's name in messages: "<title> emulator listening on ..."
    state_from_fixture: Callable[[FixtureSource], StateT]
    create_app: Callable[[StateT, FaultInjector | None], web.Application]
    # How to reach the API beyond the base URL, said when the command line starts serving
    # ("{base_url}" in it stands for the base URL; other braces are left as they are).
    addressing: str = ""
    # Prefixes of the processor's API keys: the access log keeps the prefix and hides what follows.
    key_prefixes: tuple[str, ...] = ()


def reset_emulator(state: EmulatorState, faults: FaultInjector) -> None:
    """Back to the fixture; no faults, no counted requests, nothing held."""
    state.reset()
    faults.clear()
    faults.reset_counters()
    faults.hold.open()


class Emulator(Generic[StateT]):
    """An emulator served on localhost from a background thread: the object tests use.

    A subclass names its ``kind`` and adds what a test does as everything outside
    the operator (a Dashboard user changing webhooks, keys losing permissions).
    """

    kind: ClassVar[EmulatorKind[Any]]

    def __init__(
        self,
        state: StateT,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        access_log: bool = False,
    ) -> None:
        self.state = state
        self.faults = FaultInjector(seed=seed)
        self._host = host
        self._port = port
        self._access_log = access_log
        self._server: EmulatorServer | None = None

    @classmethod
    def from_fixture(
        cls,
        fixture: FixtureSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        access_log: bool = False,
    ) -> Self:
        """An emulator whose state comes from a fixture file (YAML) or mapping (the package's ``fixture``)."""
        state = cls.kind.state_from_fixture(fixture)
        return cls(state, host=host, port=port, seed=seed, access_log=access_log)

    # Serving

    def start(self) -> str:
        """Serve in a background thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        if self._server is not None and self._server.running:
            return self._server.base_url
        self._server = EmulatorServer(
            self.kind.create_app(self.state, self.faults),
            host=self._host,
            port=self._port,
            access_log=self._access_log,
        )
        return self._server.start()

    def stop(self) -> None:
        self.faults.hold.open()  # held requests would keep the server from shutting down
        if self._server is not None:
            self._server.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, while serving."""
        if self._server is None or not self._server.running:
            raise RuntimeError(
                f"the {self.kind.title} emulator is not running; call start() or use it as a context manager"
            )
        return self._server.base_url

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to the fixture; no faults, no counted requests, nothing held."""
        reset_emulator(self.state, self.faults)

    # Faults and counting

    def set_faults(self, plan: FaultPlan | None = None, **changes: Any) -> FaultPlan:
        """Install ``plan`` (default: no faults), then apply ``changes`` to it."""
        self.faults.plan = plan or FaultPlan()
        return self.faults.update(**changes) if changes else self.faults.plan

    @property
    def requests(self) -> list[RequestRecord]:
        return self.faults.requests

    def count(
        self,
        method: str | None = None,
        route: str | None = None,
        status: int | None = None,
        *,
        fault: FaultKind | None = None,
    ) -> int:
        """How many requests matched, e.g. ``count("POST", "/webhooks", 201)``."""
        return self.faults.count(method, route, status, fault=fault)

    def reset_counters(self) -> None:
        self.faults.reset_counters()

    @contextmanager
    def hold_writes(self) -> Iterator[ExecutionGate]:
        """Hold state-changing requests at the point of execution until the block ends.

        Use ``gate.wait_for_waiting(n, timeout)`` to know when requests are held.
        """
        self.faults.hold.close()
        try:
            yield self.faults.hold
        finally:
            self.faults.hold.open()

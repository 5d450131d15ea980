"""``StripeEmulator``: state, faults and a server in one object, for tests and the CLI.

A test starts one from a fixture, points the operator's Stripe client at
``base_url``, and then plays the part of everything outside the operator:
granting and revoking key permissions, expiring keys, deleting or editing
endpoints as a Dashboard user would, injecting faults, and counting the calls
the operator made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from procon.emulators.faults import ExecutionGate, FaultInjector, FaultKind, FaultPlan, RequestRecord
from procon.emulators.server import EmulatorServer
from procon.emulators.stripe.app import create_app
from procon.emulators.stripe.fixture import parse_fixture, state_from_fixture
from procon.emulators.stripe.state import ApiKey, StripeSettings, StripeState, endpoint_fields


class StripeEmulator:
    """A Stripe emulator served on localhost from a background thread."""

    def __init__(
        self,
        state: StripeState,
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
        fixture: str | Path | Mapping[str, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        access_log: bool = False,
    ) -> StripeEmulator:
        """An emulator whose state comes from a fixture file (YAML) or mapping; see ``fixture``."""
        return cls(state_from_fixture(fixture), host=host, port=port, seed=seed, access_log=access_log)

    # Serving

    def start(self) -> str:
        """Serve in a background thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        if self._server is not None and self._server.running:
            return self._server.base_url
        self._server = EmulatorServer(
            create_app(self.state, self.faults), host=self._host, port=self._port, access_log=self._access_log
        )
        return self._server.start()

    def stop(self) -> None:
        self.faults.hold.open()  # held requests would keep the server from shutting down
        if self._server is not None:
            self._server.stop()

    @property
    def base_url(self) -> str:
        if self._server is None or not self._server.running:
            raise RuntimeError(
                "the Stripe emulator is not running; call start() or use it as a context manager"
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
        self.state.reset()
        self.faults.clear()
        self.faults.reset_counters()
        self.faults.hold.open()

    def update_settings(self, **changes: Any) -> StripeSettings:
        """Change fixture settings at runtime (until ``reset()``), e.g. ``permission_message_style="new"``."""
        with self.state.lock:
            self.state.settings = dataclasses.replace(self.state.settings, **changes)
            return self.state.settings

    def add_accounts(self, fixture: Mapping[str, Any]) -> None:
        """Add the accounts and keys of a fixture-shaped mapping while running (only ``accounts`` is read)."""
        accounts, _ = parse_fixture({"accounts": fixture.get("accounts") or []})
        self.state.add_accounts(accounts)

    def issued_secrets(self) -> list[str]:
        """Every webhook signing secret handed out since start, deleted endpoints' included."""
        with self.state.lock:
            return list(self.state.issued_secrets)

    # Keys (named by full value or masked form)

    def grant(self, key: str, *permissions: str, connect: bool = False) -> ApiKey:
        """Give a restricted key permissions (``rak_x`` or ``x``); ``connect`` for its Connect set."""
        return self.state.grant(key, permissions, connect=connect)

    def revoke(self, key: str, *permissions: str, connect: bool = False) -> ApiKey:
        return self.state.revoke(key, permissions, connect=connect)

    def key_uses(self, key: str) -> int:
        """How many requests authenticated with ``key`` (a valid, unexpired key) since start or reset."""
        with self.state.lock:
            return self.state.key_uses[key]

    def expire_key(self, key: str) -> ApiKey:
        """Expire a key, as rolling it with an expiry does: it then gets 401 ``api_key_expired``."""
        return self.state.expire(key)

    # Webhook endpoints, out of band

    def endpoints(self, account_id: str, livemode: bool = False) -> list[dict[str, Any]]:
        """The account's endpoints in one mode as the API shows them (no secrets), newest first."""
        with self.state.lock:
            return [e.to_api() for e in self.state.endpoints_of(account_id, livemode)]

    def endpoint_secret(self, endpoint_id: str) -> str:
        """The signing secret Stripe showed once, at creation; KeyError if there is no such endpoint."""
        return self.state.endpoint(endpoint_id).secret

    def create_endpoint(
        self,
        account_id: str,
        url: str,
        enabled_events: list[str],
        *,
        livemode: bool = False,
        connect: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create an endpoint as a Dashboard user would (no API validation); answers with its secret.

        ``fields``: description, metadata, disabled, api_version.
        """
        checked = endpoint_fields({"url": url, "enabled_events": enabled_events, **fields})
        with self.state.lock:
            if account_id not in self.state.accounts:
                raise KeyError(f"no account {account_id}")
            endpoint = self.state.add_endpoint(account_id, livemode, connect=connect, **checked)
            return endpoint.to_api(include_secret=True)

    def update_endpoint(self, endpoint_id: str, **changes: Any) -> dict[str, Any]:
        """Change url, enabled_events, description, metadata, disabled or api_version behind the API."""
        with self.state.lock:
            return self.state.change_endpoint(endpoint_id, changes).to_api()

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint behind the API's back; KeyError if there is no such endpoint."""
        self.state.remove_endpoint(endpoint_id)

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
        """How many requests matched, e.g. ``count("POST", "/v1/webhook_endpoints", 200)``."""
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

"""``CheckoutEmulator``: state, faults and a server in one object, for tests and the CLI.

A test starts one from a fixture, points the operator's Checkout.com client at
it (see the package docstring for the hosts), and then plays the part of
everything outside the operator: granting and revoking scopes, expiring keys
and tokens, changing workflows as a Dashboard user would, raising events,
injecting faults, and counting the calls the operator made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from procon.emulators.base import Emulator, EmulatorKind
from procon.emulators.checkout import events, manage
from procon.emulators.checkout.app import create_app
from procon.emulators.checkout.delivery import Delivery
from procon.emulators.checkout.fixture import parse_clients, parse_settings, state_from_fixture
from procon.emulators.checkout.hosts import client_prefix
from procon.emulators.checkout.state import CheckoutSettings, CheckoutState, Key
from procon.emulators.transport import EmulatorSyncTransport, EmulatorTransport

# A reserved top-level domain: names under it never resolve, so they only work through the transports
# (or an explicit Host header).
DOMAIN = "checkout.test"


# Checkout.com's secret and public keys, sandbox or production.
KEY_PREFIXES = ("sk_", "pk_", "sk_sbox_", "pk_sbox_")

EMULATOR: EmulatorKind[CheckoutState] = EmulatorKind(
    name="checkout",
    title="Checkout.com",
    state_from_fixture=state_from_fixture,
    create_app=create_app,
    addressing=f"API and /connect/token; account hosts by Host header {{prefix}}.api.{DOMAIN}; ",
    key_prefixes=KEY_PREFIXES,
)


class CheckoutEmulator(Emulator[CheckoutState]):
    """A Checkout.com emulator served on localhost from a background thread.

    Its ``base_url`` (``http://127.0.0.1:PORT``) is the unprefixed API and token
    host, reachable without any mapping; ``url_for`` and ``transport`` reach the others.
    """

    kind = EMULATOR

    @property
    def port(self) -> int:
        return int(httpx.URL(self.base_url).port or 0)

    def host_for(self, client_id: str | None = None, service: str = "api") -> str:
        """A ``Host`` header value: ``vkuhvk4v.api.checkout.test:PORT`` for a client, else unprefixed."""
        name = f"{service}.{DOMAIN}"
        if client_id is not None:
            name = f"{client_prefix(client_id)}.{name}"
        return f"{name}:{self.port}"

    def url_for(self, client_id: str | None = None, service: str = "api") -> str:
        """``http://[prefix.]{service}.checkout.test:PORT``: a base URL for use with ``transport()``."""
        return f"http://{self.host_for(client_id, service)}"

    @property
    def api_base(self) -> str:
        """``http://api.checkout.test:PORT``: for ``PROCON_CHECKOUT_API_BASE`` (with ``transport()``)."""
        return self.url_for(None, "api")

    @property
    def auth_base(self) -> str:
        """``http://access.checkout.test:PORT``: for ``PROCON_CHECKOUT_AUTH_BASE`` (with ``transport()``)."""
        return self.url_for(None, "access")

    def transport(self) -> EmulatorTransport:
        """An httpx async transport sending every request here, keeping the URL's host as ``Host``."""
        return EmulatorTransport(self.base_url)

    def sync_transport(self) -> EmulatorSyncTransport:
        return EmulatorSyncTransport(self.base_url)

    def update_settings(self, **changes: Any) -> CheckoutSettings:
        """Change fixture settings at runtime (until ``reset()``), e.g. ``missing_scope_status=403``."""
        with self.state.lock:
            self.state.settings = parse_settings(changes, self.state.settings)
            return self.state.settings

    def add_clients(self, fixture: Mapping[str, Any]) -> None:
        """Add the clients and keys of a fixture-shaped mapping while running (only ``clients`` is read)."""
        self.state.add_clients(parse_clients(fixture.get("clients")))

    # Keys and tokens (keys named by access key id, full secret key or masked secret key)

    def grant(self, key: str, *scopes: str) -> Key:
        """Give a key scopes; for an access key they reach tokens requested afterwards."""
        return self.state.grant(key, scopes)

    def revoke(self, key: str, *scopes: str) -> Key:
        """Take scopes from a key; its outstanding tokens lose them at once."""
        return self.state.revoke(key, scopes)

    def expire_key(self, key: str) -> Key:
        """Expire a key: it (and every token of an access key) then gets 401s or ``invalid_client``."""
        return self.state.expire(key)

    def revoke_key(self, key: str) -> Key:
        """Delete a key as a Dashboard user would; same effect as expiring it."""
        return self.state.revoke_key(key)

    def expire_tokens(self, access_key_id: str | None = None) -> int:
        """Expire outstanding access tokens (all, or one access key's); how many were still valid."""
        return self.state.expire_tokens(access_key_id)

    def signing_keys_seen(self) -> list[str]:
        """Every webhook signing key set on an action since start, replaced and deleted ones included."""
        with self.state.lock:
            return list(self.state.signing_keys_seen)

    def issued_tokens(self) -> list[str]:
        """Every access token handed out since start, resets included: for scanning output for leaks."""
        with self.state.lock:
            return list(self.state.issued_tokens)

    # Workflows, out of band (answers show secrets unmasked)

    def workflows(self, client_id: str, mode: str | None = None) -> list[dict[str, Any]]:
        """A client's workflows (in its own mode unless ``mode`` says otherwise), oldest first."""
        with self.state.lock:
            client = self.state.clients[client_id]
            found = self.state.workflows_of(client_id, mode or client.mode.value)
            return [manage.to_json(w) for w in found]

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        """One workflow; KeyError if there is none."""
        with self.state.lock:
            return manage.to_json(self.state.workflow(workflow_id))

    def create_workflow(
        self, client_id: str, body: Mapping[str, Any], *, mode: str | None = None
    ) -> dict[str, Any]:
        """Create a workflow from a ``POST /workflows`` body, as a Dashboard user would."""
        with self.state.lock:
            return manage.to_json(manage.create_workflow(self.state, client_id, body, mode))

    def update_workflow(self, workflow_id: str, **changes: Any) -> dict[str, Any]:
        """Change ``name``, ``active``, ``conditions`` or ``actions`` (lists replaced whole, new ids)."""
        with self.state.lock:
            return manage.to_json(manage.update_workflow(self.state, workflow_id, changes))

    def delete_workflow(self, workflow_id: str) -> None:
        """Delete a workflow behind the API's back; KeyError if there is none."""
        manage.delete_workflow(self.state, workflow_id)

    # Events and deliveries

    def emit_event(
        self,
        client_id: str,
        event_type: str,
        *,
        subject_id: str | None = None,
        entity_id: str | None = None,
        processing_channel_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> list[Delivery]:
        """Raise an event and deliver it, signed, to every matching webhook; blocks until delivered."""
        return events.emit(
            self.state,
            client_id,
            event_type,
            subject_id=subject_id,
            entity_id=entity_id,
            processing_channel_id=processing_channel_id,
            data=data,
        )

    def deliveries(self) -> list[Delivery]:
        """Every delivery attempted (``POST /workflows/{id}/test`` and ``emit_event``), oldest first."""
        with self.state.lock:
            return list(self.state.deliveries)

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` deliveries were attempted (tests are asynchronous); False on timeout."""
        return self.state.wait_for_deliveries(count, timeout)

"""``StripeEmulator``: state, faults and a server in one object, for tests and the CLI.

A test starts one from a fixture, points the operator's Stripe client at
``base_url``, and then plays the part of everything outside the operator:
granting and revoking key permissions, expiring keys, deleting or editing
endpoints as a Dashboard user would, injecting faults, and counting the calls
the operator made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from procon.emulators.base import Emulator, EmulatorKind
from procon.emulators.stripe.app import create_app
from procon.emulators.stripe.fixture import parse_fixture, state_from_fixture
from procon.emulators.stripe.state import ApiKey, StripeSettings, StripeState, endpoint_fields

# Stripe's secret, restricted and publishable keys, test or live.
KEY_PREFIXES = tuple(f"{kind}_{mode}" for kind in ("sk", "rk", "pk") for mode in ("", "test_", "live_"))

EMULATOR: EmulatorKind[StripeState] = EmulatorKind(
    name="stripe",
    title="Stripe",
    state_from_fixture=state_from_fixture,
    create_app=create_app,
    key_prefixes=KEY_PREFIXES,
)


class StripeEmulator(Emulator[StripeState]):
    """A Stripe emulator served on localhost from a background thread."""

    kind = EMULATOR

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

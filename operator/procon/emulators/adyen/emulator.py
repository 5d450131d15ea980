"""``AdyenEmulator``: state, faults and a server in one object, for tests and the CLI.

A test starts one from a fixture, points the operator's Adyen client at it, and
then plays the part of everything outside the operator: revoking roles,
deactivating credentials, editing webhooks and HMAC keys as a Customer Area user
would, injecting faults, and counting the calls the operator made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from procon.emulators.adyen import manage
from procon.emulators.adyen.app import create_app
from procon.emulators.adyen.fixture import parse_settings, state_from_fixture
from procon.emulators.adyen.state import AdyenSettings, AdyenState, Credential, Delivery
from procon.emulators.base import Emulator, EmulatorKind
from procon.emulators.transport import EmulatorSyncTransport, EmulatorTransport

# A reserved top-level domain: names under it never resolve, so they only work through a proxy or the
# transports. Their first label names the environment, as Adyen's hosts do.
DOMAIN = "adyen.test"
API_VERSION = "v3"
# ASSUMPTION: Adyen API keys start with "AQE", as every published one does (no documented format);
# the fixtures' keys do too. Keys travel only in X-API-Key, never in a path, but should one reach the
# access log (a control path naming a credential by key), the log hides it.
KEY_PREFIXES = ("AQE",)


EMULATOR: EmulatorKind[AdyenState] = EmulatorKind(
    name="adyen",
    title="Adyen",
    state_from_fixture=state_from_fixture,
    create_app=create_app,
    addressing=(
        f"Management API: {{base_url}}/{API_VERSION}, either environment by key; one environment: "
        f"{{base_url}}/test/{API_VERSION} and {{base_url}}/live/{API_VERSION}, or hosts "
        f"management-test.{DOMAIN} and management-live.{DOMAIN} by Host header; "
    ),
    key_prefixes=KEY_PREFIXES,
)


class AdyenEmulator(Emulator[AdyenState]):
    """An Adyen Management API emulator served on localhost from a background thread.

    Its ``base_url`` (``http://127.0.0.1:PORT``) serves either environment, by the key's.
    """

    kind = EMULATOR

    @property
    def port(self) -> int:
        return int(httpx.URL(self.base_url).port or 0)

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT/v3``: the Management API on the address itself (either environment)."""
        return f"{self.base_url}/{API_VERSION}"

    def api_base_for(self, environment: str) -> str:
        """``http://127.0.0.1:PORT/{test|live}/v3``: one environment's Management API on the address itself,
        no proxy needed (the emulator refuses the other environment's keys there)."""
        return f"{self.base_url}/{environment}/{API_VERSION}"

    def url_for(self, environment: str) -> str:
        """``http://management-{test|live}.adyen.test:PORT/v3``: a host of one environment (use a proxy
        or ``transport()``; the emulator refuses the other environment's keys there)."""
        return f"http://management-{environment}.{DOMAIN}:{self.port}/{API_VERSION}"

    def transport(self) -> EmulatorTransport:
        """An httpx async transport sending every request here, keeping the URL's host as ``Host``."""
        return EmulatorTransport(self.base_url)

    def sync_transport(self) -> EmulatorSyncTransport:
        return EmulatorSyncTransport(self.base_url)

    def update_settings(self, **changes: Any) -> AdyenSettings:
        """Change fixture settings at runtime (until ``reset()``), e.g. ``webhook_limit=3``."""
        with self.state.lock:
            self.state.settings = parse_settings(changes, self.state.settings)
            return self.state.settings

    # Credentials (named by id or username)

    def grant(self, credential: str, *roles: str) -> Credential:
        return self.state.grant(credential, roles)

    def revoke(self, credential: str, *roles: str) -> Credential:
        """Take roles away (any spelling of a role removes it)."""
        return self.state.revoke(credential, roles)

    def set_roles(self, credential: str, *roles: str) -> Credential:
        return self.state.set_roles(credential, roles)

    def set_active(self, credential: str, active: bool) -> Credential:
        return self.state.set_active(credential, active)

    # Webhooks, out of band (views show HMAC keys unmasked)

    def webhooks(
        self, *, environment: str | None = None, company: str | None = None, merchant: str | None = None
    ) -> list[dict[str, Any]]:
        """Webhooks, oldest first, optionally of one environment and account."""
        with self.state.lock:
            found = sorted(self.state.webhooks.values(), key=lambda w: w.sequence)
            return [
                manage.view(w)
                for w in found
                if (environment is None or w.where.environment.value == environment)
                and (company is None or (w.where.level.value == "company" and w.where.account == company))
                and (merchant is None or (w.where.level.value == "merchant" and w.where.account == merchant))
            ]

    def webhook(self, webhook_id: str) -> dict[str, Any]:
        """One webhook; KeyError if there is none."""
        with self.state.lock:
            return manage.view(self.state.webhook(webhook_id))

    def create_webhook(
        self,
        body: Mapping[str, Any],
        *,
        company: str | None = None,
        merchant: str | None = None,
        environment: str = "test",
    ) -> dict[str, Any]:
        """Create a webhook from a create body, as a Customer Area user would."""
        with self.state.lock:
            created = manage.create(self.state, manage.where(environment, company, merchant), body)
            return manage.view(created)

    def update_webhook(self, webhook_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields as an update body would (``active``, ``url``, ``description``, ...)."""
        with self.state.lock:
            return manage.view(manage.update(self.state, webhook_id, changes))

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook behind the API's back; KeyError if there is none."""
        manage.delete(self.state, webhook_id)

    def set_hmac_key(self, webhook_id: str, key: str | None = None) -> str:
        """Replace a webhook's HMAC key out of band (a typed-in ``key``, or a new random one)."""
        return manage.set_hmac_key(self.state, webhook_id, key)

    def hmac_keys_seen(self) -> list[str]:
        """Every HMAC key generated or set since start, resets included: for scanning output for leaks."""
        with self.state.lock:
            return list(self.state.hmac_keys_seen)

    def deliveries(self) -> list[Delivery]:
        """Every test notification sent, oldest first."""
        with self.state.lock:
            return list(self.state.deliveries)

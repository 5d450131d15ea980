"""What the Adyen emulator remembers: accounts, API credentials, webhooks, HMAC keys, deliveries.

The state is shared by the server thread and the test thread (which revokes
roles or edits webhooks behind the operator's back), so every access goes
through ``AdyenState.lock``. Credentials are immutable and replaced on change.

Webhooks live in separate stores per environment (test and live are separate
systems) and per account: a company's webhooks and each merchant account's
webhooks are different resources, and a merchant's list never shows its
company's (docs/processors/adyen.md, "Webhook configurations").
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from procon.emulators.adyen import roles as role_names


class Environment(StrEnum):
    TEST = "test"
    LIVE = "live"


class Level(StrEnum):
    """Where a credential or a webhook belongs: a company account or a merchant account."""

    COMPANY = "company"
    MERCHANT = "merchant"


class HostEnvironment(StrEnum):
    """Which environment a host that names none (an IP address, ``localhost``) serves."""

    ANY = "any"  # the key's own: both environments, told apart by their keys
    TEST = "test"
    LIVE = "live"


class Choice(StrEnum):
    """How to answer where Adyen's documents do not tell: refuse, or let it pass."""

    REJECT = "reject"
    IGNORE = "ignore"  # for a PATCH carrying ``type``
    CLAMP = "clamp"  # for a ``pageSize`` above the maximum


@dataclass(frozen=True)
class AdyenSettings:
    """The fixture's ``settings``: behaviours no source confirms, and some knobs."""

    default_environment: HostEnvironment = HostEnvironment.ANY
    # ASSUMPTION: what /me answers for a key with no Management API role (docs/processors/adyen.md,
    # "The credential behind a key (GET /me)": unconfirmed).
    me_without_management_role_status: int = 403
    # ASSUMPTION: an account id the key cannot reach is an unknown entity to it (422 30_112); 403 is the
    # other plausible answer.
    unreachable_account_status: int = 422
    # ASSUMPTION: a pageSize above the documented maximum of 100 is refused (422), not clamped.
    page_size_over_max: Choice = Choice.REJECT
    # ASSUMPTION: a PATCH carrying ``type`` (in no update schema) leaves it as it is.
    patch_type: Choice = Choice.IGNORE
    # A captured validation error wraps each invalid field as {"InvalidField": {...}}; flat by default,
    # as the spec's schema has it.
    wrap_invalid_fields: bool = False
    # No limit on webhooks is documented; a number caps each account's webhooks in each environment.
    webhook_limit: int | None = None
    # ASSUMPTION: injected rate limiting answers 429 (plausible, not documented), or 500 as the docs'
    # 00_500 "too many requests".
    rate_limit_status: int = 429
    # The documented endpoint ports (test: HTTP 80/8080/8888, HTTPS 443/8443/8843; live: HTTPS only).
    check_endpoint_ports: bool = True
    # How many generateHmac calls right after each create fail with a 500 (Adyen's plugin retries them).
    generate_hmac_failures_after_create: int = 0
    # ASSUMPTION: no order is documented for lists; oldest first, or newest first to catch clients that
    # depend on one.
    newest_first: bool = False

    def __post_init__(self) -> None:
        if self.me_without_management_role_status not in (401, 403):
            raise ValueError("me_without_management_role_status must be 401 or 403")
        if self.unreachable_account_status not in (403, 422):
            raise ValueError("unreachable_account_status must be 403 or 422")
        if self.page_size_over_max not in (Choice.REJECT, Choice.CLAMP):
            raise ValueError("page_size_over_max must be reject or clamp")
        if self.patch_type not in (Choice.REJECT, Choice.IGNORE):
            raise ValueError("patch_type must be reject or ignore")
        if self.webhook_limit is not None and self.webhook_limit < 1:
            raise ValueError("webhook_limit must be positive or null")
        if self.rate_limit_status not in (429, 500):
            raise ValueError("rate_limit_status must be 429 or 500")
        if self.generate_hmac_failures_after_create < 0:
            raise ValueError("generate_hmac_failures_after_create must not be negative")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("default_environment", "page_size_over_max", "patch_type"):
            data[name] = getattr(self, name).value
        return data


def mask_key(value: str) -> str:
    """Enough of a key to tell keys apart in dumps: its last four characters."""
    return "*" * max(len(value) - 4, 4) + value[-4:]


@dataclass(frozen=True)
class Company:
    """A company account and its merchant accounts (ids are account names, e.g. ``ProconDemoECOM``)."""

    id: str
    merchants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credential:
    """An API credential (``ws_…@Company.…``) with its API key, roles and scope.

    ``level`` company: ``account`` is the company; ``merchants`` its associated merchant accounts
    (empty: all of the company's). Level merchant: ``account`` is the merchant account.
    """

    id: str
    username: str
    api_key: str = field(repr=False)
    environment: Environment
    level: Level
    account: str
    company: str
    roles: tuple[str, ...] = ()
    merchants: tuple[str, ...] = ()
    active: bool = True
    client_key: str = ""
    description: str = ""
    allowed_ip_addresses: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "apiKey": mask_key(self.api_key),
            "environment": self.environment.value,
            "level": self.level.value,
            "account": self.account,
            "company": self.company,
            "roles": list(self.roles),
            "merchants": list(self.merchants),
            "active": self.active,
        }


@dataclass(frozen=True)
class AccountRef:
    """A webhook store: an environment's company or merchant account."""

    environment: Environment
    level: Level
    account: str


def check_value(hmac_key: str) -> str:
    """The emulator's ``hmacKeyCheckValue``: SHA-256 of the hex-decoded key, first 6 hex digits.

    Adyen's derivation is undocumented (docs/processors/adyen.md, "HMAC keys"); this is the
    emulator's own choice, deterministic, so one key always shows one check value.
    """
    return hashlib.sha256(bytes.fromhex(hmac_key)).hexdigest()[:6].upper()


def new_hmac_key() -> str:
    """64 upper-case hex digits (32 bytes) from a CSPRNG, the shape of the spec's example."""
    return secrets.token_hex(32).upper()


def new_webhook_id() -> str:
    """``S2-`` and 12 upper-case hex digits."""
    return "S2-" + secrets.token_hex(6).upper()


@dataclass
class Webhook:
    """A webhook configuration: ``config`` holds the v3 API fields as stored (no id, no password)."""

    id: str
    where: AccountRef
    config: dict[str, Any]
    sequence: int
    password: str | None = field(default=None, repr=False)
    hmac_key: str | None = field(default=None, repr=False)
    previous_hmac_key: str | None = field(default=None, repr=False)
    hmac_failures_left: int = 0

    @property
    def check_value(self) -> str | None:
        return check_value(self.hmac_key) if self.hmac_key is not None else None


@dataclass(frozen=True)
class Delivery:
    """A notification the emulator sent (``POST …/test``), and how the endpoint answered."""

    webhook_id: str
    url: str
    merchant_id: str
    event_code: str
    body: str
    status: int | None
    error: str | None
    signed: bool

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class AdyenState:
    """Accounts, credentials and webhooks; ``reset()`` goes back to what the fixture declared."""

    def __init__(
        self,
        companies: Iterable[Company],
        credentials: Iterable[Credential],
        settings: AdyenSettings | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self._fixture_companies = tuple(companies)
        self._fixture_credentials = tuple(credentials)
        self._fixture_settings = settings or AdyenSettings()
        self.hmac_keys_seen: list[str] = []
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.settings = self._fixture_settings
            self.companies: dict[str, Company] = {c.id: c for c in self._fixture_companies}
            self.credentials: dict[str, Credential] = {c.id: c for c in self._fixture_credentials}
            self.webhooks: dict[str, Webhook] = {}
            self.deliveries: list[Delivery] = []
            self._sequence = 0

    # Accounts and credentials

    def company_of_merchant(self, merchant: str) -> Company | None:
        with self.lock:
            return next((c for c in self.companies.values() if merchant in c.merchants), None)

    def add_credentials(self, companies: Iterable[Company], credentials: Iterable[Credential]) -> None:
        with self.lock:
            for company in companies:
                self.companies[company.id] = company
            for credential in credentials:
                self.credentials[credential.id] = credential

    def by_api_key(self, api_key: str) -> Credential | None:
        with self.lock:
            return next((c for c in self.credentials.values() if c.api_key == api_key), None)

    def credential(self, name: str) -> Credential:
        """A credential by id or username (never by key: names may reach access logs); KeyError if none."""
        with self.lock:
            for credential in self.credentials.values():
                if name in (credential.id, credential.username):
                    return credential
        raise KeyError(f"no credential {name}")

    def _replace(self, credential: Credential, **changes: Any) -> Credential:
        with self.lock:
            updated = dataclasses.replace(credential, **changes)
            self.credentials[credential.id] = updated
            return updated

    def grant(self, name: str, roles: Iterable[str]) -> Credential:
        with self.lock:
            credential = self.credential(name)
            return self._replace(credential, roles=tuple(dict.fromkeys([*credential.roles, *roles])))

    def revoke(self, name: str, roles: Iterable[str]) -> Credential:
        """Take roles away, matched by normalised name (any spelling of a role removes it)."""
        gone = {role_names.normalise(r) for r in roles}
        with self.lock:
            credential = self.credential(name)
            kept = tuple(r for r in credential.roles if role_names.normalise(r) not in gone)
            return self._replace(credential, roles=kept)

    def set_roles(self, name: str, roles: Iterable[str]) -> Credential:
        with self.lock:
            return self._replace(self.credential(name), roles=tuple(dict.fromkeys(roles)))

    def set_active(self, name: str, active: bool) -> Credential:
        with self.lock:
            return self._replace(self.credential(name), active=active)

    # Webhooks

    def add_webhook(self, where: AccountRef, config: dict[str, Any], password: str | None) -> Webhook:
        with self.lock:
            self._sequence += 1
            webhook_id = new_webhook_id()
            while webhook_id in self.webhooks:
                webhook_id = new_webhook_id()
            webhook = Webhook(
                id=webhook_id,
                where=where,
                config=config,
                sequence=self._sequence,
                password=password,
                hmac_failures_left=self.settings.generate_hmac_failures_after_create,
            )
            self.webhooks[webhook.id] = webhook
            return webhook

    def webhooks_of(self, where: AccountRef) -> list[Webhook]:
        with self.lock:
            found = sorted((w for w in self.webhooks.values() if w.where == where), key=lambda w: w.sequence)
            return list(reversed(found)) if self.settings.newest_first else found

    def webhook(self, webhook_id: str) -> Webhook:
        with self.lock:
            return self.webhooks[webhook_id]

    def generate_hmac(self, webhook: Webhook, key: str | None = None) -> str:
        """Replace the webhook's HMAC key (with ``key``, or a new random one); keeps the previous one."""
        with self.lock:
            new = key if key is not None else new_hmac_key()
            webhook.previous_hmac_key = webhook.hmac_key
            webhook.hmac_key = new
            self.hmac_keys_seen.append(new)
            return new

    def record_delivery(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)

    def snapshot(self) -> dict[str, Any]:
        """Everything, keys masked: for the control API and for debugging."""
        with self.lock:
            return {
                "settings": self.settings.to_json(),
                "companies": [{"id": c.id, "merchants": list(c.merchants)} for c in self.companies.values()],
                "credentials": [c.describe() for c in self.credentials.values()],
                "webhooks": [
                    {
                        "id": w.id,
                        "environment": w.where.environment.value,
                        "level": w.where.level.value,
                        "account": w.where.account,
                        "hmacKeyCheckValue": w.check_value,
                        **w.config,
                    }
                    for w in sorted(self.webhooks.values(), key=lambda w: w.sequence)
                ],
                "deliveries": len(self.deliveries),
                "time": time.time(),
            }

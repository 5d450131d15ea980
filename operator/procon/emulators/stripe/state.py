"""What the Stripe emulator remembers: accounts, API keys, webhook endpoints, idempotent answers.

The state is shared by the server thread and the test thread (which grants
permissions or deletes endpoints behind the operator's back), so every access
goes through ``StripeState.lock``. Keys are immutable and replaced on change, so
a request holding one sees a consistent permission set.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from procon.emulators.stripe import permissions
from procon.emulators.stripe.idempotency import IdempotencyStore
from procon.emulators.stripe.keys import KeyKind, key_shape, mask_key
from procon.emulators.stripe.permissions import MessageStyle

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_id(prefix: str, length: int) -> str:
    """``prefix`` + ``length`` random letters and digits, the shape of Stripe's IDs."""
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_endpoint_id() -> str:
    # ASSUMPTION: 24 characters, the length of observed IDs such as we_1SnF8JEMCN5dxlw4Sq4MeMRw.
    return random_id("we_", 24)


def new_endpoint_secret() -> str:
    # ASSUMPTION: 32 characters, the length of secrets shown in the Dashboard.
    return random_id("whsec_", 32)


ENDPOINT_FIELDS = frozenset({"url", "enabled_events", "description", "metadata", "disabled", "api_version"})


def endpoint_fields(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Type-check and copy loosely typed endpoint fields (the control API's JSON); ValueError if wrong."""
    unknown = sorted(set(changes) - ENDPOINT_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown endpoint fields {', '.join(unknown)}; known: {', '.join(sorted(ENDPOINT_FIELDS))}"
        )
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "enabled_events":
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            value = list(value) if ok else value
        elif name == "metadata":
            ok = isinstance(value, Mapping) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            )
            value = dict(value) if ok else value
        elif name == "disabled":
            ok = isinstance(value, bool)
        elif name == "url":
            ok = isinstance(value, str)
        else:  # description, api_version
            ok = value is None or isinstance(value, str)
        if not ok:
            raise ValueError(f"endpoint field {name} has the wrong type ({type(value).__name__})")
        checked[name] = value
    return checked


class AccountEndpointPolicy(StrEnum):
    """How ``GET /v1/account`` treats restricted keys (Stripe's behaviour changed over time)."""

    FORBIDDEN = "forbidden"  # 403 naming rak_accounts_kyc_basic_read, whatever the key holds
    ALLOWED = "allowed"  # the documented mapping: needs rak_connected_account_read


@dataclass(frozen=True)
class StripeSettings:
    account_endpoint_with_restricted_key: AccountEndpointPolicy = AccountEndpointPolicy.FORBIDDEN
    permission_message_style: MessageStyle = MessageStyle.LEGACY
    endpoint_limit: int = 16


@dataclass(frozen=True)
class ApiKey:
    """A secret or restricted key; ``account_id`` is the account that owns it."""

    secret: str = field(repr=False)  # never in logs or tracebacks; ``masked`` is safe to show
    account_id: str
    kind: KeyKind
    livemode: bool
    permissions: frozenset[str] = frozenset()
    connect_permissions: frozenset[str] = frozenset()
    expired: bool = False

    @property
    def masked(self) -> str:
        return mask_key(self.secret)

    @classmethod
    def parse(
        cls,
        secret: str,
        account_id: str,
        granted: Iterable[str] = (),
        connect_granted: Iterable[str] = (),
        *,
        expired: bool = False,
    ) -> ApiKey:
        shape = key_shape(secret)
        if shape is None:
            raise ValueError("keys must look like sk_test_..., sk_live_..., rk_test_... or rk_live_...")
        return cls(
            secret=secret,
            account_id=account_id,
            kind=shape.kind,
            livemode=shape.livemode,
            permissions=frozenset(permissions.normalise(p) for p in granted),
            connect_permissions=frozenset(permissions.normalise(p) for p in connect_granted),
            expired=expired,
        )

    def describe(self) -> dict[str, Any]:
        """For the state dump: never the key itself."""
        return {
            "key": self.masked,
            "account": self.account_id,
            "kind": self.kind.value,
            "livemode": self.livemode,
            "permissions": sorted(self.permissions),
            "connect_permissions": sorted(self.connect_permissions),
            "expired": self.expired,
        }


@dataclass(frozen=True)
class Account:
    """An account; ``connected_accounts`` are those its keys may act on with ``Stripe-Account``."""

    id: str
    connected_accounts: tuple[str, ...] = ()
    business_name: str | None = None
    display_name: str | None = None
    country: str = "US"
    default_currency: str = "usd"
    email: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def is_platform(self) -> bool:
        return bool(self.connected_accounts)

    def to_api(self) -> dict[str, Any]:
        """The ``account`` object; deliberately without ``livemode``, which Stripe's has not."""
        # ASSUMPTION: the values of the fields beyond id/object (type standard, capabilities enabled)
        # describe a fully onboarded standard account; the field names follow stripe-python's Account.
        return {
            "id": self.id,
            "object": "account",
            "business_profile": {"name": self.business_name, "url": None, "support_email": None},
            "business_type": "company",
            "capabilities": {},
            "charges_enabled": True,
            "country": self.country,
            "created": self.created,
            "default_currency": self.default_currency,
            "details_submitted": True,
            "email": self.email,
            "metadata": {},
            "payouts_enabled": True,
            "settings": {"dashboard": {"display_name": self.display_name, "timezone": "Etc/UTC"}},
            "type": "standard",
        }


@dataclass
class WebhookEndpoint:
    """A webhook endpoint; ``connect`` (create-only, not echoed by Stripe) and ``secret`` stay internal."""

    id: str
    account_id: str
    livemode: bool
    url: str
    enabled_events: list[str]
    secret: str = field(repr=False)
    created: int
    sequence: int  # creation order, to sort endpoints created in the same second
    api_version: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    connect: bool = False

    def to_api(self, *, include_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": self.livemode,
            "metadata": dict(self.metadata),
        }
        if include_secret:
            body["secret"] = self.secret
        body["status"] = "disabled" if self.disabled else "enabled"
        body["url"] = self.url
        return body


@dataclass(frozen=True)
class AccountSpec:
    """An account as a fixture declares it."""

    account: Account
    keys: tuple[ApiKey, ...] = ()


class StripeState:
    """Everything the emulator knows; built from fixture data and resettable to it."""

    def __init__(self, accounts: Iterable[AccountSpec], settings: StripeSettings | None = None) -> None:
        self.lock = threading.RLock()
        self._initial_accounts = tuple(accounts)
        self._initial_settings = settings or StripeSettings()
        self.settings = self._initial_settings
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, ApiKey] = {}
        self.endpoints: dict[str, WebhookEndpoint] = {}
        # The same endpoints by account and mode: a list or create looks at its account's only,
        # at a cost that does not grow with every other account's endpoints.
        self._endpoints_by_account: dict[tuple[str, bool], dict[str, WebhookEndpoint]] = {}
        self.idempotency = IdempotencyStore()
        # Every signing secret ever handed out, deleted endpoints' included:
        # tests check that none of them leaks into the operator's output.
        self.issued_secrets: list[str] = []
        # Authenticated requests per key, like the Dashboard's "last used" on the API keys page:
        # lets a test see which key the operator is using.
        self.key_uses: Counter[str] = Counter()
        self._sequence = 0
        self.reset()

    def reset(self) -> None:
        """Back to the fixture: its accounts and keys, no endpoints, no idempotent answers."""
        with self.lock:
            self.settings = self._initial_settings
            self.accounts = {}
            self.keys = {}
            self.endpoints = {}
            self._endpoints_by_account = {}
            self.idempotency.clear()
            self.key_uses.clear()
            for spec in self._initial_accounts:
                self.accounts[spec.account.id] = spec.account
                for key in spec.keys:
                    self.keys[key.secret] = key
            # Connected accounts need no declaration of their own; they get a bare record.
            for spec in self._initial_accounts:
                for connected in spec.account.connected_accounts:
                    self.accounts.setdefault(connected, Account(id=connected))

    def _issue_secret(self) -> str:
        secret = new_endpoint_secret()
        self.issued_secrets.append(secret)
        return secret

    def add_accounts(self, specs: Iterable[AccountSpec]) -> None:
        """Add accounts and keys at run time; an existing account gets the new keys. Undone by ``reset()``."""
        with self.lock:
            for spec in specs:
                account = self.accounts.setdefault(spec.account.id, spec.account)
                for connected in spec.account.connected_accounts:
                    self.accounts.setdefault(connected, Account(id=connected))
                if account is not spec.account and spec.account.connected_accounts:
                    merged = tuple(
                        dict.fromkeys(account.connected_accounts + spec.account.connected_accounts)
                    )
                    self.accounts[account.id] = dataclasses.replace(account, connected_accounts=merged)
                for key in spec.keys:
                    self.keys[key.secret] = key

    # Keys

    def key(self, secret: str) -> ApiKey | None:
        with self.lock:
            return self.keys.get(secret)

    def note_use(self, key: ApiKey) -> None:
        with self.lock:
            self.key_uses[key.secret] += 1

    def resolve_key(self, reference: str) -> ApiKey:
        """A key by its full value or its masked form (as shown in messages); KeyError if none or several."""
        with self.lock:
            if reference in self.keys:
                return self.keys[reference]
            matches = [key for key in self.keys.values() if key.masked == reference]
        if len(matches) != 1:
            raise KeyError(f"{'no' if not matches else 'more than one'} key matches {mask_key(reference)}")
        return matches[0]

    def replace_key(self, key: ApiKey) -> ApiKey:
        with self.lock:
            self.keys[key.secret] = key
        return key

    def grant(self, reference: str, granted: Iterable[str], *, connect: bool = False) -> ApiKey:
        """Add permissions (to the Connect set if ``connect``) to a restricted key."""
        names = frozenset(permissions.normalise(p) for p in granted)
        with self.lock:
            key = self._restricted(reference)
            if connect:
                return self.replace_key(
                    dataclasses.replace(key, connect_permissions=key.connect_permissions | names)
                )
            return self.replace_key(dataclasses.replace(key, permissions=key.permissions | names))

    def revoke(self, reference: str, revoked: Iterable[str], *, connect: bool = False) -> ApiKey:
        names = frozenset(permissions.normalise(p) for p in revoked)
        with self.lock:
            key = self._restricted(reference)
            if connect:
                return self.replace_key(
                    dataclasses.replace(key, connect_permissions=key.connect_permissions - names)
                )
            return self.replace_key(dataclasses.replace(key, permissions=key.permissions - names))

    def expire(self, reference: str) -> ApiKey:
        with self.lock:
            return self.replace_key(dataclasses.replace(self.resolve_key(reference), expired=True))

    def _restricted(self, reference: str) -> ApiKey:
        key = self.resolve_key(reference)
        if key.kind is not KeyKind.RESTRICTED:
            raise ValueError(
                "secret keys hold every permission; only restricted keys can be granted or revoked"
            )
        return key

    # Webhook endpoints

    def endpoints_of(self, account_id: str, livemode: bool) -> list[WebhookEndpoint]:
        """The account's endpoints in one mode, newest first (Stripe's list order)."""
        with self.lock:
            found = list(self._endpoints_by_account.get((account_id, livemode), {}).values())
        return sorted(found, key=lambda e: (e.created, e.sequence), reverse=True)

    def add_endpoint(
        self,
        account_id: str,
        livemode: bool,
        url: str,
        enabled_events: list[str],
        *,
        api_version: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        connect: bool = False,
        disabled: bool = False,
    ) -> WebhookEndpoint:
        """Store a new endpoint as is; callers validate (the API) or deliberately do not (tests)."""
        with self.lock:
            self._sequence += 1
            endpoint = WebhookEndpoint(
                id=new_endpoint_id(),
                account_id=account_id,
                livemode=livemode,
                url=url,
                enabled_events=list(enabled_events),
                secret=self._issue_secret(),
                created=int(time.time()),
                sequence=self._sequence,
                api_version=api_version,
                description=description,
                metadata=dict(metadata or {}),
                connect=connect,
                disabled=disabled,
            )
            self.endpoints[endpoint.id] = endpoint
            self._endpoints_by_account.setdefault((account_id, livemode), {})[endpoint.id] = endpoint
            return endpoint

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        with self.lock:
            return self.endpoints[endpoint_id]

    def change_endpoint(self, endpoint_id: str, changes: Mapping[str, Any]) -> WebhookEndpoint:
        """Change an endpoint behind the API's back, as a Dashboard user would; KeyError if unknown.

        Fields are those of ``ENDPOINT_FIELDS``; metadata is replaced, not merged.
        Values are type-checked, not validated like API parameters.
        """
        checked = endpoint_fields(changes)
        with self.lock:
            endpoint = self.endpoints[endpoint_id]
            for name, value in checked.items():
                setattr(endpoint, name, value)
            return endpoint

    def remove_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        with self.lock:
            endpoint = self.endpoints.pop(endpoint_id)
            self._endpoints_by_account[(endpoint.account_id, endpoint.livemode)].pop(endpoint_id)
            return endpoint

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready dump for people and tests: keys masked, endpoint secrets left out."""
        with self.lock:
            accounts = []
            for account in self.accounts.values():
                keys = [k.describe() for k in self.keys.values() if k.account_id == account.id]
                endpoints = {
                    mode: [
                        {**e.to_api(), "connect": e.connect}
                        for e in self.endpoints_of(account.id, livemode=mode == "live")
                    ]
                    for mode in ("test", "live")
                }
                accounts.append(
                    {
                        "id": account.id,
                        "connected_accounts": list(account.connected_accounts),
                        "keys": keys,
                        "webhook_endpoints": endpoints,
                    }
                )
            settings = {
                "account_endpoint_with_restricted_key": str(
                    self.settings.account_endpoint_with_restricted_key
                ),
                "permission_message_style": self.settings.permission_message_style.value,
                "endpoint_limit": self.settings.endpoint_limit,
            }
            return {"settings": settings, "accounts": accounts}

"""Fixtures: the accounts and keys a Stripe emulator starts with, from YAML or a dict.

Shape::

    accounts:
      - id: acct_1PJBLEBBLEfV
        connected_accounts: [acct_1Connected01]   # optional
        business_name: Demo Inc.                  # optional: also display_name, country,
        keys:                                      #   default_currency, email
          - key: sk_test_...                       # secret key: every permission
          - key: rk_test_...                       # restricted key
            permissions: [rak_charge_read, rak_webhook_write]
            connect_permissions: [rak_webhook_write]
            expired: false
    settings:                                      # optional
      account_endpoint_with_restricted_key: forbidden   # or allowed
      permission_message_style: legacy                   # or new
      endpoint_limit: 16

Mistakes (unknown fields, malformed keys, a key declared twice) raise
``FixtureError`` naming where they are, because a typo in a fixture otherwise
shows up as a puzzling 401 much later.
"""

from __future__ import annotations

import re
from typing import Any

from procon.emulators.base import FixtureSource
from procon.emulators.fixtures import FixtureError, choice, mapping, read_fixture, strings
from procon.emulators.stripe.keys import KeyKind
from procon.emulators.stripe.permissions import MessageStyle
from procon.emulators.stripe.state import (
    Account,
    AccountEndpointPolicy,
    AccountSpec,
    ApiKey,
    StripeSettings,
    StripeState,
)

_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]+$")
_TOP_FIELDS = {"accounts", "settings"}
_ACCOUNT_FIELDS = {
    "id",
    "connected_accounts",
    "keys",
    "business_name",
    "display_name",
    "country",
    "default_currency",
    "email",
}
_KEY_FIELDS = {"key", "permissions", "connect_permissions", "expired"}
_SETTINGS_FIELDS = {"account_endpoint_with_restricted_key", "permission_message_style", "endpoint_limit"}


def _optional_string(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise FixtureError(f"{where}: expected a string")
    return value


def _account_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        raise FixtureError(f"{where}: expected an account ID like acct_123, not {value!r}")
    return value


def _key(data: Any, account_id: str, where: str) -> ApiKey:
    fields = mapping(data, where, _KEY_FIELDS)
    secret = fields.get("key")
    if not isinstance(secret, str):
        raise FixtureError(f"{where}.key: expected the key as a string")
    expired = fields.get("expired", False)
    if not isinstance(expired, bool):
        raise FixtureError(f"{where}.expired: expected true or false")
    granted = strings(fields.get("permissions"), f"{where}.permissions")
    connect_granted = strings(fields.get("connect_permissions"), f"{where}.connect_permissions")
    try:
        key = ApiKey.parse(secret, account_id, granted, connect_granted, expired=expired)
    except ValueError as error:
        # Never echo the key itself: fixtures may hold realistic-looking keys.
        raise FixtureError(f"{where}: {error}") from None
    if key.kind is KeyKind.SECRET and (granted or connect_granted):
        raise FixtureError(f"{where}: secret keys hold every permission; list permissions on rk_ keys only")
    return key


def _account(data: Any, where: str) -> AccountSpec:
    fields = mapping(data, where, _ACCOUNT_FIELDS)
    account_id = _account_id(fields.get("id"), f"{where}.id")
    connected = strings(fields.get("connected_accounts"), f"{where}.connected_accounts")
    for index, connected_id in enumerate(connected):
        _account_id(connected_id, f"{where}.connected_accounts[{index}]")
    raw_keys = fields.get("keys") or []
    if not isinstance(raw_keys, list):
        raise FixtureError(f"{where}.keys: expected a list")
    keys = tuple(_key(item, account_id, f"{where}.keys[{index}]") for index, item in enumerate(raw_keys))
    optional = {
        name: _optional_string(fields.get(name), f"{where}.{name}")
        for name in ("business_name", "display_name", "country", "default_currency", "email")
    }
    account = Account(
        id=account_id,
        connected_accounts=tuple(connected),
        business_name=optional["business_name"],
        display_name=optional["display_name"],
        country=optional["country"] or "US",
        default_currency=optional["default_currency"] or "usd",
        email=optional["email"],
    )
    return AccountSpec(account=account, keys=keys)


def _settings(data: Any) -> StripeSettings:
    if data is None:
        return StripeSettings()
    fields = mapping(data, "settings", _SETTINGS_FIELDS)
    defaults = StripeSettings()
    limit = fields.get("endpoint_limit", defaults.endpoint_limit)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise FixtureError("settings.endpoint_limit: expected a positive integer")
    return StripeSettings(
        account_endpoint_with_restricted_key=choice(
            AccountEndpointPolicy,
            fields.get("account_endpoint_with_restricted_key"),
            "settings.account_endpoint_with_restricted_key",
            defaults.account_endpoint_with_restricted_key,
        ),
        permission_message_style=choice(
            MessageStyle,
            fields.get("permission_message_style"),
            "settings.permission_message_style",
            defaults.permission_message_style,
        ),
        endpoint_limit=limit,
    )


def parse_fixture(data: Any) -> tuple[tuple[AccountSpec, ...], StripeSettings]:
    """Check a decoded fixture and turn it into account specs and settings."""
    fields = mapping(data, "fixture", _TOP_FIELDS)
    raw_accounts = fields.get("accounts")
    if not isinstance(raw_accounts, list) or not raw_accounts:
        raise FixtureError("fixture.accounts: expected a non-empty list")
    accounts = tuple(_account(item, f"accounts[{index}]") for index, item in enumerate(raw_accounts))
    seen_accounts: set[str] = set()
    seen_keys: set[str] = set()
    for index, spec in enumerate(accounts):
        if spec.account.id in seen_accounts:
            raise FixtureError(f"accounts[{index}].id: {spec.account.id} is declared twice")
        seen_accounts.add(spec.account.id)
        for key_index, key in enumerate(spec.keys):
            if key.secret in seen_keys:
                raise FixtureError(f"accounts[{index}].keys[{key_index}]: {key.masked} is declared twice")
            seen_keys.add(key.secret)
    return accounts, _settings(fields.get("settings"))


def load_fixture(source: FixtureSource) -> tuple[tuple[AccountSpec, ...], StripeSettings]:
    """A fixture from a YAML file path or an already decoded mapping."""
    return read_fixture(source, parse_fixture)


def state_from_fixture(source: FixtureSource) -> StripeState:
    accounts, settings = load_fixture(source)
    return StripeState(accounts, settings)

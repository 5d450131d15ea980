"""The fixture format the Checkout.com emulator starts from (a YAML file or a mapping)::

    clients:
      - id: cli_vkuhvk4vjn2edkps7dfsq6emqm   # first 8 chars after cli_ = host prefix
        mode: sandbox                        # or production
        entities: [ent_eu3fkzbjqmdeeq4kdtovdvkbbm]
        processing_channels: [pc_axclravnqf5u5ejkweijnp5zc4]
        access_keys:                         # OAuth client credentials
          - id: ack_...
            secret: ...
            scopes: [flow, disputes:view]    # omitted: every known scope
            expired: false                   # optional; so is revoked
        secret_keys:
          - key: sk_sbox_...                 # NAS format; sk_sbox_ for sandbox clients only
            scopes: [flow:workflows]         # omitted: every known scope
            entities: [ent_...]              # optional restriction
            processing_channels: [pc_...]    # optional restriction
            expired: false                   # optional; so is revoked
    settings:
      missing_scope_status: 401              # or 403
      unauthorized_body: empty               # or json
      mask_secrets_on_read: true
      fraud_source_id: fraud
      reports_source_id: reports
      token_lifetime_seconds: 3600
      empty_scope: all                       # what an empty/omitted scope grants: all | none
      token_response_scope: true             # token answers carry "scope"
      workflow_limit: null                   # e.g. 50 to enforce the Dashboard's limit
      rate_limit_retry_after: null           # seconds, for a Retry-After header on 429s
      invalid_client_status: 400             # or 401, for bad client credentials at /connect/token

Mistakes (unknown fields, malformed ids or keys, a key declared twice, two
clients with one prefix) raise ``FixtureError`` naming where they are, because
a typo in a fixture otherwise shows up as a puzzling 401 much later.
"""

from __future__ import annotations

import re
from typing import Any

from procon.emulators.base import FixtureSource
from procon.emulators.checkout import scopes
from procon.emulators.checkout.state import (
    NAS_SECRET_KEY,
    AccessKey,
    BodyStyle,
    CheckoutSettings,
    CheckoutState,
    Client,
    ClientSpec,
    EmptyScope,
    Mode,
    SecretKey,
    mask_key,
)
from procon.emulators.fixtures import FixtureError, choice, integer, mapping, read_fixture, strings

_CLIENT_ID = re.compile(r"^cli_[a-z0-9]{8,}$")
_ENTITY_ID = re.compile(r"^ent_[a-z0-9]+$")
_CHANNEL_ID = re.compile(r"^pc_[a-z0-9]+$")
_ACCESS_KEY_ID = re.compile(r"^ack_[a-z0-9]+$")
_SECRET_KEY = re.compile(NAS_SECRET_KEY)

_TOP_FIELDS = {"clients", "settings"}
_CLIENT_FIELDS = {"id", "mode", "entities", "processing_channels", "access_keys", "secret_keys"}
_ACCESS_KEY_FIELDS = {"id", "secret", "scopes", "expired", "revoked"}
_SECRET_KEY_FIELDS = {"key", "scopes", "entities", "processing_channels", "expired", "revoked"}
SETTINGS_FIELDS = {
    "missing_scope_status",
    "unauthorized_body",
    "mask_secrets_on_read",
    "fraud_source_id",
    "reports_source_id",
    "token_lifetime_seconds",
    "empty_scope",
    "token_response_scope",
    "workflow_limit",
    "rate_limit_retry_after",
    "invalid_client_status",
}


def _ids(value: Any, where: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
    names = strings(value, where)
    for index, item in enumerate(names):
        if not pattern.match(item):
            raise FixtureError(f"{where}[{index}]: expected an id like {example}, not {item!r}")
    return tuple(dict.fromkeys(names))


def _flag(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FixtureError(f"{where}: expected true or false")
    return value


def _scopes(value: Any, where: str) -> frozenset[str]:
    if value is None:
        # ASSUMPTION: a key declared without scopes holds every scope, like the Dashboard's "single key
        # that has access to all of the APIs".
        return scopes.ALL_SCOPES
    if not isinstance(value, list):
        raise FixtureError(f"{where}: expected a list of scopes")
    try:
        return frozenset(scopes.check_names(value))
    except ValueError as error:
        raise FixtureError(f"{where}: {error}") from None


def _access_key(data: Any, client: Client, where: str) -> AccessKey:
    fields = mapping(data, where, _ACCESS_KEY_FIELDS)
    key_id, secret = fields.get("id"), fields.get("secret")
    if not isinstance(key_id, str) or not _ACCESS_KEY_ID.match(key_id):
        raise FixtureError(f"{where}.id: expected an access key id like ack_clckqmmnyfiupexjew7shh5ahe")
    if not isinstance(secret, str) or not secret:
        raise FixtureError(f"{where}.secret: expected the access key secret as a string")
    return AccessKey(
        id=key_id,
        secret=secret,
        client_id=client.id,
        scopes=_scopes(fields.get("scopes"), f"{where}.scopes"),
        expired=_flag(fields.get("expired"), f"{where}.expired"),
        revoked=_flag(fields.get("revoked"), f"{where}.revoked"),
    )


def _secret_key(data: Any, client: Client, where: str) -> SecretKey:
    fields = mapping(data, where, _SECRET_KEY_FIELDS)
    value = fields.get("key")
    # Never echo the key itself: fixtures may hold realistic-looking keys.
    if not isinstance(value, str) or not _SECRET_KEY.match(value):
        raise FixtureError(
            f"{where}.key: expected a default-platform secret key (sk_sbox_ or sk_ + 27 chars)"
        )
    key = SecretKey(
        key=value,
        client_id=client.id,
        scopes=_scopes(fields.get("scopes"), f"{where}.scopes"),
        entities=_ids(fields.get("entities"), f"{where}.entities", _ENTITY_ID, "ent_..."),
        processing_channels=_ids(
            fields.get("processing_channels"), f"{where}.processing_channels", _CHANNEL_ID, "pc_..."
        ),
        expired=_flag(fields.get("expired"), f"{where}.expired"),
        revoked=_flag(fields.get("revoked"), f"{where}.revoked"),
    )
    if key.mode is not client.mode:
        raise FixtureError(
            f"{where}.key: a {key.mode.value} key cannot belong to a {client.mode.value} client"
        )
    for name, allowed in (("entities", client.entities), ("processing_channels", client.processing_channels)):
        outside = sorted(set(getattr(key, name)) - set(allowed))
        if outside:
            raise FixtureError(f"{where}.{name}: {', '.join(outside)} not declared on the client")
    return key


def _keys(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FixtureError(f"{where}: expected a list")
    return value


def _client(data: Any, where: str) -> ClientSpec:
    fields = mapping(data, where, _CLIENT_FIELDS)
    client_id = fields.get("id")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise FixtureError(f"{where}.id: expected a client id like cli_vkuhvk4vjn2edkps7dfsq6emqm")
    client = Client(
        id=client_id,
        # A client without a mode is a sandbox (test) account: the emulator's choice, not Checkout.com's.
        mode=choice(Mode, fields.get("mode"), f"{where}.mode", Mode.SANDBOX),
        entities=_ids(
            fields.get("entities"), f"{where}.entities", _ENTITY_ID, "ent_eu3fkzbjqmdeeq4kdtovdvkbbm"
        ),
        processing_channels=_ids(
            fields.get("processing_channels"),
            f"{where}.processing_channels",
            _CHANNEL_ID,
            "pc_axclravnqf5u5ejkweijnp5zc4",
        ),
    )
    access_keys = tuple(
        _access_key(item, client, f"{where}.access_keys[{index}]")
        for index, item in enumerate(_keys(fields.get("access_keys"), f"{where}.access_keys"))
    )
    secret_keys = tuple(
        _secret_key(item, client, f"{where}.secret_keys[{index}]")
        for index, item in enumerate(_keys(fields.get("secret_keys"), f"{where}.secret_keys"))
    )
    return ClientSpec(client=client, access_keys=access_keys, secret_keys=secret_keys)


def parse_settings(data: Any, base: CheckoutSettings | None = None) -> CheckoutSettings:
    """Settings from a mapping; fields it leaves out keep ``base``'s values (defaults if None)."""
    base = base or CheckoutSettings()
    if data is None:
        return base
    fields = mapping(data, "settings", SETTINGS_FIELDS)
    values: dict[str, Any] = {}
    for name in ("missing_scope_status", "token_lifetime_seconds", "invalid_client_status"):
        if name in fields:
            values[name] = integer(fields[name], f"settings.{name}")
    for name in ("workflow_limit", "rate_limit_retry_after"):
        if name in fields:
            values[name] = integer(fields[name], f"settings.{name}", optional=True)
    for name in ("mask_secrets_on_read", "token_response_scope"):
        if name in fields:
            if not isinstance(fields[name], bool):
                raise FixtureError(f"settings.{name}: expected true or false")
            values[name] = fields[name]
    for name in ("fraud_source_id", "reports_source_id"):
        if name in fields:
            if not isinstance(fields[name], str):
                raise FixtureError(f"settings.{name}: expected a string")
            values[name] = fields[name]
    if "unauthorized_body" in fields:
        values["unauthorized_body"] = choice(
            BodyStyle, fields["unauthorized_body"], "settings.unauthorized_body", base.unauthorized_body
        )
    if "empty_scope" in fields:
        values["empty_scope"] = choice(
            EmptyScope, fields["empty_scope"], "settings.empty_scope", base.empty_scope
        )
    merged = {**base.to_json(), **values}
    merged["unauthorized_body"] = BodyStyle(merged["unauthorized_body"])
    merged["empty_scope"] = EmptyScope(merged["empty_scope"])
    try:
        return CheckoutSettings(**merged)
    except ValueError as error:
        raise FixtureError(f"settings: {error}") from None


def parse_clients(data: Any) -> tuple[ClientSpec, ...]:
    """The ``clients`` list, checked for repeated ids, prefixes and keys."""
    if not isinstance(data, list) or not data:
        raise FixtureError("fixture.clients: expected a non-empty list")
    clients = tuple(_client(item, f"clients[{index}]") for index, item in enumerate(data))
    prefixes: dict[str, str] = {}
    seen_access: set[str] = set()
    seen_secret: set[str] = set()
    for index, spec in enumerate(clients):
        client = spec.client
        if client.prefix in prefixes:
            other = prefixes[client.prefix]
            what = "is declared twice" if other == client.id else f"has the same prefix as {other}"
            raise FixtureError(f"clients[{index}].id: {client.id} {what}")
        prefixes[client.prefix] = client.id
        for key_index, access in enumerate(spec.access_keys):
            if access.id in seen_access:
                raise FixtureError(
                    f"clients[{index}].access_keys[{key_index}]: {access.id} is declared twice"
                )
            seen_access.add(access.id)
        for key_index, secret in enumerate(spec.secret_keys):
            if secret.key in seen_secret:
                raise FixtureError(
                    f"clients[{index}].secret_keys[{key_index}]: {mask_key(secret.key)} is declared twice"
                )
            seen_secret.add(secret.key)
    return clients


def parse_fixture(data: Any) -> tuple[tuple[ClientSpec, ...], CheckoutSettings]:
    """Check a decoded fixture and turn it into client specs and settings."""
    fields = mapping(data, "fixture", _TOP_FIELDS)
    return parse_clients(fields.get("clients")), parse_settings(fields.get("settings"))


def load_fixture(source: FixtureSource) -> tuple[tuple[ClientSpec, ...], CheckoutSettings]:
    """A fixture from a YAML file path or an already decoded mapping."""
    return read_fixture(source, parse_fixture)


def state_from_fixture(source: FixtureSource) -> CheckoutState:
    clients, settings = load_fixture(source)
    return CheckoutState(clients, settings)

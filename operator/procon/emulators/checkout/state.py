"""What the Checkout.com emulator remembers: clients, keys, tokens, workflows, deliveries.

The state is shared by the server thread and the test thread (which grants
scopes or deletes workflows behind the operator's back), so every access goes
through ``CheckoutState.lock``. Keys are immutable and replaced on change, so a
request holding one sees a consistent scope set.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from procon.emulators.checkout import catalog, scopes
from procon.emulators.checkout.delivery import Delivery, Event
from procon.emulators.checkout.hosts import client_prefix
from procon.emulators.checkout.ids import new_id
from procon.emulators.checkout.workflows import (
    Action,
    ActionSpec,
    Condition,
    ConditionSpec,
    Workflow,
    WorkflowSpec,
    workflow_to_api,
)

# The official SDKs' pattern for default-platform (NAS) secret keys.
NAS_SECRET_KEY = r"^sk_(sbox_)?[a-z2-7]{26}[a-z2-7*#$=]$"


class Mode(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class BodyStyle(StrEnum):
    EMPTY = "empty"
    JSON = "json"


class EmptyScope(StrEnum):
    """What a token request with an empty or omitted ``scope`` gets (unconfirmed)."""

    ALL = "all"  # every scope the access key is provisioned with
    NONE = "none"  # a token without scopes, refused by every endpoint


@dataclass(frozen=True)
class CheckoutSettings:
    """The fixture's ``settings``: behaviours docs/processors/checkout.md marks unconfirmed, and some
    knobs."""

    # ASSUMPTION: 401 by default, the only status the spec documents for these endpoints (unconfirmed
    # whether a valid credential without the scope gets 401 or 403).
    missing_scope_status: int = 401
    unauthorized_body: BodyStyle = BodyStyle.EMPTY
    # ASSUMPTION: masked by default, as the docs example of "Return a single workflow" shows
    # (docs/processors/checkout.md, "Workflows as webhooks").
    mask_secrets_on_read: bool = True
    fraud_source_id: str = "fraud"
    reports_source_id: str = "reports"
    token_lifetime_seconds: int = 3600
    # ASSUMPTION: an empty or omitted scope gets every scope the key holds, by default (unconfirmed).
    empty_scope: EmptyScope = EmptyScope.ALL
    # ASSUMPTION: token answers name their scopes (as the cardholder-token example does); unconfirmed for
    # /connect/token, so it can be turned off to check a client does not depend on it.
    token_response_scope: bool = True
    # ASSUMPTION: no limit on workflows by default; the Dashboard's "up to 50" is not known to apply to
    # the API (unconfirmed).
    workflow_limit: int | None = None
    rate_limit_retry_after: int | None = None
    # The status of invalid_client token answers (see errors.invalid_client: 401 is unconfirmed).
    invalid_client_status: int = 400

    def __post_init__(self) -> None:
        if self.missing_scope_status not in (401, 403):
            raise ValueError("missing_scope_status must be 401 or 403")
        if self.invalid_client_status not in (400, 401):
            raise ValueError("invalid_client_status must be 400 or 401")
        if self.token_lifetime_seconds < 1:
            raise ValueError("token_lifetime_seconds must be positive")
        if self.workflow_limit is not None and self.workflow_limit < 1:
            raise ValueError("workflow_limit must be positive or null")
        if self.rate_limit_retry_after is not None and self.rate_limit_retry_after < 0:
            raise ValueError("rate_limit_retry_after must not be negative")
        ids = [self.fraud_source_id, self.reports_source_id]
        if not all(ids) or len({*ids, "gateway", "dispute"}) != 4:
            raise ValueError("fraud_source_id and reports_source_id must be distinct, new source ids")

    @property
    def event_sources(self) -> tuple[catalog.EventSource, ...]:
        return catalog.event_sources(self.fraud_source_id, self.reports_source_id)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unauthorized_body"] = self.unauthorized_body.value
        data["empty_scope"] = self.empty_scope.value
        return data


def mask_key(value: str) -> str:
    """``sk_sbox_abcd...wxyz`` -> ``sk_sbox_****...wxyz``: enough to tell keys apart in dumps."""
    head = "sk_sbox_" if value.startswith("sk_sbox_") else value[:3]
    return head + "*" * max(len(value) - len(head) - 4, 0) + value[-4:]


@dataclass(frozen=True)
class Client:
    """An account (``cli_...``), in one mode: live and test accounts have different client ids."""

    id: str
    mode: Mode
    entities: tuple[str, ...] = ()
    processing_channels: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return client_prefix(self.id)


@dataclass(frozen=True)
class AccessKey:
    """OAuth client credentials: the access key id (``ack_...``) and secret."""

    id: str
    secret: str = field(repr=False)
    client_id: str
    scopes: frozenset[str] = scopes.ALL_SCOPES
    expired: bool = False
    revoked: bool = False

    @property
    def usable(self) -> bool:
        return not (self.expired or self.revoked)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "access_key",
            "id": self.id,
            "client_id": self.client_id,
            "scopes": sorted(self.scopes),
            "expired": self.expired,
            "revoked": self.revoked,
        }


@dataclass(frozen=True)
class SecretKey:
    """A secret API key (``sk_sbox_...``/``sk_...``) with its Dashboard restrictions."""

    key: str = field(repr=False)
    client_id: str
    scopes: frozenset[str] = scopes.ALL_SCOPES
    entities: tuple[str, ...] = ()  # empty: every entity of the client
    # ASSUMPTION: the channel restriction is kept and shown but restricts nothing the emulator serves (it
    # concerns payments, which are not emulated).
    processing_channels: tuple[str, ...] = ()  # empty: "Allow all processing channels"
    expired: bool = False
    revoked: bool = False

    @property
    def masked(self) -> str:
        return mask_key(self.key)

    @property
    def mode(self) -> Mode:
        return Mode.SANDBOX if self.key.startswith("sk_sbox_") else Mode.PRODUCTION

    @property
    def usable(self) -> bool:
        return not (self.expired or self.revoked)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "secret_key",
            "key": self.masked,
            "client_id": self.client_id,
            "mode": self.mode.value,
            "scopes": sorted(self.scopes),
            "entities": list(self.entities),
            "processing_channels": list(self.processing_channels),
            "expired": self.expired,
            "revoked": self.revoked,
        }


Key = AccessKey | SecretKey


@dataclass(frozen=True)
class IssuedToken:
    """An access token handed out by ``/connect/token``: whose it is, what it may do, until when."""

    token: str = field(repr=False)
    access_key_id: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float
    expired: bool = False

    def valid(self, now: float) -> bool:
        return not self.expired and now < self.expires_at


@dataclass(frozen=True)
class ClientSpec:
    """A client as a fixture declares it."""

    client: Client
    access_keys: tuple[AccessKey, ...] = ()
    secret_keys: tuple[SecretKey, ...] = ()


class CheckoutState:
    """Everything the emulator knows; built from fixture data and resettable to it."""

    def __init__(self, clients: Iterable[ClientSpec], settings: CheckoutSettings | None = None) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified when a delivery is recorded
        self._initial_clients = tuple(clients)
        self._initial_settings = settings or CheckoutSettings()
        self.settings = self._initial_settings
        self.clients: dict[str, Client] = {}
        self.access_keys: dict[str, AccessKey] = {}
        self.secret_keys: dict[str, SecretKey] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.workflows: dict[str, Workflow] = {}
        self.events: dict[str, Event] = {}
        self.deliveries: list[Delivery] = []  # oldest first
        # Every access token ever issued, reset or not: tests scan the operator's output for them.
        self.issued_tokens: list[str] = []
        # Every webhook signing key ever set on an action, replaced ones included: the same reason.
        self.signing_keys_seen: list[str] = []
        self._sequence = 0
        self.reset()

    def reset(self) -> None:
        """Back to the fixture: its clients and keys; no tokens, workflows or deliveries."""
        with self.lock:
            self.settings = self._initial_settings
            self.clients = {}
            self.access_keys = {}
            self.secret_keys = {}
            self.tokens = {}
            self.workflows = {}
            self.events = {}
            self.deliveries = []
            self._add(self._initial_clients)

    def add_clients(self, specs: Iterable[ClientSpec]) -> None:
        """Add clients and keys at run time; an existing client gets the new keys. Undone by ``reset()``."""
        specs = tuple(specs)
        with self.lock:
            for spec in specs:
                known = self.clients.get(spec.client.id)
                if known is None:
                    same_prefix = [c.id for c in self.clients.values() if c.prefix == spec.client.prefix]
                    if same_prefix:
                        raise ValueError(f"{spec.client.id} has the same prefix as {same_prefix[0]}")
                elif known.mode is not spec.client.mode:
                    raise ValueError(f"{spec.client.id} is already a {known.mode.value} client")
                for key in spec.access_keys:
                    if key.id in self.access_keys and self.access_keys[key.id].client_id != key.client_id:
                        raise ValueError(f"{key.id} already belongs to another client")
                for secret in spec.secret_keys:
                    if (
                        secret.key in self.secret_keys
                        and self.secret_keys[secret.key].client_id != secret.client_id
                    ):
                        raise ValueError(f"{secret.masked} already belongs to another client")
            self._add(specs)

    def _add(self, specs: Iterable[ClientSpec]) -> None:
        for spec in specs:
            known = self.clients.get(spec.client.id)
            if known is None:
                self.clients[spec.client.id] = spec.client
            else:
                self.clients[known.id] = dataclasses.replace(
                    known,
                    entities=tuple(dict.fromkeys(known.entities + spec.client.entities)),
                    processing_channels=tuple(
                        dict.fromkeys(known.processing_channels + spec.client.processing_channels)
                    ),
                )
            for key in spec.access_keys:
                self.access_keys[key.id] = key
            for secret in spec.secret_keys:
                self.secret_keys[secret.key] = secret

    # Clients and keys

    def client_by_prefix(self, prefix: str) -> Client | None:
        with self.lock:
            for client in self.clients.values():
                if client.prefix == prefix:
                    return client
        return None

    def resolve_key(self, reference: str) -> Key:
        """A key by access key id, full secret key or masked secret key; KeyError if none or several."""
        with self.lock:
            if reference in self.access_keys:
                return self.access_keys[reference]
            if reference in self.secret_keys:
                return self.secret_keys[reference]
            matches = [k for k in self.secret_keys.values() if k.masked == reference]
        if len(matches) != 1:
            shown = reference if reference.startswith("ack_") else mask_key(reference)
            raise KeyError(f"{'no' if not matches else 'more than one'} key matches {shown}")
        return matches[0]

    def replace_key(self, key: Key) -> Key:
        with self.lock:
            if isinstance(key, AccessKey):
                self.access_keys[key.id] = key
            else:
                self.secret_keys[key.key] = key
        return key

    def grant(self, reference: str, granted: Iterable[str]) -> Key:
        names = frozenset(scopes.check_names(granted))
        with self.lock:
            key = self.resolve_key(reference)
            return self.replace_key(dataclasses.replace(key, scopes=key.scopes | names))

    def revoke(self, reference: str, revoked: Iterable[str]) -> Key:
        """Take scopes away; a parent taken away leaves its children (grant them apart if wanted)."""
        names = frozenset(scopes.check_names(revoked))
        with self.lock:
            key = self.resolve_key(reference)
            return self.replace_key(dataclasses.replace(key, scopes=key.scopes - names))

    def expire(self, reference: str) -> Key:
        with self.lock:
            return self.replace_key(dataclasses.replace(self.resolve_key(reference), expired=True))

    def revoke_key(self, reference: str) -> Key:
        """Delete a key as a Dashboard user would: it then authenticates nothing."""
        with self.lock:
            return self.replace_key(dataclasses.replace(self.resolve_key(reference), revoked=True))

    # Tokens

    def issue_token(self, key: AccessKey, granted: frozenset[str], token: str, now: float) -> IssuedToken:
        with self.lock:
            issued = IssuedToken(
                token=token,
                access_key_id=key.id,
                client_id=key.client_id,
                scopes=granted,
                expires_at=now + self.settings.token_lifetime_seconds,
            )
            self.tokens[token] = issued
            self.issued_tokens.append(token)
            return issued

    def token(self, value: str) -> IssuedToken | None:
        with self.lock:
            return self.tokens.get(value)

    def expire_tokens(self, reference: str | None = None) -> int:
        """Expire every outstanding token (of one access key if given); returns how many were valid."""
        with self.lock:
            key_id = None
            if reference is not None:
                key = self.resolve_key(reference)
                if not isinstance(key, AccessKey):
                    raise ValueError("only access keys have tokens")
                key_id = key.id
            now = time.time()
            count = 0
            for value, token in list(self.tokens.items()):
                if key_id is not None and token.access_key_id != key_id:
                    continue
                count += token.valid(now)
                self.tokens[value] = dataclasses.replace(token, expired=True)
            return count

    # Workflows

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def workflows_of(self, client_id: str, mode: str) -> list[Workflow]:
        """A client's workflows in one mode, oldest first."""
        with self.lock:
            found = [w for w in self.workflows.values() if w.client_id == client_id and w.mode == mode]
        return sorted(found, key=lambda w: w.sequence)

    def new_action(self, spec: ActionSpec) -> Action:
        """A new action with its own id; its signing key, if any, is remembered."""
        self.note_action(spec)
        return new_action(spec)

    def note_action(self, spec: ActionSpec) -> ActionSpec:
        """Remember the signing key of an action spec about to be stored; returns the spec."""
        if spec.signature is not None:
            with self.lock:
                self.signing_keys_seen.append(spec.signature.key)
        return spec

    def add_workflow(self, client_id: str, mode: str, spec: WorkflowSpec) -> Workflow:
        with self.lock:
            workflow = Workflow(
                id=new_id("wf_"),
                client_id=client_id,
                mode=mode,
                name=spec.name,
                active=spec.active,
                conditions=[new_condition(c) for c in spec.conditions],
                actions=[self.new_action(a) for a in spec.actions],
                sequence=self._next_sequence(),
            )
            self.workflows[workflow.id] = workflow
            return workflow

    def workflow(self, workflow_id: str) -> Workflow:
        with self.lock:
            return self.workflows[workflow_id]

    def remove_workflow(self, workflow_id: str) -> Workflow:
        with self.lock:
            return self.workflows.pop(workflow_id)

    # Deliveries

    def add_event(self, event: Event) -> None:
        with self.lock:
            self.events[event.id] = event

    def record_delivery(self, delivery: Delivery) -> None:
        with self.changed:
            self.deliveries.append(delivery)
            self.changed.notify_all()

    def wait_for_deliveries(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.deliveries) >= count, timeout)

    # The dump

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready dump for people and tests: keys masked, signing keys and header values masked."""
        with self.lock:
            clients = []
            for client in self.clients.values():
                base = "https://api.checkout.com"
                clients.append(
                    {
                        "id": client.id,
                        "prefix": client.prefix,
                        "mode": client.mode.value,
                        "entities": list(client.entities),
                        "processing_channels": list(client.processing_channels),
                        "access_keys": [
                            k.describe() for k in self.access_keys.values() if k.client_id == client.id
                        ],
                        "secret_keys": [
                            k.describe() for k in self.secret_keys.values() if k.client_id == client.id
                        ],
                        "workflows": [
                            workflow_to_api(w, base, mask=True)
                            for w in self.workflows_of(client.id, client.mode.value)
                        ],
                    }
                )
            now = time.time()
            return {
                "settings": self.settings.to_json(),
                "clients": clients,
                "tokens": {
                    "issued": len(self.issued_tokens),
                    "valid": sum(t.valid(now) for t in self.tokens.values()),
                },
                "deliveries": len(self.deliveries),
            }


def new_condition(spec: ConditionSpec) -> Condition:
    return Condition(id=new_id("wfc_"), spec=spec)


def new_action(spec: ActionSpec) -> Action:
    return Action(id=new_id("wfa_"), spec=spec)

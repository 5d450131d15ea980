"""Workflows (the Flow API): their model, request validation and JSON rendering, free of HTTP.

Validation follows the spec's schemas (``add-workflow-request`` and the
condition and action schemas) and docs/processors/checkout.md, "Workflows API":

- ``conditions`` and ``actions`` need at least one item;
- "only one condition of the same type is permitted"; types are ``event``,
  ``entity`` and ``processing_channel``;
- an event condition maps event source ids to event type ids, all known;
- entity and processing-channel conditions list at least one id;
- the only public action type is ``webhook``; its ``url`` is required,
  ``headers`` map strings to strings, ``signature`` needs a ``key`` and its
  ``method`` defaults to ``HMACSHA256``.

Failures become one 422 listing every error code found. Checkout.com
documents the 422 shape but, apart from ``event_types_invalid``, not the codes,
so the codes here follow its ``<field>_required``/``<field>_invalid`` naming
and are assumptions; clients should rely on the status and ``error_type``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from procon.emulators.checkout import errors

CONDITION_FIELDS = {"event": "events", "entity": "entities", "processing_channel": "processing_channels"}
SIGNATURE_METHOD = "HMACSHA256"
ENTITY_ID = re.compile(r"^ent_[a-z0-9]+$")
CHANNEL_ID = re.compile(r"^pc_[a-z0-9]+$")

# ASSUMPTION: every code below but event_types_invalid (documented for POST /workflows/{id}/test) is
# named by the emulator, following Checkout.com's <field>_required / <field>_invalid convention.
NAME_INVALID = "name_invalid"
NAME_REQUIRED = "name_required"
ACTIVE_INVALID = "active_invalid"
CONDITIONS_REQUIRED = "conditions_required"
CONDITION_INVALID = "condition_invalid"
CONDITION_TYPE_REQUIRED = "condition_type_required"
CONDITION_TYPE_INVALID = "condition_type_invalid"
CONDITION_TYPE_DUPLICATE = "condition_type_duplicate"
EVENTS_REQUIRED = "events_required"
EVENT_TYPES_INVALID = "event_types_invalid"
ENTITIES_REQUIRED = "entities_required"
ENTITIES_INVALID = "entities_invalid"
PROCESSING_CHANNELS_REQUIRED = "processing_channels_required"
PROCESSING_CHANNELS_INVALID = "processing_channels_invalid"
ACTIONS_REQUIRED = "actions_required"
ACTION_INVALID = "action_invalid"
ACTION_TYPE_REQUIRED = "action_type_required"
ACTION_TYPE_INVALID = "action_type_invalid"
URL_REQUIRED = "url_required"
URL_INVALID = "url_invalid"
HEADERS_INVALID = "headers_invalid"
SIGNATURE_INVALID = "signature_invalid"
SIGNATURE_KEY_REQUIRED = "signature_key_required"
SIGNATURE_METHOD_INVALID = "signature_method_invalid"
WORKFLOW_LIMIT_EXCEEDED = "workflow_limit_exceeded"

ConditionValue = dict[str, list[str]] | list[str]
EventCatalog = Mapping[str, frozenset[str]]


# The model


@dataclass(frozen=True)
class ConditionSpec:
    """A condition as a request declares it: its type and its events map or id list."""

    type: str
    value: ConditionValue


@dataclass(frozen=True)
class Signature:
    key: str = field(repr=False)
    method: str = SIGNATURE_METHOD


@dataclass(frozen=True)
class ActionSpec:
    """A webhook action as a request declares it."""

    url: str
    headers: dict[str, str] | None = field(default=None, repr=False)
    signature: Signature | None = None
    type: str = "webhook"


@dataclass(frozen=True)
class WorkflowSpec:
    name: str | None
    active: bool
    conditions: tuple[ConditionSpec, ...]
    actions: tuple[ActionSpec, ...]


@dataclass(frozen=True)
class WorkflowPatch:
    """A PATCH: fields left None stay as they are."""

    name: str | None = None
    active: bool | None = None
    conditions: tuple[ConditionSpec, ...] | None = None
    actions: tuple[ActionSpec, ...] | None = None


@dataclass
class Condition:
    id: str
    spec: ConditionSpec


@dataclass
class Action:
    id: str
    spec: ActionSpec


@dataclass
class Workflow:
    """A stored workflow; ``client_id`` and ``mode`` say whose it is."""

    id: str
    client_id: str
    mode: str
    name: str | None
    active: bool
    conditions: list[Condition]
    actions: list[Action]
    sequence: int

    def condition(self, condition_id: str) -> Condition:
        for condition in self.conditions:
            if condition.id == condition_id:
                return condition
        raise KeyError(condition_id)

    def action(self, action_id: str) -> Action:
        for action in self.actions:
            if action.id == action_id:
                return action
        raise KeyError(action_id)

    def subscribed_events(self) -> set[str] | None:
        """The event types the event condition selects; None without one (every event matches)."""
        for condition in self.conditions:
            if condition.spec.type == "event" and isinstance(condition.spec.value, dict):
                return {event for events in condition.spec.value.values() for event in events}
        return None

    def condition_ids(self, condition_type: str) -> list[str] | None:
        """The ids an entity or processing-channel condition lists; None without such a condition."""
        for condition in self.conditions:
            if condition.spec.type == condition_type and isinstance(condition.spec.value, list):
                return list(condition.spec.value)
        return None


# Validation


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _event_map(value: Any, catalog: EventCatalog, codes: list[str]) -> dict[str, list[str]] | None:
    if not isinstance(value, Mapping) or not value:
        codes.append(EVENTS_REQUIRED)
        return None
    events: dict[str, list[str]] = {}
    for source, types in value.items():
        if not _strings(types) or not types:
            codes.append(EVENTS_REQUIRED)
            return None
        # ASSUMPTION: an unknown source, or an event type its source does not raise, is
        # event_types_invalid, the code the spec documents for unknown event types in workflow tests.
        if source not in catalog or not set(types) <= catalog[source]:
            codes.append(EVENT_TYPES_INVALID)
            return None
        events[str(source)] = list(dict.fromkeys(types))
    return events


def _id_list(
    value: Any, pattern: re.Pattern[str], required: str, invalid: str, codes: list[str]
) -> list[str] | None:
    if value is None or (isinstance(value, list) and not value):
        codes.append(required)
        return None
    # ASSUMPTION: ids are checked for shape only (ent_/pc_ + lower-case letters and digits), not against
    # the account's entities; the spec's own examples do not fit its 26-character patterns.
    if not _strings(value) or not all(pattern.match(item) for item in value):
        codes.append(invalid)
        return None
    return list(dict.fromkeys(value))


def parse_condition(data: Any, catalog: EventCatalog, codes: list[str]) -> ConditionSpec | None:
    """A condition, or None with the reasons appended to ``codes``."""
    if not isinstance(data, Mapping):
        codes.append(CONDITION_INVALID)
        return None
    condition_type = data.get("type")
    if condition_type is None:
        codes.append(CONDITION_TYPE_REQUIRED)
        return None
    if condition_type not in CONDITION_FIELDS:
        codes.append(CONDITION_TYPE_INVALID)
        return None
    value: ConditionValue | None
    if condition_type == "event":
        value = _event_map(data.get("events"), catalog, codes)
    elif condition_type == "entity":
        value = _id_list(data.get("entities"), ENTITY_ID, ENTITIES_REQUIRED, ENTITIES_INVALID, codes)
    else:
        value = _id_list(
            data.get("processing_channels"),
            CHANNEL_ID,
            PROCESSING_CHANNELS_REQUIRED,
            PROCESSING_CHANNELS_INVALID,
            codes,
        )
    return ConditionSpec(condition_type, value) if value is not None else None


def _valid_url(value: str) -> bool:
    # ASSUMPTION: the spec's "format: uri" is checked as an absolute http(s) URL with a host; whether the
    # API also refuses plain http or private addresses is not documented, so both are accepted.
    if not value or any(character.isspace() for character in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _signature(value: Any, codes: list[str]) -> Signature | None:
    if not isinstance(value, Mapping):
        codes.append(SIGNATURE_INVALID)
        return None
    key, method = value.get("key"), value.get("method")
    if not isinstance(key, str) or not key:
        codes.append(SIGNATURE_KEY_REQUIRED)
        return None
    if method is None:
        return Signature(key)  # "Defaults to HMAC SHA256"
    # ASSUMPTION: HMACSHA256, the only method the spec names, is the only one accepted.
    if method != SIGNATURE_METHOD:
        codes.append(SIGNATURE_METHOD_INVALID)
        return None
    return Signature(key, method)


def parse_action(data: Any, codes: list[str]) -> ActionSpec | None:
    """A webhook action, or None with the reasons appended to ``codes``."""
    if not isinstance(data, Mapping):
        codes.append(ACTION_INVALID)
        return None
    action_type = data.get("type")
    if action_type is None:
        codes.append(ACTION_TYPE_REQUIRED)
        return None
    if action_type != "webhook":  # email, slack and simulator exist in the spec only as comments
        codes.append(ACTION_TYPE_INVALID)
        return None
    failed = len(codes)
    url = data.get("url")
    if url is None or url == "":
        codes.append(URL_REQUIRED)
    elif not isinstance(url, str) or not _valid_url(url):
        codes.append(URL_INVALID)
    headers = data.get("headers")
    if headers is not None and not (
        isinstance(headers, Mapping)
        and all(isinstance(k, str) and k and isinstance(v, str) for k, v in headers.items())
    ):
        codes.append(HEADERS_INVALID)
    raw_signature = data.get("signature")
    # The signature is optional in the API schema (the Dashboard requires it).
    signature = _signature(raw_signature, codes) if raw_signature is not None else None
    if len(codes) > failed or not isinstance(url, str):
        return None
    return ActionSpec(url=url, headers=dict(headers) if headers is not None else None, signature=signature)


def _conditions(value: Any, catalog: EventCatalog, codes: list[str]) -> tuple[ConditionSpec, ...] | None:
    if not isinstance(value, list) or not value:
        codes.append(CONDITIONS_REQUIRED)
        return None
    parsed = [parse_condition(item, catalog, codes) for item in value]
    kinds = [condition.type for condition in parsed if condition is not None]
    if len(kinds) != len(set(kinds)):
        codes.append(CONDITION_TYPE_DUPLICATE)
    if any(condition is None for condition in parsed) or len(kinds) != len(set(kinds)):
        return None
    return tuple(condition for condition in parsed if condition is not None)


def _actions(value: Any, codes: list[str]) -> tuple[ActionSpec, ...] | None:
    if not isinstance(value, list) or not value:
        codes.append(ACTIONS_REQUIRED)
        return None
    parsed = [parse_action(item, codes) for item in value]
    if any(action is None for action in parsed):
        return None
    return tuple(action for action in parsed if action is not None)


def _name_and_active(body: Mapping[str, Any], codes: list[str]) -> tuple[str | None, bool | None]:
    name, active = body.get("name"), body.get("active")
    if name is not None and not isinstance(name, str):
        codes.append(NAME_INVALID)
    if active is not None and not isinstance(active, bool):
        codes.append(ACTIVE_INVALID)
    return (name if isinstance(name, str) else None), (active if isinstance(active, bool) else None)


def parse_create(body: Any, catalog: EventCatalog) -> WorkflowSpec:
    """A ``POST /workflows`` body; a 422 ``CheckoutError`` listing every problem found.

    ASSUMPTION: fields the schema does not name are ignored, as ASP.NET's JSON binding does; ``name`` is
    optional because the spec's request schema requires nothing.
    """
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    codes: list[str] = []
    name, active = _name_and_active(body, codes)
    conditions = _conditions(body.get("conditions"), catalog, codes)
    actions = _actions(body.get("actions"), codes)
    if codes or conditions is None or actions is None:
        raise errors.validation(codes)
    return WorkflowSpec(
        name=name, active=True if active is None else active, conditions=conditions, actions=actions
    )


def parse_patch(body: Any, catalog: EventCatalog) -> WorkflowPatch:
    """A ``PATCH /workflows/{id}`` body.

    The spec's request schema requires ``name`` and adds ``active``; current
    SDK models also send ``conditions`` and ``actions``.
    ASSUMPTION: ``name`` is required as the spec says, and ``conditions`` or
    ``actions``, when given, replace the workflow's wholesale (new ids),
    validated as on create (unconfirmed).
    """
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    codes: list[str] = []
    if body.get("name") is None:
        codes.append(NAME_REQUIRED)
    name, active = _name_and_active(body, codes)
    conditions = _conditions(body["conditions"], catalog, codes) if "conditions" in body else None
    actions = _actions(body["actions"], codes) if "actions" in body else None
    if codes:
        raise errors.validation(codes)
    return WorkflowPatch(name=name, active=active, conditions=conditions, actions=actions)


def parse_one_condition(body: Any, catalog: EventCatalog) -> ConditionSpec:
    """The body of ``POST .../conditions`` or ``PUT .../conditions/{id}``."""
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    codes: list[str] = []
    condition = parse_condition(body, catalog, codes)
    if condition is None:
        raise errors.validation(codes)
    return condition


def parse_one_action(body: Any) -> ActionSpec:
    """The body of ``POST .../actions`` or ``PUT .../actions/{id}``."""
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    codes: list[str] = []
    action = parse_action(body, codes)
    if action is None:
        raise errors.validation(codes)
    return action


def check_condition_types(types: list[str]) -> None:
    """422 unless every condition type appears once."""
    if len(types) != len(set(types)):
        raise errors.validation([CONDITION_TYPE_DUPLICATE])


# Rendering


def mask_secret(value: str) -> str:
    """``secret-value`` -> ``secr********``: the masking shown in Checkout.com's docs example.

    ASSUMPTION: the docs show "secr******" and "signa********"; the emulator keeps the first four
    characters of values longer than eight and masks everything of shorter ones.
    """
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 4)


def _link(href: str) -> dict[str, dict[str, str]]:
    return {"self": {"href": href}}


def workflow_href(base: str, workflow_id: str) -> str:
    return f"{base}/workflows/{workflow_id}"


def condition_to_api(workflow_id: str, condition: Condition, base: str) -> dict[str, Any]:
    spec = condition.spec
    value: ConditionValue = (
        {source: list(events) for source, events in spec.value.items()}
        if isinstance(spec.value, dict)
        else list(spec.value)
    )
    return {
        "id": condition.id,
        "type": spec.type,
        CONDITION_FIELDS[spec.type]: value,
        "_links": _link(f"{workflow_href(base, workflow_id)}/conditions/{condition.id}"),
    }


def action_to_api(workflow_id: str, action: Action, base: str, *, mask: bool) -> dict[str, Any]:
    spec = action.spec
    body: dict[str, Any] = {"id": action.id, "type": spec.type, "url": spec.url}
    # ASSUMPTION: headers and signature are left out when the action has none (the spec marks both
    # optional and shows no empty form).
    if spec.headers is not None:
        body["headers"] = {
            name: mask_secret(value) if mask else value for name, value in spec.headers.items()
        }
    if spec.signature is not None:
        key = mask_secret(spec.signature.key) if mask else spec.signature.key
        body["signature"] = {"method": spec.signature.method, "key": key}
    body["_links"] = _link(f"{workflow_href(base, workflow_id)}/actions/{action.id}")
    return body


def workflow_to_api(workflow: Workflow, base: str, *, mask: bool) -> dict[str, Any]:
    """``GET /workflows/{id}``: the whole workflow, links on the host the client called."""
    body: dict[str, Any] = {"id": workflow.id}
    if workflow.name is not None:
        body["name"] = workflow.name
    body["active"] = workflow.active
    body["conditions"] = [condition_to_api(workflow.id, c, base) for c in workflow.conditions]
    body["actions"] = [action_to_api(workflow.id, a, base, mask=mask) for a in workflow.actions]
    body["_links"] = _link(workflow_href(base, workflow.id))
    return body


def workflow_summary(workflow: Workflow, base: str) -> dict[str, Any]:
    """An item of ``GET /workflows``: only id, name, active and links."""
    body: dict[str, Any] = {"id": workflow.id}
    if workflow.name is not None:
        body["name"] = workflow.name
    body["active"] = workflow.active
    body["_links"] = _link(workflow_href(base, workflow.id))
    return body

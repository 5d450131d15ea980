"""A procon webhook as a Checkout.com workflow, and back.

Ownership is the workflow's name, ``procon/<cluster>/<namespace>/<name>/<uid>``,
because ``GET /workflows`` returns only id, name and active (reference
checkout.md §3): the name is the one place a tag survives a listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procon.processors.base import ObservedWebhook
from procon.reconcile.ownership import CLUSTER, CONNECT, MANAGED_BY, MANAGED_BY_VALUE, NAME, NAMESPACE, UID

NAME_PREFIX = "procon/"


def workflow_name(metadata: Mapping[str, str]) -> str:
    return NAME_PREFIX + "/".join(metadata.get(k, "") for k in (CLUSTER, NAMESPACE, NAME, UID))


def metadata_from_name(name: str) -> dict[str, str]:
    """The ownership tag a workflow name carries; empty for workflows procon did not name."""
    if not name.startswith(NAME_PREFIX):
        return {}
    fields = name[len(NAME_PREFIX) :].split("/")
    if len(fields) != 4:
        return {}
    owner = dict(zip((CLUSTER, NAMESPACE, NAME, UID), fields, strict=True))
    # Checkout.com has no Connect endpoints; the tag says so like Stripe's does.
    return {MANAGED_BY: MANAGED_BY_VALUE, **owner, CONNECT: "false"}


def observed_webhook(body: Mapping[str, Any]) -> ObservedWebhook:
    conditions = body.get("conditions") or []
    actions = [a for a in body.get("actions") or [] if a.get("type") == "webhook"]
    action = actions[0] if actions else {}
    parts: dict[str, str] = {}
    events: list[str] = []
    entities: list[str] = []
    channels: list[str] = []
    for condition in conditions:
        kind = condition.get("type")
        parts[f"condition:{kind}"] = str(condition.get("id", ""))
        if kind == "event":
            events = [e for ids in (condition.get("events") or {}).values() for e in ids]
        elif kind == "entity":
            entities = list(condition.get("entities") or [])
        elif kind == "processing_channel":
            channels = list(condition.get("processing_channels") or [])
    if action:
        parts["action"] = str(action.get("id", ""))
    active = bool(body.get("active", True))
    return ObservedWebhook(
        id=str(body["id"]),
        url=str(action.get("url") or ""),
        events=tuple(sorted(events)),
        description=None,
        enabled=active,
        metadata=metadata_from_name(str(body.get("name") or "")),
        status="enabled" if active else "disabled",
        entities=tuple(sorted(entities)),
        processing_channels=tuple(sorted(channels)),
        parts=parts,
    )

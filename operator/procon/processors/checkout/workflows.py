"""A procon webhook as a Checkout.com workflow, and back.

Ownership is the workflow's name, ``procon/<cluster>/<namespace>/<name>/<uid>``,
because ``GET /workflows`` returns only id, name and active (docs/processors/checkout.md,
"Workflows API"): the name is the one place a tag survives a listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procon.processors.base import MalformedResponse
from procon.processors.checkout.webhook import CheckoutWorkflow
from procon.reconcile.ownership import CLUSTER, MANAGED_BY, MANAGED_BY_VALUE, NAME, NAMESPACE, UID

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
    return {MANAGED_BY: MANAGED_BY_VALUE, **owner}


def _objects(value: Any, what: str, workflow: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise MalformedResponse(
            f"Checkout.com's workflow {workflow} has {what} that are not a list of objects"
        )
    return value


def _strings(value: Any, what: str, workflow: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedResponse(
            f"Checkout.com's workflow {workflow} has {what} that are not a list of strings"
        )
    return value


def observed_webhook(body: Mapping[str, Any]) -> CheckoutWorkflow:
    """A workflow as procon sees it; :class:`MalformedResponse` when the answer is not a workflow."""
    workflow = body.get("id")
    if not isinstance(workflow, str) or not workflow:
        raise MalformedResponse("Checkout.com answered with a workflow without an id")
    conditions = _objects(body.get("conditions"), "conditions", workflow)
    actions = [a for a in _objects(body.get("actions"), "actions", workflow) if a.get("type") == "webhook"]
    action = actions[0] if actions else {}
    parts: dict[str, str] = {}
    events: list[str] = []
    entities: list[str] = []
    channels: list[str] = []
    for condition in conditions:
        kind = condition.get("type")
        parts[f"condition:{kind}"] = str(condition.get("id", ""))
        if kind == "event":
            by_source = condition.get("events") or {}
            if not isinstance(by_source, Mapping):
                raise MalformedResponse(
                    f"Checkout.com's workflow {workflow} has events that are not an object"
                )
            events = [e for ids in by_source.values() for e in _strings(ids, "event ids", workflow)]
        elif kind == "entity":
            entities = _strings(condition.get("entities"), "entities", workflow)
        elif kind == "processing_channel":
            channels = _strings(condition.get("processing_channels"), "processing channels", workflow)
    if action:
        parts["action"] = str(action.get("id", ""))
    url = action.get("url")
    if url is not None and not isinstance(url, str):
        raise MalformedResponse(f"Checkout.com's workflow {workflow} has a webhook URL that is not a string")
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise MalformedResponse(
            f"Checkout.com's workflow {workflow} has an 'active' that is not true or false"
        )
    return CheckoutWorkflow(
        id=workflow,
        url=str(action.get("url") or ""),
        events=tuple(sorted(events)),
        enabled=active,
        metadata=metadata_from_name(str(body.get("name") or "")),
        status="enabled" if active else "disabled",
        entities=tuple(sorted(entities)),
        processing_channels=tuple(sorted(channels)),
        parts=parts,
    )

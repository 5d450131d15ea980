"""Webhook deliveries: events, their signed requests, and which workflows receive them.

Checkout.com signs a delivery with HMAC-SHA256 over the raw body, keyed with the
webhook action's ``signature.key``, hex-encoded in ``Cko-Signature``, and sends
the action's ``headers`` as they are (docs/processors/checkout.md, "Workflows API"). The
emulator delivers once, without the documented retries (5 min ... 12 h), and
gives up after the documented 10 seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from procon.emulators.checkout.catalog import EventSource, source_of
from procon.emulators.checkout.ids import new_id
from procon.emulators.checkout.workflows import Action, Workflow

TIMEOUT_SECONDS = 10.0  # "If you do not acknowledge a webhook within 10 seconds, it will time out and fail"
# ASSUMPTION: the payload version; "1.1.0" is the version in the docs' report_generated example.
EVENT_VERSION = "1.1.0"


@dataclass(frozen=True)
class Event:
    """An event the emulator raised, for deliveries and ``GET /workflows/events/...``."""

    id: str
    type: str
    source: str
    client_id: str
    mode: str
    subject_id: str
    created_on: str
    data: dict[str, Any]
    entity_id: str | None = None
    processing_channel_id: str | None = None

    def body(self, base: str) -> dict[str, Any]:
        """The webhook body, in the documented shape: id, type, version, created_on, data, _links."""
        return {
            "id": self.id,
            "type": self.type,
            "version": EVENT_VERSION,
            "created_on": self.created_on,
            "data": self.data,
            "_links": {
                "self": {"href": f"{base}/workflows/events/{self.id}"},
                # ASSUMPTION: the subject link points at the subject's events (the spec shows no example).
                "subject": {"href": f"{base}/workflows/events/subject/{self.subject_id}"},
            },
        }

    def to_api(self, base: str) -> dict[str, Any]:
        """``GET /workflows/events/{id}``: id, source, type, timestamp, version, data, _links."""
        return {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "timestamp": self.created_on,
            "version": EVENT_VERSION,
            "data": self.data,
            "_links": {"self": {"href": f"{base}/workflows/events/{self.id}"}},
        }

    def summary(self, base: str) -> dict[str, Any]:
        """An item of ``GET /workflows/events/subject/{id}``."""
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": self.created_on,
            "_links": {"self": {"href": f"{base}/workflows/events/{self.id}"}},
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def event_data(
    subject_id: str,
    *,
    client_id: str,
    entity_id: str | None,
    processing_channel_id: str | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    # ASSUMPTION: a minimal payload: the subject's id, the account (as report_generated carries it) and the
    # processing channel (as fraud_reported does); tests add anything else through ``extra``.
    data: dict[str, Any] = {"id": subject_id, "account": {"client_id": client_id}}
    if entity_id is not None:
        data["account"]["entity_id"] = entity_id
    if processing_channel_id is not None:
        data["processing_channel_id"] = processing_channel_id
    data.update(extra or {})
    return data


def new_event(
    client_id: str,
    mode: str,
    event_type: str,
    sources: tuple[EventSource, ...],
    *,
    subject_id: str | None = None,
    entity_id: str | None = None,
    processing_channel_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Event:
    """A new event of ``event_type``; its subject is a new payment id unless given."""
    subject = subject_id or new_id("pay_")
    return Event(
        id=new_id("evt_"),
        type=event_type,
        source=source_of(sources, event_type) or "",
        client_id=client_id,
        mode=mode,
        subject_id=subject,
        created_on=now_iso(),
        data=event_data(
            subject,
            client_id=client_id,
            entity_id=entity_id,
            processing_channel_id=processing_channel_id,
            extra=data,
        ),
        entity_id=entity_id,
        processing_channel_id=processing_channel_id,
    )


def sign(key: str, body: bytes) -> str:
    """``Cko-Signature``: hex HMAC-SHA256 of the raw body, keyed with the UTF-8 bytes of the key."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def matches(workflow: Workflow, event: Event) -> bool:
    """Whether an active workflow's conditions select the event.

    ASSUMPTION: a workflow without an event condition receives every event; one
    with an entity (processing-channel) condition receives only events of a
    listed entity (channel), so events without one do not match.
    """
    if not workflow.active:
        return False
    subscribed = workflow.subscribed_events()
    if subscribed is not None and event.type not in subscribed:
        return False
    entities = workflow.condition_ids("entity")
    if entities is not None and event.entity_id not in entities:
        return False
    channels = workflow.condition_ids("processing_channel")
    return channels is None or event.processing_channel_id in channels


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver an event to a webhook action; ``status`` None when it failed to connect."""

    event_id: str
    event_type: str
    workflow_id: str
    action_id: str
    url: str
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    status: int | None = None
    error: str | None = None

    def verify(self, key: str) -> bool:
        """Whether ``Cko-Signature`` is the HMAC of the body under ``key`` (as a receiver checks it)."""
        return hmac.compare_digest(self.headers.get("Cko-Signature", "").lower(), sign(key, self.body))

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "workflow_id": self.workflow_id,
            "action_id": self.action_id,
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "signature": self.headers.get("Cko-Signature"),
            "body": self.body.decode("utf-8"),
        }


@dataclass(frozen=True)
class PendingDelivery:
    """A request to make: where, what, with which headers."""

    event: Event
    workflow_id: str
    action_id: str
    url: str
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)

    def done(self, status: int | None, error: str | None) -> Delivery:
        return Delivery(
            event_id=self.event.id,
            event_type=self.event.type,
            workflow_id=self.workflow_id,
            action_id=self.action_id,
            url=self.url,
            body=self.body,
            headers=dict(self.headers),
            status=status,
            error=error,
        )


def prepare(event: Event, workflow: Workflow, action: Action, base: str) -> PendingDelivery:
    """The signed request for one action; the body is serialised once and signed as sent."""
    body = json.dumps(event.body(base), separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    headers.update(action.spec.headers or {})
    if action.spec.signature is not None:
        headers["Cko-Signature"] = sign(action.spec.signature.key, body)
    return PendingDelivery(event, workflow.id, action.id, action.spec.url, body, headers)


def send(pending: PendingDelivery, client: httpx.Client) -> Delivery:
    """Deliver synchronously (the Python API's way); never raises for the receiver's failures."""
    try:
        response = client.post(pending.url, content=pending.body, headers=pending.headers)
    except httpx.HTTPError as error:
        return pending.done(None, f"{type(error).__name__}: {error}")
    return pending.done(response.status_code, None)

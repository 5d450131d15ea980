"""The event sources ``GET /workflows/event-types`` lists (docs/processors/checkout.md, "Event types").

Gateway (``gateway``) and Disputes (``dispute``) have confirmed ids and events.
Fraud (``fraud_reported``) and Reports (``report_generated``) have confirmed
events but unconfirmed source ids, so those ids come from the fixture settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GATEWAY_EVENTS = (
    "payment_approved",
    "payment_declined",
    "payment_pending",
    "payment_captured",
    "payment_capture_declined",
    "payment_capture_pending",
    "payment_refunded",
    "payment_refund_declined",
    "payment_refund_pending",
    "payment_voided",
    "payment_void_declined",
    "payment_authorization_incremented",
    "payment_authorization_increment_declined",
    "payment_canceled",
    "payment_expired",
    "payment_paid",
    "payment_returned",
    "payment_authentication_failed",
    "card_verified",
    "card_verification_declined",
)
DISPUTE_EVENTS = (
    "dispute_received",
    "dispute_evidence_required",
    "dispute_evidence_submitted",
    "dispute_evidence_acknowledged_by_scheme",
    "dispute_accepted",
    "dispute_canceled",
    "dispute_expired",
    "dispute_lost",
    "dispute_won",
    "dispute_resolved",
    "dispute_arbitration_evidence_submitted",
    "dispute_arbitration_sent_to_scheme",
    "dispute_arbitration_won",
    "dispute_arbitration_lost",
    "request_for_information_received",
)
FRAUD_EVENTS = ("fraud_reported",)
REPORTS_EVENTS = ("report_generated",)

# Display names seen in the spec and docs; the others are derived from the id.
_EVENT_DISPLAY_NAMES = {"payment_approved": "Payment Authorized"}
_EVENT_DESCRIPTIONS = {
    "payment_approved": (
        "Occurs when a payment is successfully authorized by the Checkout.com payment gateway"
    ),
    "fraud_reported": "Occurs when a fraud report is received for a payment",
    "report_generated": "Occurs when a scheduled report is generated",
}


@dataclass(frozen=True)
class EventSource:
    id: str
    display_name: str
    description: str
    events: tuple[str, ...]

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "description": self.description,
            "events": [_event(event) for event in self.events],
        }


def _event(event_id: str) -> dict[str, str]:
    # ASSUMPTION: events without a documented display name or description get ones derived from the id
    # ("dispute_won" -> "Dispute Won"); only payment_approved's display name is in the spec.
    display = _EVENT_DISPLAY_NAMES.get(event_id) or event_id.replace("_", " ").title()
    description = _EVENT_DESCRIPTIONS.get(event_id) or f"Occurs on {event_id.replace('_', ' ')}"
    return {"id": event_id, "display_name": display, "description": description}


def event_sources(fraud_source_id: str, reports_source_id: str) -> tuple[EventSource, ...]:
    """The sources in the order the emulator lists them."""
    return (
        # Description from the spec's event-types example.
        EventSource("gateway", "Gateway", "Events from the Checkout.com payment gateway", GATEWAY_EVENTS),
        # Description from the official Node SDK's test fixture.
        EventSource("dispute", "Disputes", "Disputes Integration", DISPUTE_EVENTS),
        # ASSUMPTION: the Fraud and Reports sources' descriptions (undocumented); their ids are settings
        # because they are unconfirmed.
        EventSource(fraud_source_id, "Fraud", "Fraud reports raised by card schemes", FRAUD_EVENTS),
        EventSource(reports_source_id, "Reports", "Scheduled reports", REPORTS_EVENTS),
    )


def events_by_source(sources: tuple[EventSource, ...]) -> dict[str, frozenset[str]]:
    return {source.id: frozenset(source.events) for source in sources}


def source_of(sources: tuple[EventSource, ...], event_type: str) -> str | None:
    for source in sources:
        if event_type in source.events:
            return source.id
    return None

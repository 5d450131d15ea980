"""Raising events out of band, as Checkout.com does when a payment or dispute changes.

``emit`` builds an event, finds the account's active workflows whose
conditions select it, and delivers it to each of their webhook actions,
synchronously, with ``httpx``. It blocks, so call it from a test's thread (or
off the server's event loop), never from a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from procon.emulators.checkout import delivery
from procon.emulators.checkout.catalog import source_of
from procon.emulators.checkout.state import CheckoutState, Mode

# ASSUMPTION: links in emitted events name the real API host of the account's mode.
EVENT_LINK_BASES = {
    Mode.SANDBOX: "https://api.sandbox.checkout.com",
    Mode.PRODUCTION: "https://api.checkout.com",
}


def emit(
    state: CheckoutState,
    client_id: str,
    event_type: str,
    *,
    subject_id: str | None = None,
    entity_id: str | None = None,
    processing_channel_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    http: httpx.Client | None = None,
) -> list[delivery.Delivery]:
    """Raise ``event_type`` on the client's account and deliver it; the deliveries made, in order.

    KeyError for an unknown client, ValueError for an event type no source raises.
    """
    with state.lock:
        client = state.clients[client_id]
        sources = state.settings.event_sources
        if source_of(sources, event_type) is None:
            raise ValueError(f"no event source raises {event_type!r}")
        event = delivery.new_event(
            client.id,
            client.mode.value,
            event_type,
            sources,
            subject_id=subject_id,
            entity_id=entity_id,
            processing_channel_id=processing_channel_id,
            data=data,
        )
        state.add_event(event)
        base = EVENT_LINK_BASES[client.mode]
        pending = [
            delivery.prepare(event, workflow, action, base)
            for workflow in state.workflows_of(client.id, client.mode.value)
            if delivery.matches(workflow, event)
            for action in workflow.actions
        ]
    if not pending:
        return []
    own_client = http is None
    client_http = http or httpx.Client(timeout=delivery.TIMEOUT_SECONDS)
    try:
        done = [delivery.send(item, client_http) for item in pending]
    finally:
        if own_client:
            client_http.close()
    for item in done:
        state.record_delivery(item)
    return done

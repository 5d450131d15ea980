"""A Stripe webhook endpoint in procon's terms: the target, the desired and observed endpoint, and
how they compare.

Pure: no call is made here. The driver (:mod:`procon.processors.stripe.driver`)
sends and reads these; the reconciler sees only the neutral base types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from procon.processors.base import (
    Comparison,
    DesiredWebhook,
    ObservedWebhook,
    Target,
    WebhookChanges,
)

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec
    from procon.processors.stripe.spec import StripeOptions

# Part of the ownership tag on a Stripe endpoint: whether it is a Connect endpoint. Stripe cannot
# change that in place, and the listing does not say it otherwise.
CONNECT = "procon-connect"


@dataclass(frozen=True)
class StripeTarget(Target):
    """The mode, and optionally a connected account to act on (the ``Stripe-Account`` header)."""

    connected_account: str | None = None


@dataclass(frozen=True)
class StripeDesired(DesiredWebhook):
    description: str | None = None
    api_version: str | None = None
    connect: bool = False

    def create_parameters(self) -> dict[str, Any]:
        return {
            **super().create_parameters(),
            "description": self.description,
            "api_version": self.api_version,
            "connect": self.connect,
        }


@dataclass(frozen=True)
class StripeEndpoint(ObservedWebhook):
    description: str | None = None
    enabled: bool = True
    api_version: str | None = None


@dataclass(frozen=True)
class StripeChanges(WebhookChanges):
    events: tuple[str, ...] | None = None
    description: str | None = None
    enabled: bool | None = None
    metadata: Mapping[str, str] | None = None

    def describe(self) -> list[str]:
        parts = []
        if self.events is not None:
            parts.append("events")
        parts.extend(super().describe())
        if self.description is not None:
            parts.append("description")
        if self.enabled is not None:
            parts.append("enabled" if self.enabled else "disabled")
        if self.metadata is not None:
            parts.append("ownership metadata")
        return parts


def options(spec: ProcessorConnectionSpec) -> StripeOptions | None:
    block: StripeOptions | None = getattr(spec, "stripe", None)
    return block


def target(spec: ProcessorConnectionSpec) -> StripeTarget:
    block = options(spec)
    return StripeTarget(mode=spec.mode, connected_account=block.account if block else None)


def desired(spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]) -> StripeDesired:
    block = options(spec)
    connect = bool(block and block.connect)
    return StripeDesired(
        url=spec.webhook.url,
        events=tuple(sorted(events)),
        metadata={**tag, CONNECT: "true" if connect else "false"},
        description=spec.webhook.description,
        api_version=block.api_version if block else None,
        connect=connect,
    )


def as_endpoint(webhook: ObservedWebhook) -> StripeEndpoint:
    if isinstance(webhook, StripeEndpoint):
        return webhook
    return StripeEndpoint(
        id=webhook.id,
        url=webhook.url,
        events=webhook.events,
        metadata=webhook.metadata,
        status=webhook.status,
        created=webhook.created,
    )


def as_desired(webhook: DesiredWebhook) -> StripeDesired:
    if isinstance(webhook, StripeDesired):
        return webhook
    return StripeDesired(url=webhook.url, events=webhook.events, metadata=webhook.metadata)


def as_changes(changes: WebhookChanges) -> StripeChanges:
    if isinstance(changes, StripeChanges):
        return changes
    return StripeChanges(signing_secret=changes.signing_secret)


def recreate_because(webhook: StripeEndpoint, wanted: StripeDesired) -> str | None:
    """Why ``webhook`` cannot serve ``wanted`` without being recreated, or None if it can."""
    if webhook.url != wanted.url:
        return "its URL changed"
    if (webhook.api_version or None) != (wanted.api_version or None):
        return "its API version changed"
    if (webhook.metadata.get(CONNECT) == "true") != wanted.connect:
        return "its Connect setting changed"
    return None


def changes(webhook: StripeEndpoint, wanted: StripeDesired) -> StripeChanges | None:
    """What to update in place for ``webhook`` to be ``wanted``; None when nothing differs."""
    events = tuple(sorted(wanted.events))
    metadata_drifted = any(webhook.metadata.get(k) != v for k, v in wanted.metadata.items())
    found = StripeChanges(
        events=events if tuple(sorted(webhook.events)) != events else None,
        # Stripe treats "" as "no description".
        description=(wanted.description or "")
        if (webhook.description or "") != (wanted.description or "")
        else None,
        enabled=True if not webhook.enabled else None,
        metadata=dict(wanted.metadata) if metadata_drifted else None,
    )
    return found if found.describe() else None


def compare(observed: ObservedWebhook, wanted: DesiredWebhook) -> Comparison:
    endpoint, desired_endpoint = as_endpoint(observed), as_desired(wanted)
    because = recreate_because(endpoint, desired_endpoint)
    if because is not None:
        return Comparison(recreate_because=because)
    return Comparison(changes=changes(endpoint, desired_endpoint))

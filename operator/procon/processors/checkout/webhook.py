"""A Checkout.com workflow in procon's terms: the target, the desired and observed workflow, and how
they compare.

Pure: no call is made here. The driver (:mod:`procon.processors.checkout.driver`)
sends and reads these; the reconciler sees only the neutral base types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from procon.processors.base import (
    Comparison,
    DesiredWebhook,
    ObservedWebhook,
    Target,
    WebhookChanges,
)

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec
    from procon.processors.checkout.spec import CheckoutOptions


@dataclass(frozen=True)
class CheckoutTarget(Target):
    """The mode, the account's client id (which selects its hosts) and the entities the connection
    is for."""

    client_id: str | None = None
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckoutDesired(DesiredWebhook):
    entities: tuple[str, ...] = ()
    processing_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckoutWorkflow(ObservedWebhook):
    enabled: bool = True
    entities: tuple[str, ...] = ()
    processing_channels: tuple[str, ...] = ()
    # The ids the driver needs to update parts of the workflow (its conditions and action).
    parts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutChanges(WebhookChanges):
    events: tuple[str, ...] | None = None
    enabled: bool | None = None
    metadata: Mapping[str, str] | None = None
    entities: tuple[str, ...] | None = None
    processing_channels: tuple[str, ...] | None = None

    def describe(self) -> list[str]:
        parts = []
        if self.events is not None:
            parts.append("events")
        if self.entities is not None:
            parts.append("entities")
        if self.processing_channels is not None:
            parts.append("processing channels")
        parts.extend(super().describe())
        if self.enabled is not None:
            parts.append("enabled" if self.enabled else "disabled")
        if self.metadata is not None:
            parts.append("ownership metadata")
        return parts


def options(spec: ProcessorConnectionSpec) -> CheckoutOptions | None:
    block: CheckoutOptions | None = getattr(spec, "checkout", None)
    return block


def target(spec: ProcessorConnectionSpec) -> CheckoutTarget:
    block = options(spec)
    return CheckoutTarget(
        mode=spec.mode,
        client_id=block.client_id if block else None,
        entities=tuple(block.entities) if block else (),
    )


def desired(spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]) -> CheckoutDesired:
    # Workflows have no description: their name is procon's tag.
    block = options(spec)
    return CheckoutDesired(
        url=spec.webhook.url,
        events=tuple(sorted(events)),
        metadata=dict(tag),
        entities=tuple(sorted(block.entities)) if block else (),
        processing_channels=tuple(sorted(block.processing_channels)) if block else (),
    )


def as_workflow(webhook: ObservedWebhook) -> CheckoutWorkflow:
    if isinstance(webhook, CheckoutWorkflow):
        return webhook
    return CheckoutWorkflow(
        id=webhook.id,
        url=webhook.url,
        events=webhook.events,
        metadata=webhook.metadata,
        status=webhook.status,
        created=webhook.created,
    )


def as_desired(webhook: DesiredWebhook) -> CheckoutDesired:
    if isinstance(webhook, CheckoutDesired):
        return webhook
    return CheckoutDesired(
        url=webhook.url,
        events=webhook.events,
        metadata=webhook.metadata,
        signing_secret=webhook.signing_secret,
    )


def as_changes(changes: WebhookChanges) -> CheckoutChanges:
    if isinstance(changes, CheckoutChanges):
        return changes
    return CheckoutChanges(signing_secret=changes.signing_secret)


def changes(workflow: CheckoutWorkflow, wanted: CheckoutDesired) -> CheckoutChanges | None:
    """What to update in place for ``workflow`` to be ``wanted``; None when nothing differs."""
    events = tuple(sorted(wanted.events))
    metadata_drifted = any(workflow.metadata.get(k) != v for k, v in wanted.metadata.items())
    found = CheckoutChanges(
        events=events if tuple(sorted(workflow.events)) != events else None,
        enabled=True if not workflow.enabled else None,
        metadata=dict(wanted.metadata) if metadata_drifted else None,
        entities=wanted.entities
        if tuple(sorted(workflow.entities)) != tuple(sorted(wanted.entities))
        else None,
        processing_channels=(
            wanted.processing_channels
            if tuple(sorted(workflow.processing_channels)) != tuple(sorted(wanted.processing_channels))
            else None
        ),
    )
    return found if found.describe() else None


def compare(observed: ObservedWebhook, wanted: DesiredWebhook) -> Comparison:
    workflow, desired_workflow = as_workflow(observed), as_desired(wanted)
    # The URL is the one part procon recreates for: a workflow's action could be edited, but
    # a webhook at another URL is another receiver, with its own copy of the key.
    if workflow.url != desired_workflow.url:
        return Comparison(recreate_because="its URL changed")
    return Comparison(changes=changes(workflow, desired_workflow))

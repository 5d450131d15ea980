"""Turn what a reconcile found into Kubernetes conditions.

The domain conditions (CredentialsValid, PermissionsValid, WebhookReady) say
which part is wrong. The summary conditions follow kstatus, so that
``kubectl wait``, Flux and Argo CD judge a connection correctly:

- ``Ready`` is True only when every domain condition is True;
- ``Stalled=True`` when only a change to the spec, the Secret or the
  processor-side configuration can help (kstatus reads it as Failed);
- ``Reconciling=True`` while work is under way or a transient error is being
  retried (kstatus reads it as InProgress).

``lastTransitionTime`` changes only when a condition's status flips, as in
``meta.SetStatusCondition``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from procon.api.v1alpha1 import ConditionType
from procon.redaction import redact

Status = Literal["True", "False", "Unknown"]

# Condition messages are capped well under the API's 32768: they end up in
# `kubectl get -o wide` and in events.
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    message: str = ""


PENDING = Verdict("Unknown", "Pending", "not checked yet")


@dataclass(frozen=True)
class Assessment:
    """What one reconcile found, per domain condition, plus how it ended."""

    credentials: Verdict = PENDING
    permissions: Verdict = PENDING
    webhook: Verdict = PENDING
    # Set when only a change outside the operator can help.
    stalled: Verdict | None = None
    # Set when a transient error interrupted the reconcile; Ready's reason then says what kind.
    retrying: str | None = None
    retry_reason: str = "ProcessorUnavailable"
    # True on first sight, before anything was checked.
    starting: bool = False


def message_of(verdict: Verdict, scope: str | None = None) -> str:
    """A verdict's message as status shows it: redacted (it may carry processor text), capped.

    ``scope`` is the connection's redaction scope: its own secrets are redacted, no one else's.
    """
    return redact(verdict.message, scope)[:MAX_MESSAGE]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(assessment: Assessment) -> tuple[Verdict, Verdict, Verdict]:
    """(Ready, Reconciling, Stalled)."""
    domain = [assessment.credentials, assessment.permissions, assessment.webhook]
    if assessment.starting:
        message = "the operator has seen this connection and is checking it"
        return (
            Verdict("False", "Reconciling", message),
            Verdict("True", "Reconciling", message),
            Verdict("False", "NotStalled"),
        )
    if assessment.stalled is not None:
        stalled = assessment.stalled
        return (
            Verdict("False", stalled.reason, stalled.message),
            Verdict(
                "False", "Stalled", "waiting for a change to the spec, the Secret or the processor account"
            ),
            Verdict("True", stalled.reason, stalled.message),
        )
    if assessment.retrying is not None:
        return (
            Verdict("False", assessment.retry_reason, assessment.retrying),
            Verdict("True", "RetryingAfterError", assessment.retrying),
            Verdict("False", "NotStalled"),
        )
    not_true = [v for v in domain if v.status != "True"]
    if not_true:
        first = not_true[0]
        return (
            Verdict("False", first.reason, first.message),
            Verdict("True", "Progressing", first.message),
            Verdict("False", "NotStalled"),
        )
    return (
        Verdict(
            "True",
            "Ready",
            assessment.webhook.message or "the connection is verified and its webhook is ready",
        ),
        Verdict("False", "ReconcileSucceeded"),
        Verdict("False", "NotStalled"),
    )


def build(
    assessment: Assessment,
    *,
    generation: int,
    previous: Iterable[Mapping[str, Any]] = (),
    scope: str | None = None,
) -> list[dict[str, Any]]:
    """The full condition list for ``status.conditions``, keeping transition times that did not flip."""
    before = {c.get("type"): c for c in previous}
    ready, reconciling, stalled = _summary(assessment)
    verdicts = {
        ConditionType.READY: ready,
        ConditionType.RECONCILING: reconciling,
        ConditionType.STALLED: stalled,
        ConditionType.CREDENTIALS_VALID: assessment.credentials,
        ConditionType.PERMISSIONS_VALID: assessment.permissions,
        ConditionType.WEBHOOK_READY: assessment.webhook,
    }
    stamp = now()
    conditions = []
    for kind, verdict in verdicts.items():
        old = before.get(kind.value)
        flipped = old is None or old.get("status") != verdict.status
        conditions.append(
            {
                "type": kind.value,
                "status": verdict.status,
                "reason": verdict.reason,
                "message": message_of(verdict, scope),
                "lastTransitionTime": stamp
                if flipped or old is None
                else old.get("lastTransitionTime", stamp),
                "observedGeneration": generation,
            }
        )
    return conditions


def same_conditions(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]]) -> bool:
    """Equal but for transition times: a status write can be skipped when this holds."""

    def key(conditions: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (
                c.get("type"),
                c.get("status"),
                c.get("reason"),
                c.get("message") or "",
                c.get("observedGeneration"),
            )
            for c in conditions
        )

    return key(a) == key(b)

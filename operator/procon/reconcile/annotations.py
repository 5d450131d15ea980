"""procon's annotations on a ProcessorConnection, read defensively.

Anyone who may edit a connection may write any annotation, so their values
are input like any other: a malformed one is ignored (the connection is
reconciled as if it were absent) and named in a Warning event, never allowed
to stop a reconcile. The checks are pure; the reconciler posts the events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "procon.dev/"
PENDING_CREATE = PREFIX + "pending-create"
# "true": leave the connection and its webhook alone (no processor calls, no
# status writes); deleting it then leaves the webhook, as Orphan does.
PAUSED = PREFIX + "paused"
ROTATE_SIGNING_SECRET = PREFIX + "rotate-signing-secret"  # also a watch trigger in procon.k8s.kube

# kopf keeps its own records under procon's prefix (procon.k8s.handlers sets it): its diff base,
# its marker, its touch key, and one progress record per handler, named after the handler.
_KOPF_NAMES = frozenset({"last-handled-configuration", "kopf-managed", "touch-dummy"})
_KOPF_HANDLER_PREFIX = "connection_"

# A rotation request is a token a person picks (a date, a counter); it is copied into status.
MAX_ROTATION_LENGTH = 253
# A pending-create record is procon's own small JSON object; anything larger was not written by procon.
MAX_PENDING_CREATE_LENGTH = 1024


@dataclass(frozen=True)
class Problem:
    """A procon annotation ignored, and why: the message shows a value only when it is short and plain."""

    annotation: str
    message: str
    # A one-way digest of the value: one warning per distinct value, without keeping the value.
    value_digest: str


@dataclass(frozen=True)
class PendingCreate:
    """The record written before a create: its idempotency key and a digest of its parameters."""

    key: str
    params: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()[:16]


def _shown(value: str) -> str:
    """The value, quoted, if short and printable; otherwise only its length."""
    if len(value) <= 40 and value.isprintable() and value.isascii():
        return repr(value)
    return f"a value of {len(value)} characters"


def _printable_token(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and value.isascii() and value.isprintable() and value == value.strip()


def is_paused(annotations: Mapping[str, str]) -> bool:
    return annotations.get(PAUSED) == "true"


def rotation(annotations: Mapping[str, str]) -> str | None:
    """The rotation request, or None when there is none or it is malformed (see :func:`problems`)."""
    value = annotations.get(ROTATE_SIGNING_SECRET)
    return value if value and _printable_token(value, MAX_ROTATION_LENGTH) else None


def pending_create(raw: str | None) -> PendingCreate | None:
    """Parse the pending-create record; None when absent or malformed (never an exception)."""
    if not raw or len(raw) > MAX_PENDING_CREATE_LENGTH:
        return None
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    key, params = record.get("key"), record.get("params")
    if not isinstance(key, str) or not isinstance(params, str) or not key or not params:
        return None
    return PendingCreate(key=key, params=params)


def problems(annotations: Mapping[str, str]) -> list[Problem]:
    """Every procon annotation that is ignored: unknown to procon, or with a value it cannot use."""
    found: list[Problem] = []
    for name, value in sorted(annotations.items()):
        if not name.startswith(PREFIX):
            continue
        short = name.removeprefix(PREFIX)
        message: str | None = None
        if name == PAUSED:
            if value not in ("true", "false"):
                message = f"{name} is {_shown(value)}, neither true nor false; the connection is not paused"
        elif name == ROTATE_SIGNING_SECRET:
            if rotation(annotations) is None:
                message = (
                    f"{name} is {_shown(value)}; a rotation request is 1 to {MAX_ROTATION_LENGTH} "
                    "printable ASCII characters (a date or a counter); no rotation was made"
                )
        elif name == PENDING_CREATE:
            if pending_create(value) is None:
                message = (
                    f"{name} is {_shown(value)}, not a record procon wrote; ignored and removed, "
                    "and the webhook reconciled from what the processor lists"
                )
        elif short not in _KOPF_NAMES and not short.startswith(_KOPF_HANDLER_PREFIX):
            message = f"{name} is not an annotation procon uses; ignored"
        if message is not None:
            found.append(Problem(annotation=name, message=message, value_digest=_digest(value)))
    return found

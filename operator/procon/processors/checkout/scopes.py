"""Checkout.com scopes: which exist, how to probe each, and how to find missing ones cheaply.

Facts from docs/processors/checkout.md, "Scopes and their probes".
A parent scope ("disputes") grants all of its children ("disputes:view").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

PARENTS: dict[str, tuple[str, ...]] = {
    "balances": ("balances:view",),
    "disputes": ("disputes:view", "disputes:accept", "disputes:provide-evidence", "disputes:scheme-files"),
    "files": ("files:retrieve", "files:upload", "files:download"),
    "financial-actions": ("financial-actions:view",),
    "flow": ("flow:workflows", "flow:events", "flow:reflow"),
    "gateway": (
        "gateway:payment",
        "gateway:payment-details",
        "gateway:payment-authorizations",
        "gateway:payment-captures",
        "gateway:payment-refunds",
        "gateway:payment-voids",
        "gateway:payment-cancellations",
        "gateway:payment-contexts",
    ),
    "reports": ("reports:view",),
}
STANDALONE = ("payments:search",)

KNOWN_SCOPES = frozenset([*PARENTS, *(c for children in PARENTS.values() for c in children), *STANDALONE])

# The scope procon itself needs to manage the webhook workflow.
WORKFLOWS_SCOPE = "flow:workflows"


@dataclass(frozen=True)
class Probe:
    """A cheap request that a credential without the scope is refused (401 or 403)."""

    method: Literal["GET", "POST"]
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, object] | None = None
    # Host other than the main API (balances live on their own host).
    host: Literal["api", "balances"] = "api"


# For secret keys, which cannot be asked for a token of given scopes
# (docs/processors/checkout.md, "Scopes and their probes"). Any answer but 401/403 means
# the scope is held: a 404 for an id that cannot exist, a 422 for a missing
# parameter, a 200 for an empty list.
# ASSUMPTION (unconfirmed, as is the missing-scope status): Checkout.com checks
# the scope before it looks the id up or validates parameters, so a 404 or 422 comes only to a
# credential holding the scope. If it validated first, a 404/422 would hide a missing scope.
_PROBES: dict[str, Probe] = {
    "flow": Probe("GET", "/workflows"),
    "flow:workflows": Probe("GET", "/workflows"),
    "flow:events": Probe("GET", "/workflows/events/subject/pay_proconprobe0000000000000000"),
    "disputes": Probe("GET", "/disputes", {"limit": "1"}),
    "disputes:view": Probe("GET", "/disputes", {"limit": "1"}),
    "reports": Probe("GET", "/reports", {"limit": "1"}),
    "reports:view": Probe("GET", "/reports", {"limit": "1"}),
    "financial-actions": Probe(
        "GET", "/financial-actions", {"payment_id": "pay_proconprobe0000000000000000"}
    ),
    "financial-actions:view": Probe(
        "GET", "/financial-actions", {"payment_id": "pay_proconprobe0000000000000000"}
    ),
    "payments:search": Probe("POST", "/payments/search", json={"query": "id:'pay_proconprobe'", "limit": 1}),
    "gateway": Probe("GET", "/payments/pay_proconprobe0000000000000000"),
    "gateway:payment-details": Probe("GET", "/payments/pay_proconprobe0000000000000000"),
    "files": Probe("GET", "/files/file_proconprobe0000000000000000"),
    "files:retrieve": Probe("GET", "/files/file_proconprobe0000000000000000"),
}


def probe_for(scope: str, entity_id: str | None) -> Probe | None:
    """The probe for ``scope``; balances need an entity id, so without one they cannot be probed."""
    if scope in ("balances", "balances:view"):
        return Probe("GET", f"/balances/{entity_id}", host="balances") if entity_id else None
    return _PROBES.get(scope)


def split_known(required: Sequence[str]) -> tuple[list[str], list[str]]:
    """(scopes Checkout.com publishes, names it does not, such as ``risk``: reported as unknown)."""
    known = [s for s in required if s in KNOWN_SCOPES]
    unknown = [s for s in required if s not in KNOWN_SCOPES]
    return known, unknown


async def find_missing(
    scopes: Sequence[str], grants: Callable[[Sequence[str]], Awaitable[bool]]
) -> list[str]:
    """The scopes a credential lacks, asking ``grants(subset)`` as few times as group testing allows.

    A token request for a set of scopes fails with ``invalid_scope`` if any one
    is missing, and the error does not say which (docs/processors/checkout.md,
    "Access keys and tokens"). Halving the
    failing sets finds k missing scopes out of n in about 2·k·log2(n/k) + 1
    requests: one when nothing is missing, instead of n one by one.
    """
    if not scopes or await grants(scopes):
        return []
    missing: list[str] = []

    async def search(group: Sequence[str]) -> None:
        # ``group`` is known to contain at least one missing scope.
        if len(group) == 1:
            missing.append(group[0])
            return
        middle = len(group) // 2
        left, right = group[:middle], group[middle:]
        if await grants(left):
            await search(right)  # left is clean, so the missing one is on the right
            return
        await search(left)
        if not await grants(right):
            await search(right)

    await search(list(scopes))
    return sorted(missing)

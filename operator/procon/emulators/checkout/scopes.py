"""OAuth scopes and what they cover, from the spec's scope map and the official SDK enums.

Each parent scope means "access to all X resources"; endpoints in the spec list
a parent and a child (``GET /workflows``: ``[flow, flow:workflows]``). Secret
keys carry the same scope names, chosen in the Dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The scope table (docs/processors/checkout.md, "Scopes and their probes"): parent -> children.
SCOPE_TREE: dict[str, tuple[str, ...]] = {
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
# Scopes with no parent: "payments" is not a scope, so it covers nothing.
PARENTLESS = frozenset({"payments:search"})

ALL_SCOPES = frozenset(
    [*SCOPE_TREE, *(child for children in SCOPE_TREE.values() for child in children), *PARENTLESS]
)

SCOPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*(?::[a-z][a-z0-9-]*)?$")

# What each emulated endpoint accepts: any one of these scopes.
WORKFLOWS = ("flow", "flow:workflows")
FLOW_EVENTS = ("flow", "flow:events")
DISPUTES_VIEW = ("disputes", "disputes:view")
REPORTS_VIEW = ("reports", "reports:view")
FINANCIAL_ACTIONS_VIEW = ("financial-actions", "financial-actions:view")
BALANCES_VIEW = ("balances", "balances:view")
PAYMENTS_SEARCH = ("payments:search",)
PAYMENT_DETAILS = ("gateway", "gateway:payment-details")
# ASSUMPTION: GET /files/{id} takes the files family (docs/processors/checkout.md, "Scopes and their
# probes"); the 2022 spec
# file listed [disputes, disputes:view] for it (file uploads were then a Disputes feature).
FILES_RETRIEVE = ("files", "files:retrieve")


def parent(scope: str) -> str | None:
    """The scope that covers ``scope`` (``flow`` for ``flow:workflows``), or None."""
    if scope in PARENTLESS or ":" not in scope:
        return None
    return scope.partition(":")[0]


def covers(held: Iterable[str], needed: str) -> bool:
    """Whether holding ``held`` grants ``needed``.

    ASSUMPTION: a parent scope covers each of its children (an
    inference from "Access to all X resources" and the spec's parent+child
    pairs); a child never covers its parent.
    """
    granted = set(held)
    return needed in granted or (parent(needed) or "") in granted


def allows(held: Iterable[str], accepted: Iterable[str]) -> bool:
    """Whether ``held`` satisfies an endpoint accepting any one of ``accepted``.

    ASSUMPTION: the spec's parent+child list on an endpoint means "either one
    suffices" (inferred: docs/processors/checkout.md, "Scopes and their probes"), not an OpenAPI AND.
    """
    granted = list(held)
    return any(covers(granted, scope) for scope in accepted)


def parse_requested(raw: str) -> list[str]:
    """The scopes of a token request's space-separated ``scope`` field, in order, without repeats."""
    return list(dict.fromkeys(raw.split()))


def check_names(names: Iterable[str]) -> list[str]:
    """The names, checked for the shape of a scope; ValueError naming the first malformed one."""
    checked = []
    for name in names:
        if not isinstance(name, str) or not SCOPE_PATTERN.match(name):
            raise ValueError(f"{name!r} is not a scope name (like flow or flow:workflows)")
        checked.append(name)
    return checked

"""Cheap reads that tell whether a credential holds a scope, with the answers the spec describes.

Each probe accepts a parent scope or its child (docs/processors/checkout.md,
"Scopes and their probes"). The emulated accounts have no disputes, reports, payments or files,
so the answers are empty lists and 404s; that is all a scope check needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from procon.emulators.checkout import errors

# ASSUMPTION: the error codes of these 422s follow each API's documented convention: "invalid_<field>"
# for reports and financial actions (their error schemas say so); disputes' PagingError is undocumented.
DISPUTES_PAGING_INVALID = "paging_invalid"


def _integer(raw: str | None, default: int, low: int, high: int | None) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    if value < low or (high is not None and value > high):
        return None
    return value


def disputes_page(query: Mapping[str, str]) -> dict[str, Any]:
    """``GET /disputes``: ``DisputePaged`` (limit 1-250, default 50; skip >= 0), with no disputes."""
    limit = _integer(query.get("limit"), 50, 1, 250)
    skip = _integer(query.get("skip"), 0, 0, None)
    if limit is None or skip is None:
        raise errors.validation([DISPUTES_PAGING_INVALID])
    page: dict[str, Any] = {"limit": limit, "skip": skip}
    for name in ("from", "to", "id", "entity_ids", "sub_entity_ids", "statuses", "payment_id"):
        if query.get(name):
            page[name] = query[name]
    page["total_count"] = 0
    page["data"] = []
    return page


def _self_link(base: str, path: str, query: Mapping[str, str]) -> dict[str, Any]:
    suffix = f"?{urlencode(dict(query))}" if query else ""
    return {"self": {"href": f"{base}{path}{suffix}"}}


def reports_list(query: Mapping[str, str], base: str) -> dict[str, Any]:
    """``GET /reports``: ``ReportListResponse`` (limit 1-100, default 100), with no reports."""
    limit = _integer(query.get("limit"), 100, 1, 100)
    if limit is None:
        raise errors.validation(["invalid_limit"], error_type=errors.INVALID_REQUEST)
    return {"count": 0, "limit": limit, "data": [], "_links": _self_link(base, "/reports", query)}


def financial_actions_list(query: Mapping[str, str], base: str) -> dict[str, Any]:
    """``GET /financial-actions``: needs ``payment_id`` or ``action_id``; no financial actions."""
    if not query.get("payment_id") and not query.get("action_id"):
        # The spec: payment_id is "Required if action_id is not used", and vice versa.
        raise errors.validation(["invalid_payment_id"], error_type=errors.INVALID_REQUEST)
    limit = _integer(query.get("limit"), 100, 1, 100)
    if limit is None:
        raise errors.validation(["invalid_limit"], error_type=errors.INVALID_REQUEST)
    return {"count": 0, "limit": limit, "data": [], "_links": _self_link(base, "/financial-actions", query)}


def balances() -> dict[str, Any]:
    """``GET /balances/{entity_id}``: ``BalancesResponse``; emulated entities hold no currency accounts."""
    return {"data": []}


def payment_search(body: Any) -> dict[str, Any]:
    """``POST /payments/search``: no payments match."""
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    # ASSUMPTION: the answer is {"data": []} (the search API's response schema is not documented here).
    return {"data": []}

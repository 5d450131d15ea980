"""Restricted-key permissions: names, implications, and the 403 message Stripe sends.

A restricted key holds a set of ``rak_<resource>_<read|write>`` permissions. At
Stripe, write implies read, and a few read permissions imply others (the
Dashboard's permission table documents them); a key is allowed a request if the
closure of its set contains the permission the endpoint needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

_NAME = re.compile(r"^rak_[a-z0-9_]+_(?:read|write)$")

# Documented implications (docs/processors/stripe.md, "Which request probes which permission").
IMPLIED: Mapping[str, frozenset[str]] = {
    "rak_balance_transaction_source_read": frozenset(
        {"rak_application_fee_read", "rak_balance_read", "rak_transfer_read"}
    ),
    "rak_transfer_read": frozenset({"rak_payout_read"}),
    "rak_payment_intent_read": frozenset({"rak_product_read", "rak_sku_read"}),
    "rak_payment_method_read": frozenset({"rak_source_read"}),
    "rak_setup_intent_read": frozenset({"rak_mandate_read"}),
}

# Dashboard row names, used by the newer 403 message ("Enabling \"Charges Read\" ...").
# ASSUMPTION: row names from Stripe's permission tables and third-party error samples ("Prices" for plan,
# "Checkout Sessions"); other resources get their slug in title case.
RESOURCE_LABELS: Mapping[str, str] = {
    "balance": "Balance",
    "balance_transaction_source": "Balance transaction sources",
    "charge": "Charges",
    "checkout_session": "Checkout Sessions",
    "connected_account": "All Connect resources",
    "coupon": "Coupons",
    "credit_note": "Credit notes",
    "customer": "Customers",
    "dispute": "Disputes",
    "event": "Events",
    "file": "Files",
    "payment_intent": "PaymentIntents",
    "payment_method": "PaymentMethods",
    "payout": "Payouts",
    "plan": "Prices",
    "product": "Products",
    "report_runs_and_report_types": "Report Runs and Report Types",
    "setup_intent": "SetupIntents",
    "sku": "SKUs",
    "source": "Sources",
    "subscription": "Subscriptions",
    "token": "Tokens",
    "transfer": "Transfers",
    "webhook": "Webhook Endpoints",
}


class MessageStyle(StrEnum):
    """The two shapes of Stripe's insufficient-permission message (see ``denied_message``)."""

    LEGACY = "legacy"
    NEW = "new"


def normalise(name: str) -> str:
    """``charge_read`` or ``rak_charge_read`` -> ``rak_charge_read``; ValueError if not a permission name."""
    full = name if name.startswith("rak_") else f"rak_{name}"
    if not _NAME.match(full):
        raise ValueError(f"not a restricted-key permission name: {name!r}")
    return full


def closure(granted: Iterable[str]) -> frozenset[str]:
    """Everything ``granted`` allows: itself, the read half of every write, and documented implications."""
    pending = list(granted)
    allowed: set[str] = set()
    while pending:
        permission = pending.pop()
        if permission in allowed:
            continue
        allowed.add(permission)
        if permission.endswith("_write"):
            pending.append(permission.removesuffix("_write") + "_read")
        pending.extend(IMPLIED.get(permission, ()))
    return frozenset(allowed)


def allows(granted: Iterable[str], needed: str) -> bool:
    return needed in closure(granted)


def label(permission: str) -> str:
    """``rak_charge_read`` -> ``Charges Read``."""
    resource, _, access = permission.removeprefix("rak_").rpartition("_")
    name = RESOURCE_LABELS.get(resource, resource.replace("_", " ").title())
    return f"{name} {access.title()}"


def denied_message(style: MessageStyle, masked_key: str, account_id: str, needed: str) -> str:
    """Stripe's 403 message for a restricted key lacking ``needed`` on ``account_id``."""
    opening = (
        f"The provided key '{masked_key}' does not have the required permissions for this endpoint "
        f"on account '{account_id}'."
    )
    if style is MessageStyle.LEGACY:
        return f"{opening} Having the '{needed}' permission would allow this request to continue."
    # ASSUMPTION: the trailing "You can edit permissions at ..." sentence and its URL follow 3P samples
    # (docs/processors/stripe.md, "Permission errors"); parsers should rely only on the quoted slug.
    return (
        f"Permission denied. {opening} Enabling \"{label(needed)}\" ('{needed.removeprefix('rak_')}') "
        "permissions on this key would allow this request to continue. "
        "You can edit permissions at https://dashboard.stripe.com/apikeys"
    )

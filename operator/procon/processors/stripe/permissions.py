"""How to learn, without changing anything, whether a Stripe key holds a permission.

Stripe has no API for a key to list its own permissions (reference
stripe.md §2, "Key introspection"), so each permission is probed with the
cheapest request it authorises: a GET with ``limit=1`` for reads. A 200 means
granted, a 403 naming the permission means missing.

Write permissions are probed with a create that sends no parameters, where
Stripe's OpenAPI spec makes that create require some: Stripe must refuse it
either way, with a permission error when the write is not held or a
validation error when it is. ASSUMPTION: Stripe checks permissions before
validating parameters (the reference marks this ordering as unconfirmed for
the lookup probes too); a permission error for the probe is trusted, a
validation error is read as "held". Where the spec requires nothing at create
(charges, subscriptions), an empty create could succeed and make an object, so
the write is probed with an empty update of an ID that cannot exist instead:
404 when held, 403 when not (the same ordering assumption as the read probes
of sources and tokens). Every probe passes the validation of stripe-mock, which
checks requests against the spec (see docs/processors/stripe.md).

``rak_webhook_write`` is not probed: the endpoint calls the operator makes
exercise it, and a refusal there names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ProbeOutcome = Literal["granted-on-200", "granted-on-404", "granted-on-400"]


@dataclass(frozen=True)
class Probe:
    """One request that tells whether a permission is held."""

    method: Literal["GET", "POST"]
    path: str
    params: Mapping[str, object] = field(default_factory=dict)
    # Which answer, other than 403, means the permission is held.
    granted_on: ProbeOutcome = "granted-on-200"


_LIST: Mapping[str, object] = {"limit": 1}

# From the reference's permission table (stripe.md §2).
READ_PROBES: dict[str, Probe] = {
    "rak_balance_read": Probe("GET", "/v1/balance"),
    # ASSUMPTION (reference: UNCONFIRMED): the expand is refused without the
    # permission even when the list is empty.
    "rak_balance_transaction_source_read": Probe(
        "GET", "/v1/balance_transactions", {"limit": 1, "expand": ["data.source"]}
    ),
    # "Balance Transfers" in platforms' lists; ASSUMPTION (reference: UNCONFIRMED)
    # that it is Transfers, the only matching permission Stripe publishes.
    "rak_transfer_read": Probe("GET", "/v1/transfers", _LIST),
    "rak_charge_read": Probe("GET", "/v1/charges", _LIST),
    "rak_dispute_read": Probe("GET", "/v1/disputes", _LIST),
    "rak_event_read": Probe("GET", "/v1/events", _LIST),
    "rak_file_read": Probe("GET", "/v1/files", _LIST),
    "rak_payment_intent_read": Probe("GET", "/v1/payment_intents", _LIST),
    "rak_payment_method_read": Probe("GET", "/v1/payment_methods", _LIST),
    "rak_payout_read": Probe("GET", "/v1/payouts", _LIST),
    "rak_product_read": Probe("GET", "/v1/products", _LIST),
    "rak_setup_intent_read": Probe("GET", "/v1/setup_intents", _LIST),
    # No list endpoint: fetching an id that cannot exist answers 404 when the
    # permission is held. ASSUMPTION (reference: ordering unconfirmed): the
    # permission check comes before the lookup.
    "rak_source_read": Probe("GET", "/v1/sources/src_procon_probe", granted_on="granted-on-404"),
    "rak_token_read": Probe("GET", "/v1/tokens/tok_procon_probe", granted_on="granted-on-404"),
    "rak_credit_note_read": Probe("GET", "/v1/credit_notes", _LIST),
    "rak_subscription_read": Probe("GET", "/v1/subscriptions", _LIST),
    "rak_report_runs_and_report_types_read": Probe("GET", "/v1/reporting/report_runs", _LIST),
    "rak_connected_account_read": Probe("GET", "/v1/accounts", _LIST),
    "rak_webhook_read": Probe("GET", "/v1/webhook_endpoints", _LIST),
}

# Writes whose create endpoint refuses an empty body: the spec requires the
# parameters named, and the refusal names one of them.
WRITE_PROBE_REQUIRED: dict[str, tuple[str, frozenset[str]]] = {
    "rak_payment_intent_write": ("/v1/payment_intents", frozenset({"amount", "currency"})),
    "rak_product_write": ("/v1/products", frozenset({"name"})),
    "rak_payout_write": ("/v1/payouts", frozenset({"amount", "currency"})),
    "rak_transfer_write": ("/v1/transfers", frozenset({"currency", "destination"})),
    "rak_credit_note_write": ("/v1/credit_notes", frozenset({"invoice"})),
}
# Writes whose create requires nothing: an empty update of an object that cannot exist.
_WRITE_BY_UPDATE = {
    "rak_charge_write": "/v1/charges/ch_procon_probe",
    "rak_subscription_write": "/v1/subscriptions/sub_procon_probe",
}
WRITE_PROBES: dict[str, Probe] = {
    **{
        name: Probe("POST", path, granted_on="granted-on-400")
        for name, (path, _) in WRITE_PROBE_REQUIRED.items()
    },
    **{name: Probe("POST", path, granted_on="granted-on-404") for name, path in _WRITE_BY_UPDATE.items()},
}

# Checked by the endpoint calls themselves rather than by a probe.
VERIFIED_BY_USE = frozenset({"rak_webhook_write"})

# Permissions that exist but have no safe probe: /v1/skus was removed, and
# every parameter of a SetupIntent create is optional, so an empty create
# would make a real SetupIntent instead of being refused.
UNPROBEABLE = frozenset({"rak_sku_read", "rak_sku_write", "rak_setup_intent_write"})


def probe_for(permission: str) -> Probe | None:
    """The probe for ``permission``, or None when it cannot be checked safely."""
    return READ_PROBES.get(permission) or WRITE_PROBES.get(permission)


def dashboard_link(permissions: list[str], name: str) -> str:
    """A link that opens the Dashboard's new-restricted-key form with ``permissions`` ticked.

    Observed, not documented (reference stripe.md §2): the form reads
    ``permissions[]``. Shown as a convenience; nothing depends on it.
    """
    from urllib.parse import urlencode

    query = [("name", name), *(("permissions[]", p) for p in permissions)]
    return "https://dashboard.stripe.com/apikeys/create?" + urlencode(query)

"""How to learn, without changing anything, whether a Stripe key holds a permission.

Stripe has no API for a key to list its own permissions (docs/processors/stripe.md,
"Which request probes which permission"), so each permission is probed with the
cheapest request it authorises: a GET with ``limit=1`` for reads. A 200 means
granted, a 403 naming the permission means missing.

Write permissions are probed with a create that sends no parameters, where
Stripe's OpenAPI spec makes that create require some: Stripe must refuse it
either way, with a permission error when the write is not held or a
validation error when it is. ASSUMPTION: Stripe checks permissions before
validating parameters (unconfirmed for the lookup probes too: docs/processors/stripe.md,
"Which request probes which permission"); a permission error for the probe is trusted, a
validation error is read as "held". Where the spec requires nothing at create
(charges, subscriptions), an empty create could succeed and make an object, so
the write is probed with an empty update of an ID that cannot exist instead:
404 when held, 403 when not (the same ordering assumption as the read probes
of sources and tokens). Every probe passes the validation of stripe-mock, which
checks requests against the spec (docs/processors/stripe.md, "Checked against Stripe's own validator
(stripe-mock)").

``rak_webhook_write`` is not probed: the endpoint calls the operator makes
exercise it, and a refusal there names it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

# docs/processors/stripe.md, "Which request probes which permission".
READ_PROBES: dict[str, Probe] = {
    "rak_balance_read": Probe("GET", "/v1/balance"),
    # ASSUMPTION (unconfirmed, see the same section): the expand is refused without the
    # permission even when the list is empty.
    "rak_balance_transaction_source_read": Probe(
        "GET", "/v1/balance_transactions", {"limit": 1, "expand": ["data.source"]}
    ),
    # "Balance Transfers" in platforms' lists; ASSUMPTION (unconfirmed)
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
    # permission is held. ASSUMPTION (the ordering is unconfirmed): the
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


# Every restricted-key permission Stripe publishes, without the ``rak_`` prefix
# (docs/processors/stripe.md, "Permission names"). A name outside this list is
# not a permission: reported as unknown, never assumed held.
_PUBLISHED = """
account_link_write account_session_write accounts_kyc_basic_read accounts_kyc_id_numbers_read
adjustment_read api_key_write apple_pay_domain_read apple_pay_domain_write application_fee_read
application_fee_write balance_read balance_transaction_source_read billing_analytics_meter_usage_read
billing_clock_read billing_clock_write billing_intent_read billing_meter_event_read billing_meter_event_write
billing_meter_read billing_meter_write billing_profile_read billing_profile_write billing_settings_read
billing_settings_write capital_for_platforms_financing_offer_read capital_for_platforms_financing_offer_write
capital_for_platforms_financing_summary_read capital_for_platforms_financing_transaction_read charge_read
charge_write checkout_session_read checkout_session_write confirmation_token_client_read
confirmation_token_client_write confirmation_token_read connected_account_read connected_account_write
coupon_read coupon_write credit_note_read credit_note_write customer_portal_read customer_portal_write
customer_read customer_session_read customer_session_write customer_write dispute_read dispute_write
edit_link_write entitlement_read event_read fee_domain_resources_read file_read file_write
financial_account_read inbound_transfer_read invoice_read invoice_write issuing_authorization_read
issuing_authorization_write issuing_card_read issuing_card_write issuing_cardholder_read
issuing_cardholder_write issuing_credit_ledger_read issuing_credit_ledger_write issuing_dispute_read
issuing_dispute_write issuing_read issuing_token_network_data_read issuing_token_read issuing_token_write
issuing_transaction_read issuing_transaction_write issuing_verification_write issuing_write mandate_read
mandate_write order_read order_write outbound_payment_read outbound_transfer_read payment_intent_read
payment_intent_write payment_links_read payment_links_write payment_method_configurations_read
payment_method_configurations_write payment_method_domain_read payment_method_domain_write
payment_method_read payment_method_write payment_records_read payment_records_write payout_intent_read
payout_read payout_write plan_read plan_write product_catalog_import_read product_catalog_import_write
product_read product_write promotion_code_read promotion_code_write provisioning_account_request_read
provisioning_account_request_write provisioning_project_read provisioning_project_write
provisioning_resource_read provisioning_resource_write quote_read quote_write rate_card_subscription_write
rate_card_write received_credit_read received_debit_read recipient_verification_read
report_runs_and_report_types_read report_runs_and_report_types_write review_read review_write secret_read
secret_write setup_intent_read setup_intent_write shipping_rate_read shipping_rate_write sku_read sku_write
source_read source_write subscription_read subscription_write tax_calculations_and_transactions_read
tax_calculations_and_transactions_write tax_locations_read tax_locations_write tax_rate_read tax_rate_write
tax_settings_read tax_settings_write terminal_configuration_read terminal_configuration_write
terminal_connection_token_write terminal_location_read terminal_location_write terminal_reader_read
terminal_reader_write token_read token_write top_up_read top_up_write transaction_read transfer_read
transfer_write treasury_transaction_read usage_record_read usage_record_write webhook_read webhook_write
"""
KNOWN_PERMISSIONS = frozenset(f"rak_{name}" for name in _PUBLISHED.split())


def is_known(permission: str) -> bool:
    """Whether ``permission`` (``rak_charge_read``) is a permission Stripe publishes."""
    return permission in KNOWN_PERMISSIONS


def probe_for(permission: str) -> Probe | None:
    """The probe for ``permission``, or None when it cannot be checked safely."""
    return READ_PROBES.get(permission) or WRITE_PROBES.get(permission)


def as_required(permission: str | None, required: Sequence[str]) -> str | None:
    """The required permission a refusal is about: a key with no webhook access at all is refused
    ``rak_webhook_read`` by the listing, but what the spec asks, and what to grant, is the write
    (which implies the read)."""
    if permission and permission.endswith("_read"):
        write = permission.removesuffix("_read") + "_write"
        if write in required:
            return write
    return permission


def dashboard_link(permissions: list[str], name: str) -> str:
    """A link that opens the Dashboard's new-restricted-key form with ``permissions`` ticked.

    Observed, not documented (docs/processors/stripe.md, "Permission errors"): the form reads
    ``permissions[]``. Shown as a convenience; nothing depends on it.
    """
    from urllib.parse import urlencode

    query = [("name", name), *(("permissions[]", p) for p in permissions)]
    return "https://dashboard.stripe.com/apikeys/create?" + urlencode(query)

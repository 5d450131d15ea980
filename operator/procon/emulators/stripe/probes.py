"""The read-only endpoints procon uses to learn what a key may do, and their write twins.

procon checks a key's permissions by calling one cheap endpoint per permission
(a ``limit=1`` list, ``GET /v1/balance``, ``GET /v1/sources/src_...``). The
emulator holds no charges, payouts or disputes, so these lists are empty; what
matters is that each answers 200 or 403 exactly as Stripe decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from procon.emulators.stripe import errors
from procon.emulators.stripe.errors import StripeError
from procon.emulators.stripe.forms import FormValue
from procon.emulators.stripe.state import Account


@dataclass(frozen=True)
class ListProbe:
    """A list endpoint, the permission reading it needs, and the create parameters Stripe requires first."""

    path: str
    permission: str
    required_to_create: tuple[str, ...] = ()  # empty: no POST modelled on this path

    @property
    def write_permission(self) -> str:
        return self.permission.removesuffix("_read") + "_write"


# Permissions from the reference's probe table.
# ASSUMPTION: required_to_create lists the first required parameters per Stripe's API reference, in the
# order Stripe reports them; POST is modelled only where an empty POST cannot succeed at Stripe.
LIST_PROBES: tuple[ListProbe, ...] = (
    ListProbe("/v1/balance_transactions", "rak_balance_read"),
    # ASSUMPTION (reference: UNCONFIRMED): "Balance Transfers" in platforms' lists is Transfers.
    ListProbe("/v1/transfers", "rak_transfer_read", ("amount", "currency", "destination")),
    ListProbe("/v1/charges", "rak_charge_read", ("amount", "currency")),
    ListProbe("/v1/disputes", "rak_dispute_read"),
    ListProbe("/v1/events", "rak_event_read"),
    ListProbe("/v1/files", "rak_file_read"),
    ListProbe("/v1/payment_intents", "rak_payment_intent_read", ("amount", "currency")),
    ListProbe("/v1/payment_methods", "rak_payment_method_read"),
    ListProbe("/v1/payouts", "rak_payout_read", ("amount", "currency")),
    ListProbe("/v1/products", "rak_product_read", ("name",)),
    # No POST: every SetupIntent create parameter is optional, so procon never probes it.
    ListProbe("/v1/setup_intents", "rak_setup_intent_read"),
    ListProbe("/v1/credit_notes", "rak_credit_note_read", ("invoice",)),
    ListProbe("/v1/subscriptions", "rak_subscription_read", ("customer",)),
    ListProbe("/v1/reporting/report_types", "rak_report_runs_and_report_types_read"),
    ListProbe("/v1/reporting/report_runs", "rak_report_runs_and_report_types_read"),
)

BALANCE_PERMISSION = "rak_balance_read"
BALANCE_SOURCE_PERMISSION = "rak_balance_transaction_source_read"
CONNECTED_ACCOUNTS_PERMISSION = "rak_connected_account_read"
ACCOUNT_KYC_PERMISSION = "rak_accounts_kyc_basic_read"


@dataclass(frozen=True)
class ObjectProbe:
    """An object type without a list endpoint, probed by retrieving an ID that does not exist."""

    collection: str
    permission: str
    noun: str


OBJECT_PROBES: tuple[ObjectProbe, ...] = (
    ObjectProbe("/v1/sources", "rak_source_read", "source"),
    ObjectProbe("/v1/tokens", "rak_token_read", "token"),
)


def balance(account: Account, livemode: bool) -> dict[str, Any]:
    """An empty balance; ``livemode`` is why procon reads it (the account object has none)."""
    # ASSUMPTION: zero amounts in the account's default currency, card as the only source type.
    funds = [{"amount": 0, "currency": account.default_currency, "source_types": {"card": 0}}]
    body: dict[str, Any] = {"object": "balance", "available": funds}
    if account.is_platform:
        body["connect_reserved"] = [{"amount": 0, "currency": account.default_currency}]
    body["livemode"] = livemode
    body["pending"] = [dict(entry) for entry in funds]
    return body


def missing_create_parameter(probe: ListProbe, params: Mapping[str, FormValue]) -> StripeError:
    """The 400 for a POST to a probed collection; the emulator never creates these objects."""
    for name in probe.required_to_create:
        if name not in params:
            return errors.parameter_missing(name)
    # ASSUMPTION: a complete create request is answered with a 400 saying the object is not modelled,
    # since the emulator keeps no such objects (procon never creates them).
    return errors.invalid_parameter(
        probe.required_to_create[0], f"Creating objects at {probe.path} is not supported by this emulator."
    )

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

_PAGES = ("ending_before", "expand", "limit", "starting_after")


@dataclass(frozen=True)
class ListProbe:
    """A list endpoint, the permission reading it needs, and the create parameters Stripe requires first.

    ``accepts`` is every query parameter the endpoint takes (Stripe's OpenAPI spec); any other is
    refused with ``parameter_unknown``, as Stripe does. ``paginated`` is False for the few lists
    that take no ``limit`` or cursors.
    """

    path: str
    permission: str
    required_to_create: tuple[str, ...] = ()  # empty: no POST modelled on this path
    filters: tuple[str, ...] = ()
    paginated: bool = True

    @property
    def write_permission(self) -> str:
        return self.permission.removesuffix("_read") + "_write"

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset((*(_PAGES if self.paginated else ("expand",)), *self.filters))


# Permissions from docs/processors/stripe.md, "Which request probes which permission"; parameters from
# Stripe's OpenAPI spec, which the
# contract test (tests/integration/test_stripe_mock_contract.py) holds these to.
# required_to_create: the parameters the spec requires at create, in the order the emulator reports
# the first one missing. A POST is modelled only where the spec requires some, so an empty POST
# cannot succeed at Stripe.
LIST_PROBES: tuple[ListProbe, ...] = (
    ListProbe(
        "/v1/balance_transactions",
        "rak_balance_read",
        filters=("created", "currency", "payout", "source", "type"),
    ),
    # ASSUMPTION (unconfirmed): "Balance Transfers" in platforms' lists is Transfers.
    ListProbe(
        "/v1/transfers",
        "rak_transfer_read",
        ("currency", "destination"),
        filters=("created", "destination", "transfer_group"),
    ),
    # No POST: the spec requires no parameter of a charge create, so procon probes the write
    # with an update of a charge that cannot exist (WRITE_OBJECT_PROBES).
    ListProbe(
        "/v1/charges",
        "rak_charge_read",
        filters=("created", "customer", "payment_intent", "transfer_group"),
    ),
    ListProbe("/v1/disputes", "rak_dispute_read", filters=("charge", "created", "payment_intent")),
    ListProbe("/v1/events", "rak_event_read", filters=("created", "delivery_success", "type", "types")),
    ListProbe("/v1/files", "rak_file_read", filters=("created", "purpose")),
    ListProbe(
        "/v1/payment_intents",
        "rak_payment_intent_read",
        ("amount", "currency"),
        filters=("created", "customer", "customer_account"),
    ),
    ListProbe(
        "/v1/payment_methods",
        "rak_payment_method_read",
        filters=("allow_redisplay", "customer", "customer_account", "type"),
    ),
    ListProbe(
        "/v1/payouts",
        "rak_payout_read",
        ("amount", "currency"),
        filters=("arrival_date", "created", "destination", "status"),
    ),
    ListProbe(
        "/v1/products",
        "rak_product_read",
        ("name",),
        filters=("active", "created", "ids", "shippable", "url"),
    ),
    # No POST: every SetupIntent create parameter is optional, so procon never probes it.
    ListProbe(
        "/v1/setup_intents",
        "rak_setup_intent_read",
        filters=("attach_to_self", "created", "customer", "customer_account", "payment_method"),
    ),
    ListProbe(
        "/v1/credit_notes",
        "rak_credit_note_read",
        ("invoice",),
        filters=("created", "customer", "customer_account", "invoice"),
    ),
    # No POST: as for charges, the spec requires no parameter of a subscription create.
    ListProbe(
        "/v1/subscriptions",
        "rak_subscription_read",
        filters=(
            "automatic_tax",
            "collection_method",
            "created",
            "current_period_end",
            "current_period_start",
            "customer",
            "customer_account",
            "price",
            "status",
            "test_clock",
        ),
    ),
    # Report types are one short list: no limit, no cursors (Stripe refuses them as unknown).
    ListProbe("/v1/reporting/report_types", "rak_report_runs_and_report_types_read", paginated=False),
    ListProbe("/v1/reporting/report_runs", "rak_report_runs_and_report_types_read", filters=("created",)),
)

# GET /v1/accounts, a platform's connected accounts.
CONNECTED_ACCOUNTS_LIST_PARAMS = frozenset((*_PAGES, "created"))

BALANCE_PERMISSION = "rak_balance_read"
BALANCE_SOURCE_PERMISSION = "rak_balance_transaction_source_read"
CONNECTED_ACCOUNTS_PERMISSION = "rak_connected_account_read"
ACCOUNT_KYC_PERMISSION = "rak_accounts_kyc_basic_read"


@dataclass(frozen=True)
class ObjectProbe:
    """A permission probed through an object that does not exist: a retrieve, or an empty update.

    ``accepts``: the query parameters a retrieve takes (Stripe's OpenAPI spec).
    """

    collection: str
    permission: str
    noun: str
    accepts: frozenset[str] = frozenset({"expand"})


# Object types without a list endpoint, probed by retrieving an ID that does not exist.
OBJECT_PROBES: tuple[ObjectProbe, ...] = (
    ObjectProbe("/v1/sources", "rak_source_read", "source", frozenset({"client_secret", "expand"})),
    ObjectProbe("/v1/tokens", "rak_token_read", "token"),
)

# Writes whose create requires no parameter, probed by an empty update of an ID that does not exist.
WRITE_OBJECT_PROBES: tuple[ObjectProbe, ...] = (
    ObjectProbe("/v1/charges", "rak_charge_write", "charge"),
    ObjectProbe("/v1/subscriptions", "rak_subscription_write", "subscription"),
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

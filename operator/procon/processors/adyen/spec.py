"""The ``spec.adyen`` block: which Adyen account the webhook lives on, and what kind of webhook it is.

Adyen keeps webhooks per company account and per merchant account, as
separate resources under separate paths (docs/processors/adyen.md, "Webhook
configurations"). A connection names exactly one of the two; the
account cannot change afterwards, because a webhook cannot move between
them: a new account is a new connection. A company-level webhook may be
limited to some of the company's merchant accounts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from procon.api.schema import ApiModel, validations
from procon.api.schema import cel as _cel

# ASSUMPTION: account names are letters, digits and "._-" (every example in Adyen's API reference
# is, e.g. "YOUR_COMPANY_ACCOUNT", "LogeecomECOM"); the API documents no pattern.
AccountName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


# Absent fields read as their defaults in the rules below, whether or not the API server defaulted them.
_ALL_ACCOUNTS = "!has(self.filterMerchantAccountType) || self.filterMerchantAccountType == 'allAccounts'"
_NO_FILTER_ACCOUNTS = "!has(self.filterMerchantAccounts) || size(self.filterMerchantAccounts) == 0"


class FilterMerchantAccountType(StrEnum):
    """Which of the company's merchant accounts a company-level webhook delivers events of."""

    ALL_ACCOUNTS = "allAccounts"
    INCLUDE_ACCOUNTS = "includeAccounts"
    EXCLUDE_ACCOUNTS = "excludeAccounts"


class WebhookType(StrEnum):
    """The webhook types Adyen accepts on create (docs/processors/adyen.md, "Webhook fields")."""

    STANDARD = "standard"
    ACCOUNT_SETTINGS = "account-settings-notification"
    BANK_TRANSFER = "banktransfer-notification"
    BOLETO = "boletobancario-notification"
    DIRECT_DEBIT = "directdebit-notification"
    ACH_NOTIFICATION_OF_CHANGE = "ach-notification-of-change-notification"
    DIRECT_DEBIT_NOTICE_OF_CHANGE = "direct-debit-notice-of-change-notification"
    PENDING = "pending-notification"
    IDEAL = "ideal-notification"
    IDEAL_PENDING = "ideal-pending-notification"
    REPORT = "report-notification"
    RREQ = "rreq-notification"
    TERMINAL_SETTINGS = "terminal-settings"
    TERMINAL_BOARDING = "terminal-boarding"


class AdyenOptions(ApiModel):
    """Adyen-specific settings; required with `processor: adyen`."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            _cel(
                "has(self.companyAccount) != has(self.merchantAccount)",
                "adyen: set exactly one of companyAccount (a company-level webhook) and "
                "merchantAccount (a merchant-level webhook)",
            ),
            # A webhook cannot move between accounts: they are separate resources at Adyen.
            _cel(
                "has(self.companyAccount) == has(oldSelf.companyAccount) && "
                "(!has(self.companyAccount) || self.companyAccount == oldSelf.companyAccount) && "
                "(!has(self.merchantAccount) || self.merchantAccount == oldSelf.merchantAccount)",
                "adyen: the account cannot be changed after creation (a webhook cannot move between "
                "Adyen accounts); create a new ProcessorConnection instead",
            ),
            _cel(
                f"has(self.companyAccount) || (({_ALL_ACCOUNTS}) && ({_NO_FILTER_ACCOUNTS}))",
                "adyen: filterMerchantAccountType and filterMerchantAccounts apply to company-level "
                "webhooks only (set companyAccount)",
                field_path=".filterMerchantAccounts",
            ),
            _cel(
                f"({_ALL_ACCOUNTS}) == ({_NO_FILTER_ACCOUNTS})",
                "adyen: includeAccounts and excludeAccounts need filterMerchantAccounts; "
                "allAccounts takes none",
                field_path=".filterMerchantAccounts",
            ),
        )
    )

    company_account: Annotated[
        AccountName | None,
        Field(
            default=None,
            description="The company account the webhook is configured on (a company-level webhook, "
            "which Adyen recommends). The API key's credential must have access to it.",
        ),
    ] = None
    merchant_account: Annotated[
        AccountName | None,
        Field(
            default=None,
            description="The merchant account the webhook is configured on (a merchant-level webhook). "
            "Set this or companyAccount, not both.",
        ),
    ] = None
    filter_merchant_account_type: Annotated[
        FilterMerchantAccountType,
        Field(
            default=FilterMerchantAccountType.ALL_ACCOUNTS,
            description="Company-level webhooks only: deliver events of `allAccounts` (default), only "
            "of the merchant accounts listed (`includeAccounts`), or of all but them (`excludeAccounts`).",
        ),
    ] = FilterMerchantAccountType.ALL_ACCOUNTS
    filter_merchant_accounts: Annotated[
        list[AccountName],
        Field(
            default_factory=list,
            max_length=256,
            description="The merchant accounts filterMerchantAccountType includes or excludes.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]
    webhook_type: Annotated[
        WebhookType,
        Field(
            default=WebhookType.STANDARD,
            description="The Adyen webhook type, `standard` by default. Adyen cannot change it on an "
            "existing webhook, so changing it replaces the webhook and publishes a new HMAC key.",
        ),
    ] = WebhookType.STANDARD

    @property
    def level(self) -> str:
        """``companies`` or ``merchants``: the account level, as it appears in the API's paths."""
        return "companies" if self.company_account else "merchants"

    @property
    def account(self) -> str:
        return self.company_account or self.merchant_account or ""

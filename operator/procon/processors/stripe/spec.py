"""The ``spec.stripe`` block of a ProcessorConnection."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from procon.api.schema import ApiModel


class StripeOptions(ApiModel):
    """Stripe-specific settings; allowed only with `processor: stripe`."""

    api_version: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$",
            description="Stripe API version the webhook endpoint renders events with, such as "
            "`2026-06-24.dahlia`. Stripe cannot change it on an existing endpoint, so changing it "
            "replaces the endpoint and publishes a new signing secret. Defaults to the account's version.",
        ),
    ] = None
    connect: Annotated[
        bool,
        Field(
            default=False,
            description="Create a Connect endpoint on the platform account, receiving events from connected "
            "accounts. Like `apiVersion`, it cannot be changed on an existing endpoint.",
        ),
    ] = False
    account: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            pattern=r"^acct_[A-Za-z0-9]+$",
            description="Act on this connected account (sent as the `Stripe-Account` header). A restricted "
            "key then needs Connect permissions.",
        ),
    ] = None

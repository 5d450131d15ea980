"""The ``spec.checkout`` block of a ProcessorConnection."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from procon.api.schema import ApiModel

CheckoutEntityId = Annotated[str, Field(max_length=64, pattern=r"^ent_[a-z0-9]+$")]
CheckoutChannelId = Annotated[str, Field(max_length=64, pattern=r"^pc_[a-z0-9]+$")]


class CheckoutOptions(ApiModel):
    """Checkout.com-specific settings; allowed only with `processor: checkout`."""

    client_id: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            pattern=r"^cli_[a-z0-9]{8,}$",
            description="The account's client id (`cli_...`). Its first eight characters after `cli_` select "
            "the account-specific API hosts.",
        ),
    ] = None
    entities: Annotated[
        list[CheckoutEntityId],
        Field(
            default_factory=list,
            max_length=64,
            description="Deliver only events of these entities (`ent_...`). Empty means all entities the "
            "credentials can see.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]
    processing_channels: Annotated[
        list[CheckoutChannelId],
        Field(
            default_factory=list,
            max_length=64,
            description="Deliver only events of these processing channels (`pc_...`). Empty means all.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]

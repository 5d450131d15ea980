"""Checkout.com: the driver (webhooks as Workflows), its spec block, settings, and scopes."""

from __future__ import annotations

from collections.abc import Mapping

from procon.api.schema import Mode
from procon.processors.calls import RateLimit
from procon.processors.checkout import settings
from procon.processors.checkout.driver import CheckoutDriver
from procon.processors.checkout.spec import CheckoutOptions
from procon.processors.plugin import DriverContext, ProcessorPlugin, SpecText

# Per account, across all APIs and credentials (docs/processors/checkout.md, "Rate limits procon
# keeps to"): 80% of production's 100 reads a second; ASSUMPTION: sandbox's lower, unpublished limit
# taken as a tenth of production's.
RATE_LIMITS = {
    Mode.LIVE: RateLimit(per_second=80.0, burst=20),
    Mode.TEST: RateLimit(per_second=10.0, burst=5),
}


def _driver(env: Mapping[str, str], context: DriverContext) -> CheckoutDriver:
    return CheckoutDriver(
        settings.api_base(env), settings.auth_base(env), cache_ttl=context.permission_cache_ttl
    )


PLUGIN = ProcessorPlugin(
    name="checkout",
    title="Checkout.com",
    options=CheckoutOptions,
    spec_text=SpecText(
        credential_keys="`secretKey`, or the pair `accessKeyId`/`accessKeySecret`",
        events="event type ids such as `payment_approved`, or whole categories by display name "
        "(`Gateway`, `Disputes`, `Fraud`, `Reports`)",
        permissions="scopes such as `disputes:view`",
        no_description="its workflows carry procon's ownership tag as their name",
    ),
    settings=settings.SETTINGS,
    driver=_driver,
    describe=lambda env: f"API {settings.api_base(env) or 'of Checkout.com'}",
    rate_limit=RATE_LIMITS.__getitem__,
)

__all__ = ["PLUGIN", "CheckoutDriver"]

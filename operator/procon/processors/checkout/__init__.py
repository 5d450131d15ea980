"""Checkout.com: the driver (webhooks as Workflows), its spec block, settings, and scopes."""

from __future__ import annotations

from collections.abc import Mapping

from procon.api.schema import Mode
from procon.processors.calls import RateLimit
from procon.processors.checkout import settings
from procon.processors.checkout.driver import CheckoutDriver
from procon.processors.checkout.redaction import REDACTION
from procon.processors.checkout.spec import CheckoutOptions
from procon.processors.plugin import Demo, DriverContext, ProcessorPlugin, SpecText

# The account hosts ({prefix}.api...) reach the emulator through it as a proxy: the driver builds
# prefixed names from these as it does from Checkout.com's own.
DEMO_API_BASE = "http://api.checkout.test"
DEMO_AUTH_BASE = "http://access.checkout.test"


def _demo_env(emulator: str) -> dict[str, str]:
    return {
        settings.API_BASE.name: DEMO_API_BASE,
        settings.AUTH_BASE.name: DEMO_AUTH_BASE,
        "HTTP_PROXY": emulator,
    }


def _describe(env: Mapping[str, str]) -> str:
    api, auth = settings.api_base(env), settings.auth_base(env)  # both checked, SettingsError
    return f"API {api or 'of Checkout.com'}" + (f", token host {auth}" if auth else "")


# Per account, across all APIs and credentials (docs/processors/checkout.md, "Rate limits procon
# keeps to"): 80% of production's 100 reads a second; ASSUMPTION: sandbox's lower, unpublished limit
# taken as a tenth of production's.
RATE_LIMITS = {
    Mode.LIVE: RateLimit(per_second=80.0, burst=20),
    Mode.TEST: RateLimit(per_second=10.0, burst=5),
}


def _driver(env: Mapping[str, str], context: DriverContext) -> CheckoutDriver:
    return CheckoutDriver(
        settings.api_base(env),
        settings.auth_base(env),
        cache_ttl=context.permission_cache_ttl,
        catalog_ttl=context.recheck_interval,
    )


PLUGIN = ProcessorPlugin(
    name="checkout",
    title="Checkout.com",
    order=20,
    options=CheckoutOptions,
    spec_text=SpecText(
        credential_keys="`secretKey`, or the pair `accessKeyId`/`accessKeySecret`",
        events="event type ids such as `payment_approved`, or whole categories by display name "
        "(`Gateway`, `Disputes`, `Fraud`, `Reports`)",
        permissions="scopes such as `disputes:view`",
        no_description="its workflows carry procon's ownership tag as their name",
    ),
    settings=settings.SETTINGS,
    redaction=REDACTION,
    demo=Demo(operator_env=_demo_env),
    driver=_driver,
    describe=_describe,
    rate_limit=RATE_LIMITS.__getitem__,
)

__all__ = ["PLUGIN", "CheckoutDriver"]

"""Stripe: the driver, its spec block, settings, and what it knows about restricted-key permissions."""

from __future__ import annotations

from collections.abc import Mapping

from procon.api.schema import Mode
from procon.processors.calls import RateLimit
from procon.processors.plugin import Demo, DriverContext, ProcessorPlugin, SpecText
from procon.processors.stripe import settings
from procon.processors.stripe.driver import StripeDriver
from procon.processors.stripe.redaction import REDACTION
from procon.processors.stripe.spec import StripeOptions


def _driver(env: Mapping[str, str], context: DriverContext) -> StripeDriver:
    return StripeDriver(settings.api_base(env), permission_cache_ttl=context.permission_cache_ttl)


# Requests a second per account by mode, and per endpoint, as Stripe documents them
# (docs/processors/stripe.md, "Rate limits procon keeps to"): procon's requests nearly all go to one
# endpoint, so the lower binds, and procon keeps 20% below it.
ACCOUNT_RATE = {Mode.TEST: 25.0, Mode.LIVE: 100.0}
ENDPOINT_RATE = 25.0
MARGIN = 0.8


def _rate_limit(mode: Mode) -> RateLimit:
    return RateLimit(per_second=min(ACCOUNT_RATE[mode], ENDPOINT_RATE) * MARGIN, burst=10)


PLUGIN = ProcessorPlugin(
    name="stripe",
    title="Stripe",
    order=10,
    options=StripeOptions,
    spec_text=SpecText(
        credential_keys="`apiKey`",
        events="event type names such as `payment_intent.succeeded`, or `*` alone for all events",
        permissions="restricted-key permissions such as `rak_charge_read`",
    ),
    settings=settings.SETTINGS,
    redaction=REDACTION,
    demo=Demo(operator_env=lambda emulator: {settings.API_BASE.name: emulator}),
    # The SDK logs every request at info.
    chatty_loggers=("stripe",),
    driver=_driver,
    describe=lambda env: f"API {settings.api_base(env)}",
    rate_limit=_rate_limit,
)

__all__ = ["PLUGIN", "StripeDriver"]

"""Adyen: the Management API driver (webhook configurations), its spec block, settings, roles and
key shapes."""

from __future__ import annotations

from collections.abc import Mapping

from procon.processors.adyen import settings
from procon.processors.adyen.driver import AdyenDriver
from procon.processors.adyen.redaction import REDACTION
from procon.processors.adyen.spec import AdyenOptions
from procon.processors.plugin import CONSERVATIVE_RATE, Demo, DriverContext, ProcessorPlugin, SpecText


def _demo_env(emulator: str) -> dict[str, str]:
    """The emulator serves each environment under its own path, refusing the other's keys there."""
    return {
        settings.TEST_API_BASE.name: f"{emulator}/test/v3",
        settings.LIVE_API_BASE.name: f"{emulator}/live/v3",
    }


def _driver(env: Mapping[str, str], context: DriverContext) -> AdyenDriver:
    return AdyenDriver(settings.api_bases(env), cache_ttl=context.permission_cache_ttl)


PLUGIN = ProcessorPlugin(
    name="adyen",
    title="Adyen",
    order=30,
    options=AdyenOptions,
    spec_text=SpecText(
        credential_keys="`apiKey` (the API key of an API credential)",
        events="event codes such as `AUTHORISATION` or `REFUND` (Adyen sends its default codes to "
        "every standard webhook as well)",
        permissions="API credential roles as Adyen names them, such as "
        "`Management API - Webhooks read and write`, or as lower-case slugs such as "
        "`management-api-webhooks-read-and-write` (compared ignoring case, spaces and punctuation)",
        no_description="its webhooks carry procon's ownership tag as their description",
    ),
    settings=settings.SETTINGS,
    redaction=REDACTION,
    # Role names as Adyen's documents and GET /me spell them: words, spaces, hyphens, en and em
    # dashes (docs/processors/adyen.md, "Role names and their spellings").
    permission_pattern="^[A-Za-z0-9]([A-Za-z0-9 ._:/()\u2013\u2014-]*[A-Za-z0-9)])?$",
    # Its webhooks belong to a company or a merchant account, which only spec.adyen names.
    options_required=True,
    demo=Demo(operator_env=_demo_env),
    driver=_driver,
    describe=settings.describe,
    # ASSUMPTION: Adyen publishes no rate limit for its webhook endpoints (docs/processors/adyen.md,
    # "Rate limits"): procon's conservative rate, per account and mode.
    rate_limit=lambda mode: CONSERVATIVE_RATE,
)

__all__ = ["PLUGIN", "AdyenDriver"]

"""Stripe's operator settings: where the operator sends Stripe calls.

Operator-level only, never in a ProcessorConnection: a user who may create
connections must not be able to point the operator's keys at a server of
their choosing (see :mod:`procon.settings`).
"""

from __future__ import annotations

from collections.abc import Mapping

from procon.processors.plugin import EnvSetting
from procon.settings import url_setting

DEFAULT_API_BASE = "https://api.stripe.com"

API_BASE = EnvSetting(
    name="PROCON_STRIPE_API_BASE",
    value="apiBase",
    description="Stripe API base URL",
    unset=DEFAULT_API_BASE,
)

SETTINGS = (API_BASE,)


def api_base(env: Mapping[str, str]) -> str:
    return url_setting(env, API_BASE.name, DEFAULT_API_BASE)

"""Checkout.com's operator settings: where the operator sends Checkout.com calls.

Operator-level only, never in a ProcessorConnection (see :mod:`procon.settings`);
a connection's ``checkout.clientId`` only prefixes these hosts' names.
"""

from __future__ import annotations

from collections.abc import Mapping

from procon.processors.plugin import EnvSetting
from procon.settings import url_setting

API_BASE = EnvSetting(
    name="PROCON_CHECKOUT_API_BASE",
    value="apiBase",
    description="Checkout.com API base URL, for both modes",
    unset="Checkout.com's sandbox or production host, by the connection's mode",
)
AUTH_BASE = EnvSetting(
    name="PROCON_CHECKOUT_AUTH_BASE",
    value="authBase",
    description="Checkout.com OAuth token host, for both modes",
    unset="Checkout.com's own, by the connection's mode",
)

SETTINGS = (API_BASE, AUTH_BASE)


def api_base(env: Mapping[str, str]) -> str | None:
    """None: Checkout.com's own hosts, sandbox or production by spec.mode."""
    return url_setting(env, API_BASE.name, "") if env.get(API_BASE.name) else None


def auth_base(env: Mapping[str, str]) -> str | None:
    return url_setting(env, AUTH_BASE.name, "") if env.get(AUTH_BASE.name) else None

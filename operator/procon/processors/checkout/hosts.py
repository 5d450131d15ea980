"""Where Checkout.com is, and what a key's shape says.

Sandbox and production are separate hosts, and an account's own hosts carry
the first eight characters of its client id as a subdomain (docs/processors/checkout.md,
"Hosts"). Only operator configuration may move them (a proxy, an
emulator), never a connection, so a namespace user cannot send the operator's
keys elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from procon.api.schema import Mode

REAL_API = {Mode.TEST: "https://api.sandbox.checkout.com", Mode.LIVE: "https://api.checkout.com"}
REAL_AUTH = {Mode.TEST: "https://access.sandbox.checkout.com", Mode.LIVE: "https://access.checkout.com"}

# The previous ("ABC") platform's secret keys are UUID-shaped (docs/processors/checkout.md, "Secret keys").
PREVIOUS_PLATFORM_KEY = re.compile(r"^sk_(test_)?\w{8}-\w{4}-\w{4}-\w{4}-\w{12}$")

BaseSetting = str | Mapping[Mode, str] | None


def per_mode(base: BaseSetting, real: Mapping[Mode, str]) -> dict[Mode, str]:
    """One base for every mode, a base per mode, or (None) Checkout.com's own hosts per mode."""
    if base is None:
        return dict(real)
    if isinstance(base, str):
        return dict.fromkeys(Mode, base)
    return {mode: base.get(mode, real[mode]) for mode in Mode}


def with_prefix(base: str, prefix: str | None) -> str:
    """``https://api.checkout.com`` + ``vkuhvk4v`` -> ``https://vkuhvk4v.api.checkout.com``."""
    if not prefix:
        return base
    parts = urlsplit(base)
    return urlunsplit(parts._replace(netloc=f"{prefix}.{parts.netloc}"))


def balances_base(api_base: str) -> str | None:
    """The balances host for an *unprefixed* API base: ``api.`` becomes ``balances.``.

    Balances are a separate host that is never account-prefixed (the SDKs apply the subdomain only to
    the API and OAuth hosts: docs/processors/checkout.md, "Hosts"), so callers pass the base before any
    prefix. None when the base does not start with ``api.`` (an IP address, say): the balances host cannot be
    derived then, and probing the API host instead would read its 404 for an unknown path as "scope held".
    """
    parts = urlsplit(api_base)
    if parts.netloc.startswith("api."):
        return urlunsplit(parts._replace(netloc="balances." + parts.netloc[len("api.") :]))
    return None


def account_prefix(client_id: str | None) -> str | None:
    """The first eight characters after ``cli_`` (docs/processors/checkout.md, "Hosts")."""
    return client_id[4:12] if client_id and client_id.startswith("cli_") else None


def is_previous_platform_key(key: str) -> bool:
    """Whether ``key`` is a previous-platform (ABC) secret key, ``sk_[test_]<uuid>``.

    Those keys reach neither Workflows nor the scopes procon needs (that platform has only the
    legacy ``/webhooks`` API: docs/processors/checkout.md, "Secret keys"), and ``sk_test_`` would otherwise
    read as a production ``sk_`` key.
    """
    return PREVIOUS_PLATFORM_KEY.match(key) is not None


def mode_of_secret_key(key: str) -> Mode | None:
    """A current-platform key's mode by its prefix (docs/processors/checkout.md, "Secret keys"); None for
    anything else."""
    if is_previous_platform_key(key):
        return None
    if key.startswith("sk_sbox_"):
        return Mode.TEST
    if key.startswith("sk_"):
        return Mode.LIVE
    return None

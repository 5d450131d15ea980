"""Where Adyen's Management API is, for each environment: operator configuration only.

Test and live are separate hosts, and a key works only with the host of the
environment it was made in (docs/processors/adyen.md, "Hosts and
environments"). Only the operator's environment may move them (a proxy, the
emulator), never a connection, so a namespace user cannot send the
operator's keys elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from procon.api.v1alpha1 import Mode

REAL_API = {
    Mode.TEST: "https://management-test.adyen.com/v3",
    Mode.LIVE: "https://management-live.adyen.com/v3",
}

TEST_API_BASE = "PROCON_ADYEN_TEST_API_BASE"
LIVE_API_BASE = "PROCON_ADYEN_LIVE_API_BASE"


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable of the operator, as the chart and the docs present it."""

    name: str
    default: str
    description: str


ENV_SETTINGS = (
    EnvSetting(
        TEST_API_BASE,
        REAL_API[Mode.TEST],
        "Adyen's Management API for test-mode connections, version path included",
    ),
    EnvSetting(
        LIVE_API_BASE,
        REAL_API[Mode.LIVE],
        "Adyen's Management API for live-mode connections, version path included",
    ),
)


class AdyenSettingsError(ValueError):
    """A setting has a value the operator cannot use; the message names it."""


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip().rstrip("/") or default
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AdyenSettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value


@dataclass(frozen=True)
class AdyenSettings:
    """The Management API base for each mode (defaults: Adyen's own hosts, ``/v3``)."""

    api_bases: Mapping[Mode, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdyenSettings:
        return cls(
            {
                Mode.TEST: _url(env, TEST_API_BASE, REAL_API[Mode.TEST]),
                Mode.LIVE: _url(env, LIVE_API_BASE, REAL_API[Mode.LIVE]),
            }
        )

    @classmethod
    def default(cls) -> AdyenSettings:
        return cls(dict(REAL_API))

    def describe(self) -> str:
        """For the start-up log line."""
        if dict(self.api_bases) == REAL_API:
            return "Adyen's"
        return ", ".join(f"{mode.value} {base}" for mode, base in sorted(self.api_bases.items()))

"""Adyen's operator settings: where the operator sends Adyen calls, for each environment.

Test and live are separate hosts, and a key works only with the host of the
environment it was made in (docs/processors/adyen.md, "Test and
live"). Only the operator's environment may move them (a proxy, the
emulator), never a connection (see :mod:`procon.settings`), so a namespace
user cannot send the operator's keys elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from procon.api.schema import Mode
from procon.processors.plugin import EnvSetting
from procon.settings import url_setting

REAL_API = {
    Mode.TEST: "https://management-test.adyen.com/v3",
    Mode.LIVE: "https://management-live.adyen.com/v3",
}

TEST_API_BASE = EnvSetting(
    name="PROCON_ADYEN_TEST_API_BASE",
    value="testApiBase",
    description="Adyen Management API base URL for test-mode connections, version path included",
    unset="Adyen's own test host",
)
LIVE_API_BASE = EnvSetting(
    name="PROCON_ADYEN_LIVE_API_BASE",
    value="liveApiBase",
    description="Adyen Management API base URL for live-mode connections, version path included",
    unset="Adyen's own live host",
)

SETTINGS = (TEST_API_BASE, LIVE_API_BASE)


def api_bases(env: Mapping[str, str]) -> dict[Mode, str]:
    """The Management API base per mode; raises SettingsError naming a value it cannot use."""
    return {
        Mode.TEST: url_setting(env, TEST_API_BASE.name, REAL_API[Mode.TEST])
        if (env.get(TEST_API_BASE.name) or "").strip()
        else REAL_API[Mode.TEST],
        Mode.LIVE: url_setting(env, LIVE_API_BASE.name, REAL_API[Mode.LIVE])
        if (env.get(LIVE_API_BASE.name) or "").strip()
        else REAL_API[Mode.LIVE],
    }


def describe(env: Mapping[str, str]) -> str:
    """Where the calls go, for the operator's start-up log line."""
    bases = api_bases(env)
    if bases == REAL_API:
        return "Management API of Adyen"
    return "Management API " + ", ".join(f"{mode.value} {bases[mode]}" for mode in (Mode.TEST, Mode.LIVE))

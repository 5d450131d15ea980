"""The value lists Stripe validates webhook endpoint parameters against.

They are data files (one value a line) rather than code so they can be refreshed
from Stripe's OpenAPI spec without touching the emulator.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


def _read_lines(name: str) -> tuple[str, ...]:
    text = resources.files("procon.emulators.stripe").joinpath("data", name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def enabled_events() -> tuple[str, ...]:
    """Every allowed ``enabled_events`` value, ``*`` included, in Stripe's order."""
    return _read_lines("stripe-enabled-events.txt")


@cache
def webhook_api_versions() -> tuple[str, ...]:
    """Every allowed webhook ``api_version``, oldest first."""
    return _read_lines("stripe-webhook-api-versions.txt")


def latest_api_version() -> str:
    return webhook_api_versions()[-1]

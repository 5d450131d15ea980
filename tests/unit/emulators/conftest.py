"""A running Stripe emulator (one per module, reset for each test) and clients that talk to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from procon.emulators.stripe import StripeEmulator

DEMO_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "stripe-demo.yaml"

PLATFORM = "acct_1PJBLEBBLEfV"
CONNECTED = "acct_1Connected01"
STANDALONE = "acct_1Standalone01"

SK_TEST = "sk_test_51PJBLEBBLEfVdemoPlatformSecretTestS8wL"
SK_LIVE = "sk_live_51DemoLiveL1ve"
RK_OPERATOR = "rk_test_51PJBLEBBLEfVdemoOperatorRestrictedqs8Kgd"
RK_READ_ONLY = "rk_test_51PJBLEBBLEfVdemoReadOnlyRestrictedR3adOn"
RK_NO_CONNECT = "rk_test_51PJBLEBBLEfVdemoNoConnectRestrictedN0Conn"
RK_EXPIRED = "rk_test_51PJBLEBBLEfVdemoExpiredRestrictedExp123"
RK_LIVE = "rk_live_51DemogbeftZ"
SK_STANDALONE = "sk_test_51Standalone01demoSecretKeyTestAl0n"

HOOK = "https://hooks.example.com/stripe"

ClientFactory = Callable[..., stripe.StripeClient]


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator.from_fixture(DEMO_FIXTURE, seed=7) as emulator:
        yield emulator


@pytest.fixture
def emu(running_emulator: StripeEmulator) -> StripeEmulator:
    running_emulator.reset()
    return running_emulator


@pytest.fixture(scope="module")
def stripe_http() -> Iterator[stripe.HTTPXClient]:
    client = stripe.HTTPXClient(allow_sync_methods=True)
    yield client
    client.close()


@pytest.fixture
def make_client(emu: StripeEmulator, stripe_http: stripe.HTTPXClient) -> ClientFactory:
    """``make_client(key, **StripeClient options)``: the official SDK, pointed at the emulator."""

    def make(key: str = SK_TEST, **options: Any) -> stripe.StripeClient:
        return stripe.StripeClient(
            key, base_addresses={"api": emu.base_url}, http_client=stripe_http, **options
        )

    return make


@pytest.fixture
def http(emu: StripeEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP, for what the SDK hides: headers, exact bodies, odd requests."""
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}

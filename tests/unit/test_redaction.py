"""Nothing that looks like key material or an account id leaves verbatim."""

from __future__ import annotations

import logging

import pytest

from procon.redaction import REDACTED, RedactingFilter, mask_account, redact, register_secret

STRIPE_403 = (
    "The provided key 'rk_test_***********************************qs8Kgd' does not have the required "
    "permissions for this endpoint on account 'acct_1PJBLEBBLEfV'. Having the 'rak_charge_read' "
    "permission would allow this request to continue."
)


def test_stripe_permission_message() -> None:
    out = redact(STRIPE_403)
    assert "qs8Kgd" not in out
    assert "acct_1PJBLEBBLEfV" not in out
    assert "acct_…LEfV" in out
    assert "rak_charge_read" in out  # the useful part survives


# Assembled at run time so that no committed line looks like a live credential to secret scanners.
FAKE_LIVE_KEY = "rk_" + "live_51Hx" + "0" * 28
FAKE_SIGNING_SECRET = "whsec" + "_0123456789abcdefABCDEF0123456789"


@pytest.mark.parametrize(
    "secret",
    [
        "sk_test_51Hx0000000000000000000000000000",
        FAKE_LIVE_KEY,
        FAKE_SIGNING_SECRET,
        "sk_sbox_m73dzbpy7cf3gfd46xr4yj5xo4e",
        "ack_clckqmmnyfiupexjew7shh5ahe",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwcm9jb24ifQ.c2lnbmF0dXJl",
    ],
)
def test_credential_shapes(secret: str) -> None:
    out = redact(f"boom: {secret} failed")
    assert secret not in out
    assert REDACTED in out


def test_registered_values_of_any_shape() -> None:
    register_secret("a-very-unusual-credential-9f8e7d")
    assert "9f8e7d" not in redact("token a-very-unusual-credential-9f8e7d refused")


def test_registered_values_are_also_caught_base64_encoded() -> None:
    register_secret("sk_test_51Base64Shaped0000000000000000")
    body = '{"data":{"apiKey":"c2tfdGVzdF81MUJhc2U2NFNoYXBlZDAwMDAwMDAwMDAwMDAwMDA="}}'
    assert "c2tfdGVzdF81MUJhc2U2NFNoYXBlZDAwMDAwMDAw" not in redact(body)


def test_mask_account() -> None:
    assert mask_account("acct_1PJBLEBBLEfV") == "acct_…LEfV"
    assert mask_account("not-an-account") == "not-an-account"


def test_logging_filter_redacts_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("procon.test.redaction")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="procon.test.redaction"):
            log.info("key %s used", "sk_test_51Hx0000000000000000000000000000")
            try:
                raise RuntimeError(f"Invalid API Key provided: {FAKE_LIVE_KEY}")
            except RuntimeError:
                log.exception("failed")
    finally:
        handler.removeFilter(handler.filters[-1])
    text = caplog.text
    assert "sk_test_51Hx" not in text
    assert "rk_live_51Hx" not in text
    assert "Invalid API Key provided" in text

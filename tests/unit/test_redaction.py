"""Nothing that looks like key material or an account id leaves verbatim, and nobody's
secrets blank out another connection's words."""

from __future__ import annotations

import logging
import secrets
import string

import pytest

from procon import redaction
from procon.redaction import (
    REDACTED,
    RedactingFilter,
    SecretRegister,
    connection_scope,
    forget,
    mask_account,
    redact,
    redact_all,
    redact_url,
    remember,
)


@pytest.fixture(autouse=True)
def fresh_register(monkeypatch: pytest.MonkeyPatch) -> SecretRegister:
    """Each test starts with an empty register (the module's is process-wide)."""
    register = SecretRegister()
    monkeypatch.setattr(redaction, "_register", register)
    return register


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
        # Whatever follows a key prefix goes with it, dashes included: a UUID-shaped secret part
        # once left four of its five groups in the clear.
        "sk_test_0f8fad5b-d9cb-469f-a165-70867728950e",
        "rk_live_0f8fad5b-d9cb-469f-a165-70867728950e",
        "pk_test_0f8fad5b-d9cb-469f-a165-70867728950e",
        "sk_0f8fad5b-d9cb-469f-a165-70867728950e",
        "sk_sbox_0f8fad5b-d9cb-469f-a165-70867728950e",
        "sk_test_51Hx_under_scored-and-dashed.0000",
    ],
)
def test_credential_shapes(secret: str) -> None:
    out = redact(f"boom: {secret} failed")
    assert out == f"boom: {REDACTED} failed"


def test_a_uuid_shaped_stripe_key_leaves_nothing_behind() -> None:
    out = redact("Invalid API Key provided: sk_test_0f8fad5b-d9cb-469f-a165-70867728950e")
    assert out == f"Invalid API Key provided: {REDACTED}"
    for group in ("0f8fad5b", "d9cb", "469f", "a165", "70867728950e"):
        assert group not in out


def test_prose_about_key_prefixes_is_left_alone() -> None:
    text = "the Secret does not hold a Stripe secret (sk_) or restricted (rk_) key"
    assert redact(text) == text


def test_registered_values_of_any_shape() -> None:
    remember("ns/shop", ["a-very-unusual-credential-9f8e7d"])
    assert "9f8e7d" not in redact("token a-very-unusual-credential-9f8e7d refused", "ns/shop")
    assert "9f8e7d" not in redact_all("token a-very-unusual-credential-9f8e7d refused")


def test_registered_values_are_also_caught_base64_encoded() -> None:
    remember("ns/shop", ["sk_test_51Base64Shaped0000000000000000"])
    body = '{"data":{"apiKey":"c2tfdGVzdF81MUJhc2U2NFNoYXBlZDAwMDAwMDAwMDAwMDAwMDA="}}'
    assert "c2tfdGVzdF81MUJhc2U2NFNoYXBlZDAwMDAwMDAw" not in redact(body, "ns/shop")
    assert "c2tfdGVzdF81MUJhc2U2NFNoYXBlZDAwMDAwMDAw" not in redact_all(body)


def test_a_value_registered_for_one_connection_does_not_touch_another_connections_text() -> None:
    """The poisoning: a tenant puts a common word in its Secret; another tenant's events and
    URLs stay whole. The operator's log (every scope) still hides it."""
    remember(connection_scope("tenant-b", "shop"), ["webhooks-example"], part="credentials")
    event = "created webhook we_1Pabc at https://webhooks-example.com/stripe"
    assert redact(event, connection_scope("tenant-a", "shop")) == event
    assert redact(event) == event
    assert "webhooks-example" not in redact(event, connection_scope("tenant-b", "shop"))
    assert "webhooks-example" not in redact_all(event)


def test_registering_again_replaces_a_part_and_leaves_the_others() -> None:
    scope = connection_scope("ns", "shop")
    remember(scope, ["old-credential-value-1"], part="credentials")
    remember(scope, ["signing-secret-value-1"], part="signing")
    remember(scope, ["new-credential-value-2"], part="credentials")  # the Secret changed
    out = redact("old-credential-value-1 new-credential-value-2 signing-secret-value-1", scope)
    assert out == f"old-credential-value-1 {REDACTED} {REDACTED}"


def test_forgotten_connections_values_are_no_longer_redacted(fresh_register: SecretRegister) -> None:
    scope = connection_scope("ns", "shop")
    remember(scope, ["credential-of-a-deleted-connection"], part="credentials")
    remember(scope, ["its-signing-secret-000"], part="signing")
    forget(scope)
    text = "credential-of-a-deleted-connection its-signing-secret-000"
    assert redact_all(text) == text
    assert fresh_register.count() == 0


def test_short_and_huge_values_are_not_registered(fresh_register: SecretRegister) -> None:
    remember("ns/shop", ["short", "x" * (redaction.MAX_VALUE_LENGTH + 1)])
    assert fresh_register.count() == 0
    assert redact_all("short words stay") == "short words stay"


def test_shared_values_apply_to_every_scope_but_only_when_unmistakable() -> None:
    remember("checkout-token:a", ["an-oauth-token-procon-obtained-0123"], shared=True)
    remember("checkout-token:b", ["payments"], shared=True)  # too short to be trusted everywhere
    assert redact("an-oauth-token-procon-obtained-0123 payments", "ns/any") == f"{REDACTED} payments"


def test_the_register_is_bounded_and_drops_the_least_recently_registered_first() -> None:
    register = SecretRegister(max_values=20)
    alnum = string.ascii_letters + string.digits
    values = {f"ns/c{n}": "".join(secrets.choice(alnum) for _ in range(40)) for n in range(30)}
    for scope, value in values.items():
        register.remember(scope, [value])  # two entries each, with the base64 form
    assert register.count() <= 20
    found = {scope for scope, value in values.items() if register.spans(value, None, everything=True)}
    assert found == {f"ns/c{n}" for n in range(20, 30)}  # the ten most recent


def test_a_connection_registering_again_stays_in_the_register() -> None:
    register = SecretRegister(max_values=4)
    register.remember("ns/a", ["value-of-connection-a"])
    register.remember("ns/b", ["value-of-connection-b"])
    register.remember("ns/a", ["value-of-connection-a"])  # a's next reconcile
    register.remember("ns/c", ["value-of-connection-c"])
    assert register.spans("value-of-connection-a", None, everything=True)
    assert not register.spans("value-of-connection-b", None, everything=True)


def test_keys_dropped_from_the_register_are_still_caught_by_their_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register = SecretRegister(max_values=2)
    monkeypatch.setattr(redaction, "_register", register)
    key = "rk_test_51" + "A" * 30
    remember("ns/old", [key])
    remember("ns/new", ["a-newer-connections-credential"])
    assert not register.spans(key, None, everything=True)
    assert redact_all(f"refused {key}") == f"refused {REDACTED}"


def test_overlapping_values_are_redacted_as_one() -> None:
    remember("ns/shop", ["abcdefgh12345678", "12345678zyxwvuts"])
    assert redact("x abcdefgh12345678zyxwvuts y", "ns/shop") == f"x {REDACTED} y"


def test_every_occurrence_is_found_whatever_its_alignment() -> None:
    value = "credential-0123456789"
    remember("ns/shop", [value])
    for prefix in range(9):
        text = "." * prefix + value + " and again " + value
        assert redact_all(text) == "." * prefix + f"{REDACTED} and again {REDACTED}"


def test_url_userinfo_query_values_and_fragment_are_not_shown() -> None:
    url = "https://user:pass@hooks.example.com/stripe?token=abc123secret&tenant=a#sig=xyz"
    assert redact_url(url) == (
        f"https://{REDACTED}@hooks.example.com/stripe?token={REDACTED}&tenant={REDACTED}#{REDACTED}"
    )
    message = f"webhook we_1 at {url} is not owned by this connection"
    out = redact(message)
    for secret in ("user:pass", "abc123secret", "sig=xyz"):
        assert secret not in out
    assert "hooks.example.com/stripe?token=" in out


def test_a_bare_query_value_is_not_shown() -> None:
    assert redact_url("https://hooks.example.com/x?abc123secret") == f"https://hooks.example.com/x?{REDACTED}"


def test_a_url_without_credentials_is_unchanged() -> None:
    for url in (
        "https://hooks.example.com/stripe",
        "https://hooks.example.com/a/b?",
        "https://h.example.com",
    ):
        assert redact(url) == url


def test_links_procon_builds_keep_their_query() -> None:
    link = "https://dashboard.stripe.com/apikeys/create?name=procon&permissions%5B%5D=rak_charge_read"
    assert redact(f"Grant them: {link}") == f"Grant them: {link}"


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


def test_a_log_record_about_one_connection_is_redacted_with_its_values_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    remember(connection_scope("tenant-b", "shop"), ["webhooks-example"])
    remember(connection_scope("tenant-a", "shop"), ["tenant-a-credential"])
    log = logging.getLogger("procon.test.redaction.scoped")
    caplog.handler.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="procon.test.redaction.scoped"):
            scoped = {redaction.SCOPE_ATTRIBUTE: connection_scope("tenant-a", "shop")}
            log.info("about a: %s %s", "https://webhooks-example.com", "tenant-a-credential", extra=scoped)
            log.info("about anyone: %s", "webhooks-example")
    finally:
        caplog.handler.removeFilter(caplog.handler.filters[-1])
    about_a, about_anyone = (r.getMessage() for r in caplog.records)
    assert about_a == f"about a: https://webhooks-example.com {REDACTED}"
    assert about_anyone == f"about anyone: {REDACTED}"


def test_the_secrets_of_a_url_are_caught_where_the_url_travels_encoded() -> None:
    """The Stripe SDK logs a create's form body at debug level: the webhook URL percent-encoded,
    out of reach of the URL pattern. Its query value, registered, is caught there too."""
    from urllib.parse import quote

    url = "https://u:pw-of-user-1@hooks.example.com/x?token=abc123%2Fsecret&short=ab#fragment-value"
    assert sorted(redaction.url_secrets(url)) == sorted(
        ["u", "pw-of-user-1", "abc123%2Fsecret", "abc123/secret", "ab", "fragment-value"]
    )
    remember("ns/shop", redaction.url_secrets(url), part="webhook-url")
    body = f"url={quote(url, safe='')}&enabled_events[0]=charge.succeeded"
    out = redact_all(body)
    for secret in ("abc123", "pw-of-user-1", "fragment-value"):
        assert secret not in out

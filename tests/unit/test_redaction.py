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


def test_http_credentials_are_caught_in_any_case() -> None:
    text = "Authorization: Bearer abcdefgh12345678; proxy said BASIC dXNlcjpwYXNzd29yZA=="
    assert redact(text) == f"Authorization: {REDACTED}; proxy said {REDACTED}"


def test_the_length_bounds_of_registered_values_are_inclusive(fresh_register: SecretRegister) -> None:
    """A connection's value of exactly MIN_VALUE_LENGTH (8) or MAX_VALUE_LENGTH characters is
    redacted, one character shorter or longer is not; a shared value needs SHARED_MIN_LENGTH (16)."""
    shortest, too_short = "k" * redaction.MIN_VALUE_LENGTH, "j" * (redaction.MIN_VALUE_LENGTH - 1)
    longest = "m" * redaction.MAX_VALUE_LENGTH
    remember("ns/shop", [shortest, too_short, longest])
    assert redact(f"{shortest} {too_short}", "ns/shop") == f"{REDACTED} {too_short}"
    assert redact(f"a {longest} b", "ns/shop") == f"a {REDACTED} b"
    assert redact_all(f"{shortest} {too_short}") == f"{REDACTED} {too_short}"

    shared, too_short_to_share = "s" * redaction.SHARED_MIN_LENGTH, "t" * (redaction.SHARED_MIN_LENGTH - 1)
    remember("token:a", [shared, too_short_to_share], shared=True)
    assert redact(f"{shared} {too_short_to_share}", "ns/other") == f"{REDACTED} {too_short_to_share}"


def test_the_longest_match_wins_and_every_later_one_is_still_redacted() -> None:
    """Overlapping values (one a prefix of another, or a key shape inside a registered value) leave
    no tail in the clear, and a merge does not stop the values after it from being redacted."""
    remember("ns/shop", ["prefix-secret", "prefix-secret-with-a-longer-tail", "later-value-0000"])
    text = "a prefix-secret-with-a-longer-tail b prefix-secret c later-value-0000 d"
    expected = f"a {REDACTED} b {REDACTED} c {REDACTED} d"
    assert redact(text, "ns/shop") == expected
    assert redact_all(text) == expected
    remember("ns/shop", ["token=sk_test_51Hx0000000000000000000000000000-and-more"], part="other")
    assert (
        redact("x token=sk_test_51Hx0000000000000000000000000000-and-more y", "ns/shop") == f"x {REDACTED} y"
    )


def test_adjacent_values_are_each_replaced() -> None:
    remember("ns/shop", ["first-value", "second-value"])
    assert redact("(first-valuesecond-value)", "ns/shop") == f"({REDACTED}{REDACTED})"


def test_every_occurrence_of_a_connections_values_is_found() -> None:
    """Scoped redaction searches each value itself: at the start, in the middle, overlapping itself."""
    value = "credential-0123456789"
    remember("ns/shop", [value, "xxxxxxxx"])
    text = f"{value} then {value} and {value}"
    assert redact(text, "ns/shop") == f"{REDACTED} then {REDACTED} and {REDACTED}"
    assert redact("xxxxxxxxx.", "ns/shop") == f"{REDACTED}."
    assert redact_all("xxxxxxxxx.") == f"{REDACTED}."


def test_values_of_the_minimum_length_are_found_at_the_end_of_a_text_whatever_its_alignment() -> None:
    value = "kv" * (redaction.MIN_VALUE_LENGTH // 2)
    remember("ns/shop", [value])
    for prefix in range(9):
        assert redact_all("." * prefix + value) == "." * prefix + REDACTED


def test_values_that_share_their_first_characters_are_all_found() -> None:
    """The index keeps several values under one 4-character gram; dropping one keeps the others."""
    values = {"ns/a": "shared-prefix-one-1", "ns/b": "shared-prefix-two-2", "ns/c": "shared-prefix-three3"}
    for scope, value in values.items():
        remember(scope, [value])
    for value in values.values():
        assert redact_all(f"<{value}>") == f"<{REDACTED}>"
    forget("ns/a")
    assert redact_all("shared-prefix-one-1") == "shared-prefix-one-1"
    for value in ("shared-prefix-two-2", "shared-prefix-three3"):
        assert redact_all(f"<{value}>") == f"<{REDACTED}>"


def test_a_value_two_connections_hold_stays_redacted_while_one_of_them_does() -> None:
    remember("ns/a", ["the-same-credential"])
    remember("ns/b", ["the-same-credential"])
    forget("ns/a")
    assert redact_all("the-same-credential") == REDACTED
    assert redact("the-same-credential", "ns/b") == REDACTED
    forget("ns/b")
    assert redact_all("the-same-credential") == "the-same-credential"


def test_a_replaced_part_is_no_longer_redacted_anywhere(fresh_register: SecretRegister) -> None:
    remember("ns/shop", ["old-credential-value-1"], part="credentials")
    remember("ns/shop", ["new-credential-value-2"], part="credentials")
    assert redact_all("old-credential-value-1") == "old-credential-value-1"
    assert fresh_register.count() == 2  # the new value and its base64 form


def test_the_default_part_is_the_empty_one() -> None:
    register = SecretRegister()
    register.remember("ns/shop", ["first-credential"])
    register.remember("ns/shop", ["second-credential"], part="")
    assert not register.spans("first-credential", "ns/shop", everything=False)
    remember("ns/shop", ["first-credential"])
    remember("ns/shop", ["second-credential"], part="")
    assert redact("first-credential", "ns/shop") == "first-credential"


def test_values_are_a_connections_own_unless_registered_as_shared() -> None:
    register = SecretRegister()
    register.remember("ns/a", ["eight-ch"])
    assert register.spans("eight-ch", "ns/a", everything=False) == [(0, 8)]
    assert register.spans("eight-ch", "ns/b", everything=False) == []


def test_a_forgotten_shared_value_is_no_longer_redacted_in_other_scopes() -> None:
    remember("token:a", ["an-oauth-token-procon-obtained-0123"], shared=True)
    forget("token:a")
    assert redact("an-oauth-token-procon-obtained-0123", "ns/any") == "an-oauth-token-procon-obtained-0123"
    assert redact_all("an-oauth-token-procon-obtained-0123") == "an-oauth-token-procon-obtained-0123"


def test_changing_whether_a_scope_is_shared_starts_it_afresh() -> None:
    remember("ns/shop", ["a-connection-credential"], part="credentials")
    remember("ns/shop", ["a-token-procon-obtained-0123"], part="token", shared=True)
    assert redact("a-connection-credential", "ns/shop") == "a-connection-credential"
    assert redact("a-token-procon-obtained-0123", "ns/other") == REDACTED


def test_a_scopes_sharing_is_forgotten_with_it() -> None:
    """A scope once shared, forgotten, then registered as not shared: forgetting it again must not
    touch the shared index, where another scope's value with the same first characters lives."""
    remember("token:a", ["shared-token-of-a-0123"], shared=True)
    forget("token:a")
    remember("token:a", ["shared-credential"])
    remember("token:b", ["shared-token-of-b-4567"], shared=True)
    forget("token:a")
    assert redact("<shared-token-of-b-4567>", "ns/any") == f"<{REDACTED}>"


def test_forgetting_an_unknown_scope_does_nothing(fresh_register: SecretRegister) -> None:
    forget("ns/never-registered")
    assert fresh_register.count() == 0


def test_the_most_recent_scope_is_kept_even_past_the_bound() -> None:
    register = SecretRegister(max_values=1)
    register.remember("ns/a", ["value-of-connection-a"])  # two values with its base64 form
    assert register.spans("value-of-connection-a", None, everything=True) == [(0, 21)]


def test_the_encoded_forms_of_a_value_are_redacted() -> None:
    """Percent-encoded with nothing kept safe (a slash too, as in a form body) and base64 with or
    without padding."""
    remember("ns/shop", ["pass word/0123", "secret-value-1", "credential-000W"])
    assert redact("password=pass%20word%2F0123&x=1", "ns/shop") == f"password={REDACTED}&x=1"
    assert redact("password=pass+word%2F0123&x=1", "ns/shop") == f"password={REDACTED}&x=1"
    assert redact('{"k":"c2VjcmV0LXZhbHVlLTE"}', "ns/shop") == f'{{"k":"{REDACTED}"}}'
    assert "c2VjcmV0LXZhbHVlLTE" not in redact('{"k":"c2VjcmV0LXZhbHVlLTE="}', "ns/shop")
    assert redact('{"k":"Y3JlZGVudGlhbC0wMDBX"}', "ns/shop") == f'{{"k":"{REDACTED}"}}'


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A password holding an unencoded '@': the userinfo ends at the last one.
        ("https://user:p@ss@hooks.example.com/x", f"https://{REDACTED}@hooks.example.com/x"),
        # An '@' after the authority is not userinfo.
        ("https://hooks.example.com/to/a@b/c", "https://hooks.example.com/to/a@b/c"),
        ("https://hooks.example.com?email=a@b.example", f"https://hooks.example.com?email={REDACTED}"),
        ("https://hooks.example.com?next=a@b?c", f"https://hooks.example.com?next={REDACTED}"),
        ("https://hooks.example.com#a@b#c", f"https://hooks.example.com#{REDACTED}"),
        ("https:///a@b/c", "https:///a@b/c"),
        # Empty parameters stay empty; an empty value has nothing to hide.
        ("https://h.example.com/x?a=1&&b=&c", f"https://h.example.com/x?a={REDACTED}&&b=&{REDACTED}"),
        # A URL in the query: its own scheme does not end the outer one's.
        (
            "https://u:p@h.example.com/x?next=https://y.example/z",
            f"https://{REDACTED}@h.example.com/x?next={REDACTED}",
        ),
    ],
)
def test_url_edge_cases(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_secrets_are_exactly_what_redact_url_hides() -> None:
    assert redaction.url_secrets("https://hooks.example.com/x?sig=dG9rZW4=&bare") == ["dG9rZW4=", "bare"]
    assert redaction.url_secrets("https://hooks.example.com/x") == []


def test_a_record_whose_arguments_do_not_format_is_passed_through() -> None:
    record = logging.LogRecord("procon", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("%d items", ("many",))


def test_an_exception_logged_without_a_traceback_is_redacted() -> None:
    """``log.error(..., exc_info=err)`` with an exception that was never raised has no traceback."""
    err = RuntimeError(f"Invalid API Key provided: {FAKE_LIVE_KEY}")
    record = logging.LogRecord(
        "procon", logging.ERROR, __file__, 1, "failed", None, (RuntimeError, err, None)
    )
    assert RedactingFilter().filter(record) is True
    rendered = logging.Formatter().format(record)
    assert "Invalid API Key provided" in rendered
    assert FAKE_LIVE_KEY not in rendered


def test_log_redaction_is_installed_once_on_every_root_handler() -> None:
    handlers = [logging.StreamHandler(), logging.StreamHandler()]
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    try:
        redaction.install_log_redaction()
        redaction.install_log_redaction()
        for handler in handlers:
            assert [type(f) for f in handler.filters] == [RedactingFilter]
    finally:
        for handler in handlers:
            root.removeHandler(handler)


def test_values_of_every_length_are_found_at_every_alignment() -> None:
    """The index reads the text 4 characters at a time and keeps each value under grams of its
    tail: whatever its length and position, every occurrence is found."""
    alphabet = string.ascii_letters + string.digits
    for length in range(redaction.MIN_VALUE_LENGTH, 24):
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        register = SecretRegister()
        register.remember("ns/shop", [value])
        for prefix in range(9):
            text = "." * prefix + value + "~" + value
            spans = register.spans(text, None, everything=True)
            assert (prefix, prefix + length) in spans, (length, prefix)
            assert (prefix + length + 1, prefix + 2 * length + 1) in spans, (length, prefix)


def test_ten_thousand_values_with_one_head_do_not_share_grams() -> None:
    """Signing secrets all begin ``whsec_`` and keys ``rk_test_``: indexed by their heads, each of
    those grams would name every value, and adding or dropping one cost time in proportion to
    their number (a fleet of 10,000 connections spent a seventh of the operator's time there)."""
    register = SecretRegister(max_values=200_000)
    values = [f"whsec_{secrets.token_urlsafe(24)}" for _ in range(10_000)]
    for number, value in enumerate(values):
        register.remember(f"ns/c{number}", [value], part="signing")
    held = register._all._grams.values()  # the index's shape is what is tested
    assert max(1 if isinstance(names, str) else len(names) for names in held) <= 8
    for number in (0, 4_999, 9_999):
        assert register.spans(f"<{values[number]}>", None, everything=True) == [(1, 1 + len(values[number]))]

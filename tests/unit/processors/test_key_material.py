"""Key material from a Secret: surrounding whitespace removed and reported, anything else refused by name."""

from __future__ import annotations

import pytest

from procon.processors.base import CredentialsRejected
from procon.processors.checkout.driver import CheckoutDriver
from procon.processors.key_material import check
from procon.processors.stripe.driver import StripeDriver

KEY = "rk_test_51" + "Abc" * 14


@pytest.mark.parametrize(
    ("raw", "what", "position"),
    [
        (KEY[:12] + "\n" + KEY[12:], "a line break", 13),
        (KEY[:5] + "\r" + KEY[5:], "a line break", 6),
        (KEY[:20] + " " + KEY[20:], "whitespace", 21),
        (KEY[:8] + "\t" + KEY[8:], "whitespace", 9),
        (KEY[:30] + "é" + KEY[30:], "a character outside printable ASCII", 31),
        (KEY[:3] + "\x00" + KEY[3:], "a control character", 4),
        (KEY[:7] + "\ufffd" + KEY[7:], "bytes that are not UTF-8", 8),
        ("  " + KEY[:10] + "\r\n" + KEY[10:] + "\n", "a line break", 11),
    ],
)
def test_anything_but_printable_ascii_inside_is_refused_by_name_and_position(
    raw: str, what: str, position: int
) -> None:
    with pytest.raises(CredentialsRejected) as caught:
        check("apiKey", raw)
    message = str(caught.value)
    assert caught.value.reason == "InvalidCredentials"
    assert f"the value of apiKey contains {what} at position {position}" in message
    assert KEY[:8] not in message
    assert KEY[-8:] not in message


@pytest.mark.parametrize("raw", [KEY + "\n", "\t " + KEY, KEY + "\r\n", " " + KEY + " "])
def test_surrounding_whitespace_is_removed_and_reported(raw: str) -> None:
    checked = check("apiKey", raw)
    assert (checked.value, checked.stripped) == (KEY, True)
    assert check("apiKey", KEY).stripped is False


def test_both_drivers_check_every_field_before_any_call() -> None:
    stripe = StripeDriver("http://127.0.0.1:9").credentials_from({"apiKey": KEY + "\n"}, None)
    assert (stripe["apiKey"], stripe.stripped) == (KEY, ("apiKey",))
    with pytest.raises(CredentialsRejected, match="apiKey contains a line break at position 3"):
        StripeDriver("http://127.0.0.1:9").credentials_from({"apiKey": "rk\n_test"}, None)
    checkout = CheckoutDriver()
    pair = checkout.credentials_from({"accessKeyId": "ack_x\n", "accessKeySecret": "s3cret"}, None)
    assert pair.stripped == ("accessKeyId",)
    with pytest.raises(CredentialsRejected, match="accessKeySecret contains whitespace at position 4"):
        checkout.credentials_from({"accessKeyId": "ack_x", "accessKeySecret": "s3c ret"}, None)
    with pytest.raises(CredentialsRejected, match="mykey contains a line break at position 4"):
        checkout.credentials_from({"mykey": "sk_\r\nInjected: header"}, "mykey")

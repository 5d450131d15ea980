"""API key shapes: what a key's prefix says about it, and how Stripe masks keys in messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_SHAPE = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$")
_PREFIX = re.compile(r"^([a-z]+_(?:test_|live_)?)")


class KeyKind(StrEnum):
    SECRET = "secret"
    RESTRICTED = "restricted"  # the permissions it was granted


@dataclass(frozen=True)
class KeyShape:
    kind: KeyKind
    livemode: bool


def key_shape(key: str) -> KeyShape | None:
    """Kind and mode of a secret (``sk_``) or restricted (``rk_``) key; None for anything else.

    Mode comes from the ``_test_``/``_live_`` infix, as at Stripe.
    """
    match = _SHAPE.match(key)
    if match is None:
        return None
    kind = KeyKind.SECRET if match.group(1) == "sk" else KeyKind.RESTRICTED
    return KeyShape(kind=kind, livemode=match.group(2) == "live")


def mask_key(key: str) -> str:
    """The key as Stripe shows it in error messages: prefix, asterisks, last characters.

    Observed samples: ``sk_test_************S8wL`` (secret keys: last 4) and
    ``rk_live_********…****gbeftZ`` / ``rk_live_***j4va7j`` (restricted keys: last 6).
    """
    # ASSUMPTION: one asterisk per hidden character; the samples were shortened by the people quoting them.
    prefix_match = _PREFIX.match(key)
    prefix = prefix_match.group(1) if prefix_match else ""
    body = key[len(prefix) :]
    shown = 6 if prefix.startswith("rk_") else 4
    # ASSUMPTION: a body too short to hide anything is masked entirely.
    if len(body) <= shown:
        return prefix + "*" * len(body)
    return prefix + "*" * (len(body) - shown) + body[-shown:]

"""Checkout.com-shaped identifiers: a prefix and 26 lower-case base32 characters."""

from __future__ import annotations

import secrets

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
ID_LENGTH = 26  # wf_, wfc_, wfa_, evt_, pay_ ... + 26 base32 characters, as in every documented example


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(BASE32) for _ in range(ID_LENGTH))

"""The shapes of Checkout.com's secrets, for :mod:`procon.redaction`."""

from __future__ import annotations

import re

from procon.processors.plugin import Redaction
from procon.redaction import KEYISH

REDACTION = Redaction(
    credentials=(
        # Secret and public keys: sk_/pk_, sandbox or not, base32 or UUID-shaped.
        ("k_", re.compile(rf"(?<![A-Za-z0-9])[sp]k_{KEYISH}{{20,}}")),
        # OAuth access key ids.
        ("ack_", re.compile(r"(?<![A-Za-z0-9])ack_[A-Za-z0-9]{8,}")),
    ),
)

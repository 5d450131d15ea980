"""Shapes of Adyen key material, to mask wherever they show up in text people read.

Two secrets pass through procon (docs/processors/adyen.md, "Key shapes"):

- API keys: ``AQE`` and base64 characters, then ``-`` and a base64 block,
  then ``-`` and a short run of printable characters (punctuation included);
- webhook HMAC keys: 64 hexadecimal digits, upper case as Adyen generates them.

Each pattern takes as much as can belong to the key, so no tail is left in the
clear. :mod:`procon.redaction` applies them to every text (the registry hands them
over); the exact values a connection uses are also registered per connection, which
catches any shape these miss.
"""

from __future__ import annotations

import re

from procon.processors.plugin import Redaction

# ASSUMPTION: every Adyen API key starts with "AQE" (docs/processors/adyen.md, "Key shapes": the
# shape is what published keys show, not a documented format). The last block may hold any
# printable character but whitespace; it is at most 16 long in every key seen, so the pattern
# stops there rather than swallowing the rest of a line.
API_KEY = re.compile(r"(?<![A-Za-z0-9+/])AQE[A-Za-z0-9+/=]{16,}(?:-[A-Za-z0-9+/=]{8,})*(?:-[!-~]{1,16})?")
# 32 bytes in upper-case hex, as generateHmac returns them (docs/processors/adyen.md, "HMAC keys");
# whole tokens only, so a longer hex run is left alone, and lower-case digests (image digests,
# checksums in logs) are not mistaken for keys. A key typed in lower case in the Customer Area is
# still caught as the connection's registered value.
HMAC_KEY = re.compile(r"(?<![0-9A-Za-z])[0-9A-F]{64}(?![0-9A-Za-z])")

PATTERNS: tuple[re.Pattern[str], ...] = (API_KEY, HMAC_KEY)

REDACTION = Redaction(
    credentials=(
        ("AQE", API_KEY),
        # No literal all hex keys hold: "" is in every text, so it always runs (a short scan).
        ("", HMAC_KEY),
    ),
)

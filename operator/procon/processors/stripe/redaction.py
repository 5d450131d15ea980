"""The shapes of Stripe's secrets and account ids, for :mod:`procon.redaction`."""

from __future__ import annotations

import re

from procon.processors.plugin import Redaction
from procon.redaction import KEYISH

REDACTION = Redaction(
    credentials=(
        # Secret, restricted and publishable keys, masked or not, any shape after the prefix.
        ("k_", re.compile(rf"(?<![A-Za-z0-9])[spr]k_(?:test|live|org)_{KEYISH}+")),
        # Webhook signing secrets.
        ("whsec_", re.compile(r"(?<![A-Za-z0-9])whsec_[A-Za-z0-9*+/=._-]+")),
    ),
    account_ids=(("acct_", re.compile(r"\bacct_([A-Za-z0-9]+)")),),
    # The restricted-key form procon links to (procon.processors.stripe.permissions.dashboard_link).
    own_links=("https://dashboard.stripe.com/",),
)

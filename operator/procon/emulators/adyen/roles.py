"""Role names as ``GET /me`` shows them, and which roles each operation accepts.

Adyen spells one role several ways: the spec's operation descriptions write
``Management API—Webhooks read and write``, while credentials carry
``Management API - Webhooks read and write`` (and a few em-dash or
differently capitalised forms). The emulator answers with whatever spelling the
fixture gives a credential, so a client's normalisation gets tested, and checks
permissions on the normalised name (docs/processors/adyen.md, "Role names and
their spellings").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The /me spellings (hyphen with spaces), as captured credentials show them.
WEBHOOKS_READ = "Management API - Webhooks read"
WEBHOOKS_READ_WRITE = "Management API - Webhooks read and write"
ACCOUNTS_READ = "Management API - Accounts read"
ACCOUNTS_READ_WRITE = "Management API - Accounts read and write"
API_CREDENTIALS_READ_WRITE = "Management API - API credentials read and write"
# Spellings that differ from the common one, as seen on real credentials.
PAYMENT_METHODS_READ = "Management API — Payment methods read"
PAYOUT_SETTINGS_READ = "Management API - Payout Account Settings Read"

# An em dash, an en dash or a hyphen, with the spaces around it.
_DASH = re.compile("\\s*[\u2014\u2013-]\\s*")
_SPACE = re.compile(r"\s+")
MANAGEMENT_PREFIX = "management api - "


def normalise(role: str) -> str:
    """One spelling per role: dashes as `` - ``, whitespace collapsed, case folded, "accounts"."""
    text = _SPACE.sub(" ", _DASH.sub(" - ", role.strip())).casefold()
    # The spec's "Account read" is the credentials' "Accounts read".
    return text.replace(" - account read", " - accounts read")


def is_management(role: str) -> bool:
    return normalise(role).startswith(MANAGEMENT_PREFIX)


def _either(read: str, read_write: str) -> frozenset[str]:
    return frozenset({normalise(read), normalise(read_write)})


# The roles that let an operation through (any one of each set): reads accept "read" or "read and write".
WEBHOOK_READERS = _either(WEBHOOKS_READ, WEBHOOKS_READ_WRITE)
WEBHOOK_WRITERS = frozenset({normalise(WEBHOOKS_READ_WRITE)})
ACCOUNT_READERS = _either(ACCOUNTS_READ, ACCOUNTS_READ_WRITE)


def holds_any(roles: Iterable[str], accepted: frozenset[str]) -> bool:
    return any(normalise(role) in accepted for role in roles)


def has_management_role(roles: Iterable[str]) -> bool:
    """``GET /me`` can be made "with any of the Management API roles"."""
    return any(is_management(role) for role in roles)

"""Adyen API-credential roles: which procon knows, how names are compared, what procon needs.

Adyen spells one role several ways: the API reference writes
``Management API—Webhooks read``, ``GET /me`` answers ``Management API -
Webhooks read``, one role comes with an em dash between spaces, others in
another capitalisation, "Account read" beside "Accounts read"
(docs/processors/adyen.md, "Role names and their spellings"). So names are compared by a key that
ignores case, spacing and punctuation altogether: every one of those
spellings, and a lower-case slug such as
``management-api-webhooks-read-and-write`` (the shape a Kubernetes list of
permission names takes), has the same key.

A role "X read and write" also grants "X read": every read operation accepts
either (same section).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WEBHOOKS_READ = "Management API - Webhooks read"
WEBHOOKS_READ_WRITE = "Management API - Webhooks read and write"

# The roles procon knows by name, in the spelling GET /me uses where one is documented
# (docs/processors/adyen.md, "Role names and their spellings"). Anything else a connection
# requires is reported as unknown, unless the key holds a role of that name: Adyen has more roles
# than procon lists.
KNOWN_ROLES: tuple[str, ...] = (
    "Management API - Account read",
    "Management API - Accounts read",
    "Management API - Accounts read and write",
    "Management API - API credentials read and write",
    "Management API - Android files read",
    "Management API - Android files read and write",
    "Management API - Assign Terminal",
    "Management API - Payment methods read",
    "Management API - Payment methods read and write",
    "Management API - Payout Account Settings Read",
    "Management API - Payout Account Settings Read And Write",
    "Management API - SplitConfiguration read and write",
    "Management API - Stores read",
    "Management API - Stores read and write",
    "Management API - Terminal actions read",
    "Management API - Terminal actions read and write",
    "Management API - Terminal ordering read",
    "Management API - Terminal ordering read and write",
    "Management API - Terminal settings Advanced read and write",
    "Management API - Terminal settings read",
    "Management API - Terminal settings read and write",
    "Management API - Users read and write",
    WEBHOOKS_READ,
    WEBHOOKS_READ_WRITE,
    "API PCI Payments role",
    "Checkout encrypted cardholder data",
    "Checkout webservice role",
    "Data Protection API",
    "Manage LegalEntities via API",
    "Merchant PAL Webservice role",
    "Merchant Recurring role",
    "Merchant Report Download role",
    "Merchant Rss feed role",
    "Merchant admin",
    "Merchant standard role",
    "Trigger webhook notifications",
)

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_READ_WRITE = "readandwrite"


def role_key(name: str) -> str:
    """The comparison key of a role name: case, spacing, dashes of any kind and punctuation removed.

    "Account read" and "Accounts read" (the spec's and the credentials' spellings of one role) get
    one key.
    """
    key = _NOT_ALNUM.sub("", name.casefold())
    return key.replace("managementapiaccountread", "managementapiaccountsread")


_DISPLAY = {role_key(name): name for name in KNOWN_ROLES}


def display_name(name: str) -> str:
    """The name as a person finds it in the Customer Area: procon's spelling if it knows the role."""
    return _DISPLAY.get(role_key(name), name)


def grants(held: str, wanted: str) -> bool:
    """Whether holding role ``held`` satisfies ``wanted`` (both any spelling)."""
    held_key, wanted_key = role_key(held), role_key(wanted)
    if held_key == wanted_key:
        return True
    # "X read and write" grants "X read".
    return held_key.endswith(_READ_WRITE) and held_key[: -len("andwrite")] == wanted_key


@dataclass(frozen=True)
class RoleCheck:
    """Required roles sorted into held, missing (display names) and unknown (as the spec wrote them)."""

    granted: tuple[str, ...]
    missing: tuple[str, ...]
    unknown: tuple[str, ...]


def check(held: Iterable[str], required: Sequence[str], *, needed: Sequence[str] = ()) -> RoleCheck:
    """Sort ``required`` (the spec's names) and ``needed`` (what procon itself needs) against ``held``.

    A required name that the key holds is granted even if procon does not know it; one it does
    not hold is missing when procon knows it, unknown otherwise (a typo, another processor's
    vocabulary: no grant can help).
    """
    held_roles = list(held)
    granted: list[str] = []
    missing: list[str] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for name in [*needed, *required]:
        key = role_key(name)
        if key in seen:
            continue
        seen.add(key)
        if any(grants(h, name) for h in held_roles):
            granted.append(display_name(name))
        elif key in _DISPLAY:
            missing.append(display_name(name))
        else:
            unknown.append(name)
    return RoleCheck(tuple(granted), tuple(missing), tuple(unknown))

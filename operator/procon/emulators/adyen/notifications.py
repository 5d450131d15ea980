"""Standard notifications: their body and their HMAC signature.

Adyen signs each ``NotificationRequestItem`` of a standard webhook: eight of
its values joined by ``:`` (no escaping, a missing value empty), HMAC-SHA256
keyed with the hex-decoded HMAC key, base64-encoded, in
``additionalData.hmacSignature`` (docs/processors/adyen.md, "Verifying a
notification's signature"). The emulator signs what it sends with the
webhook's current key, so a receiver's verification can be tested end to end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TIMEOUT_SECONDS = 10.0  # a receiver must answer within 10 seconds
SIGNED_FIELDS = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "amount.value",
    "amount.currency",
    "eventCode",
    "success",
)
_PSP_ALPHABET = string.ascii_uppercase + string.digits


def _value(item: Mapping[str, Any], path: str) -> str:
    current: Any = item
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    return "" if current is None else str(current)


def signing_string(item: Mapping[str, Any]) -> str:
    return ":".join(_value(item, name) for name in SIGNED_FIELDS)


def signature(item: Mapping[str, Any], hmac_key: str) -> str:
    digest = hmac.new(bytes.fromhex(hmac_key), signing_string(item).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_item(merchant: str, event_code: str, custom: Mapping[str, Any] | None) -> dict[str, Any]:
    """One test notification item (``success``, like ``live``, is a string)."""
    # ASSUMPTION: Adyen sends four test notifications per event code (success and failure, EUR and GBP);
    # the emulator sends one, a success in EUR.
    source = dict(custom or {})
    amount = source.get("amount") if isinstance(source.get("amount"), Mapping) else None
    return {
        "amount": dict(amount) if amount else {"currency": "EUR", "value": 1000},
        "eventCode": str(source.get("eventCode", event_code)),
        "eventDate": str(source.get("eventDate", datetime.now(UTC).isoformat(timespec="seconds"))),
        "merchantAccountCode": merchant,
        "merchantReference": str(source.get("merchantReference", "testMerchantRef1")),
        "paymentMethod": str(source.get("paymentMethod", "visa")),
        "pspReference": "".join(secrets.choice(_PSP_ALPHABET) for _ in range(16)),
        "reason": str(source.get("reason", "")),
        "success": "true" if source.get("success", True) in (True, "true") else "false",
        "additionalData": {},
    }


def notification_body(item: dict[str, Any], live: bool, hmac_key: str | None) -> str:
    """The JSON body Adyen posts: ``{"live": "false", "notificationItems": [...]}``, signed when keyed."""
    if hmac_key is not None:
        item["additionalData"]["hmacSignature"] = signature(item, hmac_key)
    return json.dumps(
        {"live": "true" if live else "false", "notificationItems": [{"NotificationRequestItem": item}]}
    )

"""Access tokens: JWT-shaped strings (``header.payload.signature``, base64url without padding).

The token format is documented as a JWT; its claims are not (docs/processors/checkout.md,
"Access keys and tokens"),
so the claims here are an assumption and clients must treat the token as opaque.
The signature is random bytes: nothing outside the emulator can verify it.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable
from typing import Any


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_access_token(
    *, issuer: str, access_key_id: str, client_id: str, scopes: Iterable[str], issued_at: int, lifetime: int
) -> str:
    # ASSUMPTION: RS256 header and these claim names (standard JWT ones plus the scopes and the account);
    # the real claims are undocumented.
    header = {"alg": "RS256", "kid": secrets.token_hex(16).upper(), "typ": "at+jwt"}
    payload: dict[str, Any] = {
        "iss": issuer,
        "nbf": issued_at,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "aud": "gateway",
        "client_id": access_key_id,
        "cko_client_id": client_id,
        "jti": secrets.token_hex(16).upper(),
        "scope": sorted(scopes),
    }

    def encode(value: dict[str, Any]) -> str:
        return _segment(json.dumps(value, separators=(",", ":")).encode())

    return f"{encode(header)}.{encode(payload)}.{_segment(secrets.token_bytes(256))}"


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a token made here (for tests); ValueError if it is not JWT-shaped."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated segments")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(padded))
    if not isinstance(claims, dict):
        raise ValueError("the JWT payload is not an object")
    return claims

"""Checkout.com's error answers: one exception carrying status and body, a constructor per case.

Three body shapes (docs/processors/checkout.md, "Error answers"):

- none at all: 401s by default (the official Node SDK's tests mock a bare 401),
  404s, 5xx and 429s, for which the spec documents no body;
- ``{"request_id", "error_type", "error_codes": [...]}``: 422 validation errors
  (``ValidationError.yaml``), and 401/403 when the fixture asks for JSON;
- ``{"error": "<code>"}``: the token endpoint's RFC 6749 errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REQUEST_INVALID = "request_invalid"
REQUEST_MALFORMED = "request_malformed"
# ASSUMPTION: the error_type of JSON 401 and 403 bodies; both values appear among the official Node SDK's
# test fixtures, but no source ties them to these statuses.
AUTHENTICATION_ERROR = "authentication_error"
ACTION_NOT_ALLOWED = "action_not_allowed"
# Reports and financial actions document their own type for failed validation.
INVALID_REQUEST = "invalid_request"


class CheckoutError(Exception):
    """An error answer: status, body (built once the request id is known) and extra headers."""

    def __init__(
        self,
        status: int,
        *,
        error_type: str | None = None,
        error_codes: Iterable[str] | None = None,
        oauth_error: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {oauth_error or error_type or ''}".strip())
        self.status = status
        self.error_type = error_type
        self.error_codes = list(dict.fromkeys(error_codes)) if error_codes is not None else None
        self.oauth_error = oauth_error
        self.headers: dict[str, str] = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any] | None:
        """The JSON body, or None for an answer without one."""
        if self.oauth_error is not None:
            return {"error": self.oauth_error}
        if self.error_type is None:
            return None
        body: dict[str, Any] = {"request_id": request_id, "error_type": self.error_type}
        if self.error_codes is not None:
            body["error_codes"] = list(self.error_codes)
        return body


def unauthorized(json_body: bool) -> CheckoutError:
    """401 for a missing, unknown, expired or revoked credential, or one used on another account's host."""
    return CheckoutError(401, error_type=AUTHENTICATION_ERROR if json_body else None)


def missing_scope(status: int, json_body: bool) -> CheckoutError:
    """401 or 403 (a fixture setting: which is unconfirmed) for a credential without a scope."""
    error_type = (AUTHENTICATION_ERROR if status == 401 else ACTION_NOT_ALLOWED) if json_body else None
    return CheckoutError(status, error_type=error_type)


def not_found() -> CheckoutError:
    # ASSUMPTION: 404s carry no body; the spec documents only the status ("Workflow not found").
    return CheckoutError(404)


def method_not_allowed() -> CheckoutError:
    # ASSUMPTION: a known path with another method is a bodiless 405, as ASP.NET routing answers.
    return CheckoutError(405)


def validation(codes: Iterable[str], *, error_type: str = REQUEST_INVALID) -> CheckoutError:
    return CheckoutError(422, error_type=error_type, error_codes=codes)


def malformed_body() -> CheckoutError:
    # ASSUMPTION: a body that is not a JSON object is a 422 of type request_malformed (the spec's Error
    # schema names that type; it documents 422 as the only client error of these operations).
    return CheckoutError(422, error_type=REQUEST_MALFORMED)


def oauth(code: str, status: int = 400) -> CheckoutError:
    """A token endpoint error; ``code`` is one of RFC 6749's (the spec's enum)."""
    return CheckoutError(status, oauth_error=code)


def invalid_client(status: int) -> CheckoutError:
    """Bad client credentials at the token endpoint: ``{"error": "invalid_client"}``.

    The spec documents it as a 400; ``status`` is the fixture's ``invalid_client_status``.
    """
    # ASSUMPTION (unconfirmed): 400 by default, as the spec says; RFC 6749 allows a 401 for it
    # (docs/processors/checkout.md, "Access keys and tokens"), so 401 is a setting.
    return oauth("invalid_client", status)


def unknown_account_host() -> CheckoutError:
    """406 with no JSON body: what the token host answers for a prefix no account has (SDK tests)."""
    # ASSUMPTION: no body at all; all that is known is that the body was not JSON.
    return CheckoutError(406)


def server_error() -> CheckoutError:
    # ASSUMPTION: 500s carry no body (the spec: "Internal Error", no schema).
    return CheckoutError(500)


def rate_limited(retry_after: int | None) -> CheckoutError:
    # ASSUMPTION: 429s carry no body; Retry-After only when the fixture asks (unconfirmed, one
    # third-party page claims it: docs/processors/checkout.md, "Error answers").
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return CheckoutError(429, headers=headers)

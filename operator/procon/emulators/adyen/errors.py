"""Adyen's error answers: one exception carrying status and body, a constructor per case.

Every Management API error is a JSON object in the RFC 7807 style with
``type``, ``title``, ``status``, ``detail`` and ``errorCode`` (all five
required), plus ``requestId`` and, for validation errors, ``invalidFields``
(docs/processors/adyen.md, "Errors"). The cases and their codes:

- 401 ``00_401``: no key, an unknown key, a key of the other environment;
- 403 ``00_403``: a role missing, or a merchant-level key on a company path;
- 422 ``30_112``: an unknown webhook (or account) id: Adyen's "not found" is a 422;
- 404 ``00_404``: a path that does not exist;
- 422 validation errors with ``invalidFields``; 400 for a body that is not JSON;
- 500 ``00_500``: a server error, or "too many requests".
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ERRORS_BASE = "https://docs.adyen.com/errors"
UNAUTHORIZED = "00_401"
FORBIDDEN = "00_403"
NOT_FOUND = "00_404"
ENTITY_NOT_FOUND = "30_112"
INTERNAL = "00_500"
# ASSUMPTION: Adyen's codes for invalid webhook fields (a bad URL, a port, HTTP in live, a bad page
# size) were never seen (docs/processors/adyen.md, "Errors"); the emulator uses one code of its own
# for them, in Adyen's NN_NNN shape, and clients must not depend on it.
VALIDATION = "00_422"
# ASSUMPTION: likewise for a body that is not JSON at all (a 400, as the docs say).
MALFORMED = "00_400"

_REQUEST_ID_ALPHABET = string.ascii_uppercase + string.digits
REQUEST_ID_LENGTH = 16  # Management API samples: 16 upper-case letters and digits, e.g. KQZ5LXK2VMPRMC82


def new_request_id() -> str:
    return "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(REQUEST_ID_LENGTH))


@dataclass(frozen=True)
class InvalidField:
    """One entry of ``invalidFields``: which field, the value sent (as text), and why."""

    name: str
    value: str
    message: str

    def to_api(self, wrapped: bool) -> dict[str, Any]:
        flat = {"name": self.name, "value": self.value, "message": self.message}
        # A captured validation error wraps each entry as {"InvalidField": {...}} (the "Errors" section).
        return {"InvalidField": flat} if wrapped else flat


class AdyenError(Exception):
    """An error answer; the body is built once the request id is known."""

    def __init__(
        self,
        status: int,
        error_code: str,
        *,
        kind: str,
        title: str,
        detail: str,
        invalid_fields: Iterable[InvalidField] = (),
    ) -> None:
        super().__init__(f"{status} {error_code} {title}")
        self.status = status
        self.error_code = error_code
        self.kind = kind
        self.title = title
        self.detail = detail
        self.invalid_fields = tuple(invalid_fields)

    def body(self, request_id: str, *, wrap_invalid_fields: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"{ERRORS_BASE}/{self.kind}",
            "errorCode": self.error_code,
            "title": self.title,
            "detail": self.detail,
            "status": self.status,
            "requestId": request_id,
        }
        if self.invalid_fields:
            body["invalidFields"] = [f.to_api(wrap_invalid_fields) for f in self.invalid_fields]
        return body


def unauthorized() -> AdyenError:
    # ASSUMPTION: the type URI is the unauthorized page's (docs/processors/adyen.md, "Errors": probable,
    # never seen).
    return AdyenError(
        401,
        UNAUTHORIZED,
        kind="unauthorized",
        title="Unauthorized",
        detail="The API credential used in the request is invalid or does not have the right permissions.",
    )


def forbidden() -> AdyenError:
    """The documented body of a missing role: Forbidden, "Not allowed"."""
    return AdyenError(403, FORBIDDEN, kind="forbidden", title="Forbidden", detail="Not allowed")


def entity_not_found() -> AdyenError:
    """An unknown webhook or account id: Adyen answers 422 with 30_112, not 404."""
    # ASSUMPTION: the detail repeats the title; the captured samples show only type, title and code.
    return AdyenError(
        422, ENTITY_NOT_FOUND, kind="not-found", title="Entity was not found", detail="Entity was not found"
    )


def unroutable() -> AdyenError:
    # ASSUMPTION: the detail; 00_404 and the title come from the not-found page and a third-party sample.
    return AdyenError(404, NOT_FOUND, kind="not-found", title="Not found", detail="Not found")


def validation(fields: Iterable[InvalidField], detail: str | None = None) -> AdyenError:
    """A 422 validation error naming the fields (code and title are the emulator's: see VALIDATION)."""
    listed = tuple(fields)
    names = ", ".join(f.name for f in listed)
    return AdyenError(
        422,
        VALIDATION,
        kind="validation",
        # ASSUMPTION: a title in the style of the captured "Invalid allowed origin information provided."
        title="Invalid webhook information provided.",
        detail=detail or f"Invalid fields: {names}",
        invalid_fields=listed,
    )


def malformed_body() -> AdyenError:
    # ASSUMPTION: the title and detail; the docs only say an unparsable request is a 400.
    return AdyenError(
        400, MALFORMED, kind="validation", title="Bad request", detail="The request body is not valid JSON"
    )


def server_error() -> AdyenError:
    # ASSUMPTION: the title and detail of a plain 500 (the internal-error page lists 00_500).
    return AdyenError(500, INTERNAL, kind="internal", title="Internal Server Error", detail="Internal error")


def too_many_requests(status: int) -> AdyenError:
    """Rate limiting: ``00_500`` "too many requests" (the docs), as a 500 or a 429 (a setting)."""
    # ASSUMPTION: the status (a 429 is plausible, not documented) and the title.
    title = "Too Many Requests" if status == 429 else "Internal Server Error"
    return AdyenError(status, INTERNAL, kind="internal", title=title, detail="too many requests")

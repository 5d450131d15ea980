"""How the Adyen driver reads answers: which are worth a retry, and what an error answer means.

Adyen's errors are JSON problem objects with an ``errorCode``
(docs/processors/adyen.md, "Errors"): ``00_401`` an unusable key, ``00_403``
a missing role or account, ``30_112`` (with HTTP 422, not 404) an id that is
not there. An error answer without that object (a proxy's page, an empty
body) is not Adyen's verdict on anything: it never reads as "permission
missing" or "not found", only as an answer procon cannot use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from procon.processors.base import MalformedResponse, ProcessorError
from procon.processors.responses import describe_body
from procon.redaction import redact

# 500 carries Adyen's "too many requests" (00_500) as well as its failures; 429 is what a rate
# limiter in front would answer (docs/processors/adyen.md, "Errors").
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

NOT_FOUND_CODE = "30_112"

# Long enough for any errorCode or field name Adyen uses; a hostile answer cannot fill a message.
_MAX_WORD = 64
# A field name as validation errors give it: a JSON path such as "additionalSettings.includeEventCodes[0]".
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.\[\]]{1,64}$")


def backoff_delay(
    attempt: int, draw: Callable[[], float], base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP
) -> float:
    """Seconds before retry ``attempt`` (0 first): uniform in [0, min(cap, base * 2**attempt)] ("full
    jitter"), so connections sharing an account that were refused together do not return together."""
    return draw() * min(cap, base * 2.0**attempt)


def request_id(response: httpx.Response) -> str:
    """Adyen's request id from an error body, for support; opaque, and shown only if it looks like one."""
    value = problem(response).get("requestId")
    if isinstance(value, str) and 0 < len(value) <= _MAX_WORD and value.isalnum():
        return f" (Adyen request {value})"
    return ""


def problem(response: httpx.Response) -> dict[str, Any]:
    """The error answer's problem object, or {} when the body is not one."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def error_code(response: httpx.Response) -> str | None:
    """Adyen's ``errorCode``, when the answer is Adyen's problem object; None for anything else."""
    code = problem(response).get("errorCode")
    if isinstance(code, str) and 0 < len(code) <= _MAX_WORD:
        return code
    return None


def is_adyens(response: httpx.Response) -> bool:
    """Whether an error answer is Adyen's own (a problem object with an error code)."""
    return error_code(response) is not None


def not_adyens(response: httpx.Response, doing: str) -> MalformedResponse:
    """An error answer that is not Adyen's: what came back, never the body."""
    described = describe_body(response.status_code, response.headers, response.content)
    return MalformedResponse(f"Adyen answered {doing} with {described}, not an Adyen error object")


def invalid_fields(response: httpx.Response) -> list[str]:
    """The names of the fields a validation error names, flat or wrapped in ``InvalidField``."""
    names: list[str] = []
    fields = problem(response).get("invalidFields")
    for item in fields if isinstance(fields, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("InvalidField"), Mapping):
            item = item["InvalidField"]
        name = item.get("name") if isinstance(item, Mapping) else None
        # Only names shaped like field names: anything else could be a value echoed back.
        if isinstance(name, str) and _FIELD_NAME.match(name):
            names.append(name)
    return names[:10]


def json_object(response: httpx.Response, doing: str) -> dict[str, Any]:
    """A success answer's JSON object; :class:`MalformedResponse` for anything else.

    Never {} for a body it cannot read: an unreadable listing taken as an empty one would make
    procon create a duplicate.
    """
    try:
        body = response.json()
    except (ValueError, RecursionError):
        described = describe_body(response.status_code, response.headers, response.content)
        raise MalformedResponse(f"Adyen answered {doing} with {described}") from None
    if not isinstance(body, dict):
        raise MalformedResponse(f"Adyen answered {doing} with JSON that is not an object")
    return body


def too_many_requests(response: httpx.Response) -> bool:
    """Whether an answer refuses for the rate: a 429, or Adyen's 500 ``00_500`` whose detail says
    "too many requests" (docs/processors/adyen.md, "Errors" and "Rate limits")."""
    if response.status_code == 429:
        return True
    if response.status_code != 500 or error_code(response) != "00_500":
        return False
    detail = problem(response).get("detail")
    return isinstance(detail, str) and "too many requests" in detail.lower()


def unexpected(response: httpx.Response, doing: str) -> ProcessorError:
    code = error_code(response)
    detail = f" ({code})" if code else ""
    return ProcessorError(
        redact(f"Adyen answered {response.status_code} {doing}{detail}{request_id(response)}")
    )

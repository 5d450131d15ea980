"""How the Checkout.com driver talks HTTP: which answers are worth a retry, how long to wait,
and what an answer means when it is not a success.

Kept apart from the driver because it is policy, not protocol: a retry that
could repeat a create is the difference between one workflow and two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from procon.processors.base import (
    MalformedResponse,
    NotFound,
    PermissionDenied,
    ProcessorError,
    RequestRejected,
)
from procon.processors.checkout import scopes as scope_rules
from procon.processors.responses import describe_body
from procon.redaction import redact

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
# Retries wait a random time up to BACKOFF_BASE * 2**attempt seconds, never more than BACKOFF_CAP.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
# Transport errors raised before a request could reach Checkout.com: retrying those never duplicates.
NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# POSTs that create nothing: the token endpoint and the payment search probe. Every other POST adds
# something (a workflow, a condition) and takes no idempotency key (docs/processors/checkout.md, "Idempotency
# and retries").
IDEMPOTENT_POSTS = frozenset({"/connect/token", "/payments/search"})


def backoff_delay(attempt: int, base: float, cap: float, draw: Callable[[], float]) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first): "full jitter", uniform in
    [0, min(cap, base * 2**attempt)].

    Checkout.com asks for exponential backoff with jitter (docs/processors/checkout.md, "Error answers"): its
    rate limit is per account, so connections sharing an account that were refused together must not come back
    together. The cap bounds how long one reconcile can sit in a retry.
    """
    return draw() * min(cap, base * 2.0**attempt)


def is_idempotent(method: str, path: str) -> bool:
    """Whether sending the request twice is harmless, so it may be retried after an unknown outcome.

    GET, PUT and DELETE are; PATCH here sets fields to given values, so it is too. A POST that
    creates (a workflow, a condition) is not: Workflows take no idempotency key (docs/processors/checkout.md,
    "Idempotency and retries").
    """
    return method.upper() != "POST" or path in IDEMPOTENT_POSTS


def json_body(response: httpx.Response) -> dict[str, Any]:
    """An error answer's JSON object, or {} when there is none: for reading error details only."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _parsed(response: httpx.Response, doing: str) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        described = describe_body(response.status_code, response.headers, response.content)
        raise MalformedResponse(
            f"Checkout.com answered {doing} with {described}{request_id(response)}"
        ) from None


def json_object(response: httpx.Response, doing: str) -> dict[str, Any]:
    """A success answer's JSON object; :class:`MalformedResponse` when the body is not one.

    Unlike :func:`json_body`, never returns {} for a body it cannot read: an
    unreadable listing taken as an empty one would make procon create a duplicate.
    """
    body = _parsed(response, doing)
    if not isinstance(body, dict):
        raise MalformedResponse(
            f"Checkout.com answered {doing} with JSON that is not an object{request_id(response)}"
        )
    return body


def json_array(response: httpx.Response, doing: str) -> list[Any]:
    """A success answer's top-level JSON array; :class:`MalformedResponse` when the body is not one."""
    body = _parsed(response, doing)
    if not isinstance(body, list):
        raise MalformedResponse(
            f"Checkout.com answered {doing} with JSON that is not a list{request_id(response)}"
        )
    return body


def request_id(response: httpx.Response) -> str:
    request_id = response.headers.get("Cko-Request-Id")
    return f" (Checkout.com request {request_id})" if request_id else ""


def unexpected(response: httpx.Response, doing: str) -> ProcessorError:
    return ProcessorError(f"Checkout.com answered {response.status_code} {doing}{request_id(response)}")


def raise_for(response: httpx.Response, doing: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status in (401, 403):
        raise PermissionDenied(
            f"Checkout.com refused {doing} ({status}): the credentials lack {scope_rules.WORKFLOWS_SCOPE}",
            scope_rules.WORKFLOWS_SCOPE,
        )
    if status == 404:
        raise NotFound(f"Checkout.com: not found while {doing}")
    if status == 422:
        codes = json_body(response).get("error_codes") or []
        raise RequestRejected(
            redact(f"Checkout.com rejected {doing}: {', '.join(map(str, codes)) or 'invalid request'}")
        )
    raise unexpected(response, doing)

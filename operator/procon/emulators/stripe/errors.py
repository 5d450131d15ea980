"""Stripe's error answers: one exception type carrying status and body, and a constructor per case.

Every constructor's message is the text Stripe was observed to send (docs/processors/stripe.md,
"Error texts the emulator sends", "Permission errors", "Keys and modes"); where the text or a field was not
observed it says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INVALID_REQUEST = "invalid_request_error"
API_ERROR = "api_error"
IDEMPOTENCY_ERROR = "idempotency_error"


class StripeError(Exception):
    """An error answer: HTTP status, the ``error`` object's fields and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body, ``{"error": {...}}``, with ``doc_url`` for coded errors as Stripe sends it."""
        error: dict[str, Any] = {}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        error["type"] = self.type
        return {"error": error}


# ASSUMPTION: 401s carry a Basic challenge naming the realm "Stripe", as Stripe's API is believed to send.
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Stripe"'}


def missing_api_key() -> StripeError:
    return StripeError(
        401,
        "You did not provide an API key. You need to provide your API key in the Authorization header, "
        "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
        "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        headers=_CHALLENGE,
    )


def invalid_api_key(masked_key: str) -> StripeError:
    return StripeError(401, f"Invalid API Key provided: {masked_key}", headers=_CHALLENGE)


def expired_api_key(masked_key: str) -> StripeError:
    return StripeError(
        401, f"Expired API Key provided: {masked_key}", code="api_key_expired", headers=_CHALLENGE
    )


def permission_denied(message: str, *, code: str | None = None) -> StripeError:
    """403 for a restricted key missing a permission: no code in the legacy shape, no param."""
    return StripeError(403, message, code=code)


def restricted_key_without_connect() -> StripeError:
    # ASSUMPTION: status 403 and no code; only the message was observed.
    return StripeError(
        403,
        "You passed a restricted API key with the Stripe-Account header, but the restricted API key "
        "does not have any Connect permissions.",
    )


def not_a_platform() -> StripeError:
    # ASSUMPTION: 403 with code platform_account_required, as one third party reports
    # (docs/processors/stripe.md, "Permission errors").
    return StripeError(
        403,
        "Only Stripe Connect platforms can work with other accounts. If you specified a client_id "
        "parameter, make sure it's correct.",
        code="platform_account_required",
    )


def account_not_accessible(masked_key: str, account_id: str) -> StripeError:
    # ASSUMPTION: the message combines the two observed fragments ("does not have access to account",
    # "application access may have been revoked"); the code account_invalid is documented.
    return StripeError(
        403,
        f"The provided key '{masked_key}' does not have access to account '{account_id}' (or that "
        "account does not exist). Application access may have been revoked.",
        code="account_invalid",
    )


def resource_missing(
    noun: str, object_id: str, *, param: str = "id", other_mode: bool | None = None
) -> StripeError:
    """404 for an unknown ID; ``other_mode`` names the mode where the ID exists, if it exists in the other."""
    message = f"No such {noun}: '{object_id}'"
    if other_mode is not None:
        # ASSUMPTION: "; " joins the suffix (renderings differ; docs/processors/stripe.md,
        # "Error texts the emulator sends").
        exists, used = ("live", "test") if other_mode else ("test", "live")
        message += (
            f"; a similar object exists in {exists} mode, "
            f"but a {used} mode key was used to make this request."
        )
    return StripeError(404, message, code="resource_missing", param=param)


def parameter_unknown(name: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def parameter_missing(name: str) -> StripeError:
    # ASSUMPTION: the text "Missing required param: <name>." as commonly seen; not documented.
    return StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)


def invalid_parameter(param: str, message: str, *, code: str | None = None) -> StripeError:
    return StripeError(400, message, code=code, param=param)


def unrecognized_url(method: str, path: str) -> StripeError:
    # ASSUMPTION: Stripe's unknown-route answer (404, this text) as commonly seen; not documented.
    return StripeError(
        404,
        f"Unrecognized request URL ({method.upper()}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def idempotency_key_reused(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were first used with. "
        f"Try using a key other than '{key}' if you meant to execute a different request.",
        type=IDEMPOTENCY_ERROR,
    )


def idempotency_key_in_use() -> StripeError:
    # ASSUMPTION: type idempotency_error (3P) and the message from the documented code description.
    return StripeError(
        409,
        "The idempotency key provided is currently being used in another request. This occurs if your "
        "integration is making duplicate requests simultaneously.",
        type=IDEMPOTENCY_ERROR,
        code="idempotency_key_in_use",
    )


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def lock_timeout() -> StripeError:
    # ASSUMPTION: the sentences after the documented first one follow Stripe's error-codes page wording.
    return StripeError(
        429,
        "This object cannot be accessed right now because another API request or Stripe process is "
        "currently accessing it. If you see this error intermittently, retry the request. If you see this "
        "error frequently and are making multiple concurrent requests to a single object, make your "
        "requests serially or at a lower rate. See https://stripe.com/docs/rate-limits for more details.",
        code="lock_timeout",
    )


def api_error() -> StripeError:
    # ASSUMPTION: the message text; only the type api_error is documented for 500s.
    return StripeError(
        500,
        "Sorry, something went wrong. We've already been notified of the problem, but if you need any "
        "help, you can reach us at https://support.stripe.com/contact.",
        type=API_ERROR,
    )

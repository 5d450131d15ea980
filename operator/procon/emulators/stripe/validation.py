"""Parameter validation for the emulated endpoints, raising the 400s Stripe sends.

Pure functions over parsed form values (see ``forms``), so each rule can be
tested without a server.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from procon.emulators.stripe import catalog
from procon.emulators.stripe.errors import StripeError, invalid_parameter, parameter_unknown
from procon.emulators.stripe.forms import APPENDED, FormValue, as_list

# Where these rules are stricter than Stripe's OpenAPI spec (which leaves metadata, URLs and `limit`
# unbounded), each one is a fact Stripe's documentation states; docs/processors/stripe.md lists them
# with their sources. Everything else follows the spec.
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100
# The spec's maxLength for free text such as `description` and for list cursors.
STRING_MAX_LENGTH = 5000

# ASSUMPTION: URL errors carry param "url" and no code (url_invalid exists, but no sample showed it).
URL_NOT_VALID = "Invalid URL: Not a valid URL"  # ASSUMPTION: only "contains 'Not a valid URL'" was observed.
URL_NO_SCHEME = "Invalid URL: An explicit scheme (such as https) must be provided."
URL_NOT_PUBLIC = (
    "Invalid URL: URL must be publicly accessible. Consider using a tool like the Stripe CLI to test "
    "webhooks locally."
)
# ASSUMPTION: live mode requires https (documented) but the rejection text was never observed.
URL_LIVE_NOT_HTTPS = "Invalid URL: URLs for live mode webhook endpoints must use HTTPS."

_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# ASSUMPTION: names that cannot resolve publicly count as "not publicly accessible" like loopback does;
# Stripe's exact rule (and whether it resolves DNS) is unknown, so no DNS lookup is made.
_NON_PUBLIC_SUFFIXES = (".localhost", ".local", ".internal")


def check_known(params: Mapping[str, FormValue], allowed: Collection[str]) -> None:
    """400 ``parameter_unknown`` for the first parameter not in ``allowed``."""
    for name in params:
        if name not in allowed:
            raise parameter_unknown(name)


def require_string(param: str, value: FormValue) -> str:
    if not isinstance(value, str):
        # ASSUMPTION: the wording of a type error for a nested value where a string is expected.
        raise invalid_parameter(param, f"Invalid string: {param} must be a string")
    return value


def check_length(param: str, value: str) -> None:
    """The spec bounds free-text parameters (``description``, cursors) at 5000 characters."""
    if len(value) > STRING_MAX_LENGTH:
        # ASSUMPTION: the wording; the bound is the spec's.
        raise invalid_parameter(
            param, f"Invalid {param}: must be at most {STRING_MAX_LENGTH} characters long"
        )


def parse_bool(param: str, value: FormValue) -> bool:
    """stripe-python sends booleans as ``true``/``false``."""
    if value == "true":
        return True
    if value == "false":
        return False
    # ASSUMPTION: the wording for a value that is not a boolean.
    raise invalid_parameter(param, f"Invalid boolean: {value if isinstance(value, str) else param}")


def parse_string_list(param: str, value: FormValue) -> list[str]:
    """``a[0]=x&a[1]=y`` (or ``a[]=x``) -> ``["x", "y"]``."""
    items = as_list(value)
    if items is None or not all(isinstance(item, str) for item in items):
        # ASSUMPTION: the wording for a value that is not an array of strings.
        raise invalid_parameter(param, "Invalid array")
    return [item for item in items if isinstance(item, str)]


def _is_public_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.rstrip(".")
        return "." in name and name != "localhost" and not name.endswith(_NON_PUBLIC_SUFFIXES)
    return address.is_global


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(_HOST_LABEL.match(label) for label in labels)
    return True


def validate_webhook_url(value: FormValue, *, livemode: bool) -> str:
    """A webhook URL must be an absolute http(s) URL to a public host; https in live mode."""
    url = require_string("url", value)
    if not url or any(char.isspace() or ord(char) < 0x20 for char in url):
        raise invalid_parameter("url", URL_NOT_VALID)
    if "://" not in url:
        # "example.com/hook" lacks a scheme; "not-a-url" or "?" is just not a URL.
        if _valid_http_url(f"https://{url}"):
            raise invalid_parameter("url", URL_NO_SCHEME)
        raise invalid_parameter("url", URL_NOT_VALID)
    if not _valid_http_url(url):
        raise invalid_parameter("url", URL_NOT_VALID)
    parts = urlsplit(url)
    if not _is_public_host(parts.hostname or ""):
        raise invalid_parameter("url", URL_NOT_PUBLIC)
    if livemode and parts.scheme.lower() != "https":
        raise invalid_parameter("url", URL_LIVE_NOT_HTTPS)
    return url


def _valid_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return False
    host = parts.hostname
    return parts.scheme.lower() in ("http", "https") and bool(host) and _is_host(host or "")


def _must_be_one_of(param: str, allowed: Collection[str]) -> StripeError:
    return invalid_parameter(param, f"Invalid {param}: must be one of {', '.join(allowed)}")


def validate_enabled_events(value: FormValue) -> list[str]:
    """Each value must be in Stripe's list; the error names the first failing index."""
    items = as_list(value)
    if items is None:
        raise invalid_parameter("enabled_events", "Invalid array")  # ASSUMPTION: wording, as above
    allowed = catalog.enabled_events()
    # ASSUMPTION: the message lists every value but "*" (the observed one starts with the first real event).
    listed = [event for event in allowed if event != "*"]
    events: list[str] = []
    for index, event in enumerate(items):
        if not isinstance(event, str) or event not in allowed:
            # ASSUMPTION: param is "enabled_events[<index>]" (only the message was observed).
            raise _must_be_one_of(f"enabled_events[{index}]", listed)
        events.append(event)
    return events


def validate_api_version(value: FormValue) -> str:
    version = require_string("api_version", value)
    if version not in catalog.webhook_api_versions():
        # ASSUMPTION: the same "must be one of" shape as enabled_events; only the value list is documented.
        raise _must_be_one_of("api_version", catalog.webhook_api_versions())
    return version


def merge_metadata(current: Mapping[str, str], update: FormValue) -> dict[str, str]:
    """Stripe's metadata semantics: merge keys, ``""`` unsets a key, ``metadata=""`` unsets all.

    Limits: 50 keys, keys up to 40 characters, values up to 500 characters.
    """
    if isinstance(update, str):
        if update == "":
            return {}
        raise invalid_parameter("metadata", "Invalid hash")  # ASSUMPTION: wording for a non-hash value
    if any(key.startswith(APPENDED) for key in update):
        raise invalid_parameter("metadata", "Invalid hash")  # "metadata[]=x" has no key
    merged = dict(current)
    for key, value in update.items():
        param = f"metadata[{key}]"
        if not isinstance(value, str):
            raise invalid_parameter(param, "Invalid string: metadata values must be strings")  # ASSUMPTION
        # ASSUMPTION: the wording of the three limit errors below; the limits themselves are documented.
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_parameter(
                param,
                f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters; '{key}' has {len(key)}.",
            )
        if value == "":
            merged.pop(key, None)
            continue
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_parameter(
                param,
                f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters; "
                f"the value of '{key}' has {len(value)}.",
            )
        merged[key] = value
    if len(merged) > METADATA_MAX_KEYS:
        raise invalid_parameter(
            "metadata", f"Metadata can have up to {METADATA_MAX_KEYS} keys; it would have {len(merged)}."
        )
    return merged


@dataclass(frozen=True)
class ListParams:
    limit: int
    starting_after: str | None
    ending_before: str | None
    expand: tuple[str, ...]


def parse_list_params(params: Mapping[str, FormValue]) -> ListParams:
    """``limit`` 1..100 (default 10), one of ``starting_after``/``ending_before``, ``expand``."""
    limit = LIST_LIMIT_DEFAULT
    if "limit" in params:
        raw = require_string("limit", params["limit"])
        try:
            limit = int(raw)
        except ValueError:
            # ASSUMPTION: the wording and code of a non-integer limit.
            raise invalid_parameter(
                "limit", f"Invalid integer: {raw}", code="parameter_invalid_integer"
            ) from None
        # ASSUMPTION: the wording of the two range errors; the 1..100 range is documented (the spec
        # says so only in the parameter's description).
        if limit < 1:
            raise invalid_parameter("limit", "This value must be greater than or equal to 1.")
        if limit > LIST_LIMIT_MAX:
            raise invalid_parameter("limit", f"This value must be less than or equal to {LIST_LIMIT_MAX}.")
    after = require_string("starting_after", params["starting_after"]) if "starting_after" in params else None
    before = require_string("ending_before", params["ending_before"]) if "ending_before" in params else None
    for param, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor is not None:
            check_length(param, cursor)
    if after is not None and before is not None:
        # Documented: the cursors are mutually exclusive (the spec does not say so).
        # ASSUMPTION: the wording.
        raise invalid_parameter(
            "ending_before", "You may only specify one of these parameters: ending_before, starting_after."
        )
    return ListParams(limit, after or None, before or None, parse_expand(params))


def parse_expand(params: Mapping[str, FormValue]) -> tuple[str, ...]:
    if "expand" not in params:
        return ()
    return tuple(parse_string_list("expand", params["expand"]))


def cannot_expand(path: str) -> StripeError:
    """Stripe's answer for an ``expand`` path the object does not have (observed wording)."""
    return invalid_parameter("expand", f"This property cannot be expanded ({path}).")

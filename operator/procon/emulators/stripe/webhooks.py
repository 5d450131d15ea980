"""The ``/v1/webhook_endpoints`` operations, over parsed parameters and the state.

Endpoints belong to an account and a mode (the key's); the caller's account may
be a connected one (``Stripe-Account``). Each operation validates first and
changes state last, so a 400 leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from procon.emulators.stripe import errors, validation
from procon.emulators.stripe.access import Caller
from procon.emulators.stripe.errors import StripeError
from procon.emulators.stripe.forms import FormValue
from procon.emulators.stripe.state import StripeState, WebhookEndpoint
from procon.emulators.stripe.validation import ListParams

COLLECTION_URL = "/v1/webhook_endpoints"
NOUN = "webhook endpoint"
CREATE_PARAMS = frozenset(
    {"url", "enabled_events", "api_version", "connect", "description", "metadata", "expand"}
)
UPDATE_PARAMS = frozenset({"url", "enabled_events", "description", "disabled", "metadata", "expand"})
LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "expand"})
RETRIEVE_PARAMS = frozenset({"expand"})
DELETE_PARAMS: frozenset[str] = frozenset()

T = TypeVar("T")


def endpoint_limit_reached(limit: int, livemode: bool) -> StripeError:
    """400 without a code; the live wording is inferred from the observed test one."""
    mode = "live" if livemode else "test"  # ASSUMPTION: live mode says "live" where test mode says "test"
    return StripeError(400, f"You have reached the maximum of {limit} {mode} webhook endpoints.")


def _check_expand(expand: Sequence[str], *, in_list: bool = False) -> None:
    """A webhook endpoint has no expandable property (``application`` is a plain ID in stripe-python)."""
    if expand:
        # ASSUMPTION: the message names the path below a list's "data." and param is "expand".
        raise validation.cannot_expand(expand[0].removeprefix("data.") if in_list else expand[0])


def _description(value: FormValue) -> str | None:
    text = validation.require_string("description", value)
    validation.check_length("description", text)
    return text or None  # "" unsets it


def _find(state: StripeState, caller: Caller, endpoint_id: str) -> WebhookEndpoint:
    """The caller's endpoint, or a 404 that hints at the other mode when the ID lives there."""
    with state.lock:
        endpoint = state.endpoints.get(endpoint_id)
    if endpoint is None or endpoint.account_id != caller.account_id:
        raise errors.resource_missing(NOUN, endpoint_id)
    if endpoint.livemode != caller.livemode:
        raise errors.resource_missing(NOUN, endpoint_id, other_mode=endpoint.livemode)
    return endpoint


def create(state: StripeState, caller: Caller, params: Mapping[str, FormValue]) -> dict[str, Any]:
    validation.check_known(params, CREATE_PARAMS)
    for required in ("url", "enabled_events"):
        if required not in params:
            raise errors.parameter_missing(required)
    url = validation.validate_webhook_url(params["url"], livemode=caller.livemode)
    events = validation.validate_enabled_events(params["enabled_events"])
    api_version = validation.validate_api_version(params["api_version"]) if "api_version" in params else None
    # ASSUMPTION: connect=true is accepted from any account (Stripe's rule for non-platforms is unknown).
    connect = validation.parse_bool("connect", params["connect"]) if "connect" in params else False
    description = _description(params["description"]) if "description" in params else None
    metadata = validation.merge_metadata({}, params["metadata"]) if "metadata" in params else {}
    _check_expand(validation.parse_expand(params))
    with state.lock:
        limit = state.settings.endpoint_limit
        if len(state.endpoints_of(caller.account_id, caller.livemode)) >= limit:
            raise endpoint_limit_reached(limit, caller.livemode)
        endpoint = state.add_endpoint(
            caller.account_id,
            caller.livemode,
            url,
            events,
            api_version=api_version,
            description=description,
            metadata=metadata,
            connect=connect,
        )
        return endpoint.to_api(include_secret=True)  # the only answer that ever carries the secret


def retrieve(
    state: StripeState, caller: Caller, endpoint_id: str, params: Mapping[str, FormValue]
) -> dict[str, Any]:
    validation.check_known(params, RETRIEVE_PARAMS)
    _check_expand(validation.parse_expand(params))
    with state.lock:
        return _find(state, caller, endpoint_id).to_api()


def update(
    state: StripeState, caller: Caller, endpoint_id: str, params: Mapping[str, FormValue]
) -> dict[str, Any]:
    """Accepts url, enabled_events, description, disabled, metadata, expand; the rest is create-only."""
    validation.check_known(params, UPDATE_PARAMS)
    with state.lock:
        # ASSUMPTION: the ID is looked up before parameter values are checked (unknown names come first).
        endpoint = _find(state, caller, endpoint_id)
        url = (
            validation.validate_webhook_url(params["url"], livemode=caller.livemode)
            if "url" in params
            else None
        )
        events = (
            validation.validate_enabled_events(params["enabled_events"])
            if "enabled_events" in params
            else None
        )
        disabled = validation.parse_bool("disabled", params["disabled"]) if "disabled" in params else None
        metadata = (
            validation.merge_metadata(endpoint.metadata, params["metadata"]) if "metadata" in params else None
        )
        description_given = "description" in params
        description = _description(params["description"]) if description_given else None
        _check_expand(validation.parse_expand(params))
        if url is not None:
            endpoint.url = url
        if events is not None:
            endpoint.enabled_events = events
        if disabled is not None:
            endpoint.disabled = disabled
        if metadata is not None:
            endpoint.metadata = metadata
        if description_given:
            endpoint.description = description
        return endpoint.to_api()


def delete(
    state: StripeState, caller: Caller, endpoint_id: str, params: Mapping[str, FormValue]
) -> dict[str, Any]:
    validation.check_known(params, DELETE_PARAMS)
    with state.lock:
        endpoint = _find(state, caller, endpoint_id)
        state.remove_endpoint(endpoint.id)
    return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}


def list_page(state: StripeState, caller: Caller, params: Mapping[str, FormValue]) -> dict[str, Any]:
    validation.check_known(params, LIST_PARAMS)
    options = validation.parse_list_params(params)
    _check_expand(options.expand, in_list=True)
    with state.lock:
        endpoints = state.endpoints_of(caller.account_id, caller.livemode)
        page, has_more = paginate(endpoints, options, key=lambda e: e.id, noun=NOUN)
        return list_object(COLLECTION_URL, [e.to_api() for e in page], has_more)


def list_object(url: str, data: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    """Stripe's list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def paginate(
    items: Sequence[T], options: ListParams, *, key: Callable[[T], str], noun: str
) -> tuple[list[T], bool]:
    """One page of ``items`` (newest first) by Stripe's cursor rules, and whether more lie beyond it."""
    ids = [key(item) for item in items]
    cursor_param, cursor = (
        ("starting_after", options.starting_after)
        if options.starting_after is not None
        else ("ending_before", options.ending_before)
    )
    if cursor is None:
        return list(items[: options.limit]), len(items) > options.limit
    if cursor not in ids:
        # ASSUMPTION: an unknown cursor is a 404 resource_missing naming the cursor parameter.
        raise errors.resource_missing(noun, cursor, param=cursor_param)
    position = ids.index(cursor)
    if cursor_param == "starting_after":
        end = position + 1 + options.limit
        return list(items[position + 1 : end]), len(items) > end
    start = max(0, position - options.limit)
    return list(items[start:position]), start > 0

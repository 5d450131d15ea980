"""Who is calling and what they may do: the token endpoint, Bearer authentication, scopes.

Every API request carries ``Authorization: Bearer <credential>``, an OAuth
access token or a secret key (NAS keys need the ``Bearer`` prefix:
docs/processors/checkout.md, "Secret keys"). The checks, in order: a credential was given and is known, usable
and unexpired (401); the host's account prefix, if any, is the credential's
account (401); the host's environment, if its name says one, is the
credential's (401); the credential holds a scope the endpoint accepts (401 or
403, by fixture setting).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from procon.emulators.checkout import errors, scopes
from procon.emulators.checkout.hosts import account_prefix, environment
from procon.emulators.checkout.state import (
    NAS_SECRET_KEY,
    AccessKey,
    BodyStyle,
    CheckoutState,
    Client,
    EmptyScope,
    IssuedToken,
    SecretKey,
)
from procon.emulators.checkout.tokens import make_access_token

_NAS_KEY = re.compile(NAS_SECRET_KEY)


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the account, its mode, and what the credential may reach."""

    client: Client
    scopes: frozenset[str]
    entities: tuple[str, ...]  # empty: every entity of the client
    credential: str  # "oauth" or "secret_key"

    @property
    def mode(self) -> str:
        return self.client.mode.value


def _unauthorized(state: CheckoutState) -> errors.CheckoutError:
    return errors.unauthorized(state.settings.unauthorized_body is BodyStyle.JSON)


def bearer_credential(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    # ASSUMPTION: only the Bearer scheme is accepted; a raw key (the "previous" ABC platform's style) or
    # another scheme counts as no credential.
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


def authenticate(state: CheckoutState, authorization: str | None, host: str | None, now: float) -> Caller:
    """The caller of an API request, or a 401."""
    credential = bearer_credential(authorization)
    if credential is None:
        raise _unauthorized(state)
    with state.lock:
        caller = _token_caller(state, credential, now) or _secret_key_caller(state, credential)
    if caller is None:
        raise _unauthorized(state)
    prefix = account_prefix(host)
    # ASSUMPTION: a credential used on another account's host (or on a prefix no account has) is a 401;
    # only the token host's 406 for unknown prefixes is known (docs/processors/checkout.md, "Access keys and
    # tokens").
    if prefix is not None and prefix != caller.client.prefix:
        raise _unauthorized(state)
    if not serves_environment(host, caller.client):
        raise _unauthorized(state)
    return caller


def serves_environment(host: str | None, client: Client) -> bool:
    """Whether a host serves the client's environment (sandbox or production).

    ASSUMPTION: sandbox and production are separate hosts (docs/processors/checkout.md, "Hosts"), and a
    credential of one is unknown to the other's, so it is refused as a bad credential is: a 401 on
    the API, ``invalid_client`` at the token endpoint. What the real hosts answer is not documented.
    """
    served = environment(host)
    return served is None or served == client.mode.value


def _token_caller(state: CheckoutState, credential: str, now: float) -> Caller | None:
    token: IssuedToken | None = state.tokens.get(credential)
    if token is None or not token.valid(now):
        return None
    key = state.access_keys.get(token.access_key_id)
    client = state.clients.get(token.client_id)
    # ASSUMPTION: a token dies with its access key (expired or deleted), and scopes taken from the key
    # take effect on outstanding tokens at once; scopes granted later need a new token.
    if key is None or not key.usable or client is None:
        return None
    held = frozenset(s for s in token.scopes if scopes.covers(key.scopes, s))
    return Caller(client=client, scopes=held, entities=(), credential="oauth")


def _secret_key_caller(state: CheckoutState, credential: str) -> Caller | None:
    if not _NAS_KEY.match(credential):
        return None
    key: SecretKey | None = state.secret_keys.get(credential)
    if key is None or not key.usable:
        return None
    client = state.clients.get(key.client_id)
    if client is None:
        return None
    return Caller(client=client, scopes=key.scopes, entities=key.entities, credential="secret_key")


def require(state: CheckoutState, caller: Caller, accepted: tuple[str, ...]) -> None:
    """401 or 403 (the fixture's ``missing_scope_status``) unless the caller holds an accepted scope."""
    if scopes.allows(caller.scopes, accepted):
        return
    settings = state.settings
    raise errors.missing_scope(settings.missing_scope_status, settings.unauthorized_body is BodyStyle.JSON)


def require_entity(state: CheckoutState, caller: Caller, entity_id: str) -> None:
    """404 for an entity the account does not have; the scope status for one the key may not reach."""
    if entity_id not in caller.client.entities:
        raise errors.not_found()  # the spec: 404 "Entity not found"
    if caller.entities and entity_id not in caller.entities:
        # ASSUMPTION: a key restricted to other entities is refused as a missing scope is.
        settings = state.settings
        raise errors.missing_scope(
            settings.missing_scope_status, settings.unauthorized_body is BodyStyle.JSON
        )


# The token endpoint


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, secret = decoded.partition(":")
    return (client_id, secret) if separator else None


def client_credentials(
    authorization: str | None, form: Mapping[str, str], invalid_status: int = 400
) -> tuple[str, str]:
    """The access key id and secret from HTTP Basic, the form body, or both (the official Python SDK).

    ``invalid_status`` is the status of the ``invalid_client`` answer (the fixture's setting).
    """
    basic = _basic_credentials(authorization)
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    in_body = (body_id, body_secret) if body_id is not None or body_secret is not None else None
    if basic is None and in_body is None:
        raise errors.invalid_client(invalid_status)
    if basic is not None and in_body is not None and basic != in_body:
        # ASSUMPTION: two different credentials in one request are refused as bad credentials.
        raise errors.invalid_client(invalid_status)
    client_id, secret = basic or in_body or ("", "")
    if not client_id or not secret:
        raise errors.invalid_client(invalid_status)
    return client_id, secret


def issue_token(
    state: CheckoutState,
    *,
    host: str | None,
    issuer: str,
    authorization: str | None,
    form: Mapping[str, str],
    now: float,
) -> dict[str, Any]:
    """``POST /connect/token`` with ``grant_type=client_credentials``: the token answer, or an error."""
    prefix = account_prefix(host)
    account = state.client_by_prefix(prefix) if prefix is not None else None
    if prefix is not None and account is None:
        raise errors.unknown_account_host()
    grant_type = form.get("grant_type")
    if not grant_type:
        raise errors.oauth("invalid_request")
    if grant_type != "client_credentials":
        raise errors.oauth("unsupported_grant_type")
    key_id, secret = client_credentials(authorization, form, state.settings.invalid_client_status)
    with state.lock:
        key: AccessKey | None = state.access_keys.get(key_id)
        settings = state.settings
        invalid = errors.invalid_client(settings.invalid_client_status)
        if key is None or key.secret != secret or not key.usable or key.client_id not in state.clients:
            raise invalid
        # ASSUMPTION: an account's own token host knows only that account's access keys.
        if account is not None and key.client_id != account.id:
            raise invalid
        if not serves_environment(host, state.clients[key.client_id]):
            raise invalid  # the other environment's token host does not know the key
        requested = scopes.parse_requested(form.get("scope", ""))
        if not requested:
            granted = key.scopes if settings.empty_scope is EmptyScope.ALL else frozenset()
        elif all(scopes.covers(key.scopes, scope) for scope in requested):
            granted = frozenset(requested)
        else:
            raise errors.oauth("invalid_scope")
        lifetime = settings.token_lifetime_seconds
        value = make_access_token(
            issuer=issuer,
            access_key_id=key.id,
            client_id=key.client_id,
            scopes=granted,
            issued_at=int(now),
            lifetime=lifetime,
        )
        state.issue_token(key, granted, value, now)
    answer: dict[str, Any] = {"access_token": value, "token_type": "Bearer", "expires_in": lifetime}
    if settings.token_response_scope:
        answer["scope"] = " ".join(requested) if requested else " ".join(sorted(granted))
    return answer

"""Who is calling and what they may do: authentication, ``Stripe-Account``, permissions.

Stripe checks, in order: that a key was given (401), that it exists and has not
expired (401), that a ``Stripe-Account`` header names an account the key may act
on (403), and that a restricted key holds the permission the endpoint needs
(403). Each step is a pure function here, so the server only wires them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from procon.emulators.stripe import errors, permissions
from procon.emulators.stripe.keys import KeyKind, mask_key
from procon.emulators.stripe.permissions import MessageStyle
from procon.emulators.stripe.state import ApiKey, StripeState


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the key, and the account it acts on (its own, or a connected one)."""

    key: ApiKey
    account_id: str
    via_connect: bool

    @property
    def livemode(self) -> bool:
        return self.key.livemode

    @property
    def idempotency_scope(self) -> tuple[str, str, bool]:
        # ASSUMPTION: idempotency keys are scoped by the key's account, the account acted on and the mode.
        return (self.key.account_id, self.account_id, self.livemode)


def key_from_authorization(header: str | None) -> str | None:
    """The API key in ``Authorization: Bearer <key>`` or ``Basic base64(<key>:)``, as Stripe accepts both."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    # ASSUMPTION: an Authorization header of another scheme counts as no key at all.
    return None


def authenticate(state: StripeState, authorization: str | None) -> ApiKey:
    secret = key_from_authorization(authorization)
    if secret is None:
        raise errors.missing_api_key()
    key = state.key(secret)
    if key is None:
        # ASSUMPTION: publishable and unknown keys alike get "Invalid API Key provided".
        raise errors.invalid_api_key(mask_key(secret))
    if key.expired:
        raise errors.expired_api_key(key.masked)
    state.note_use(key)
    return key


def resolve_caller(state: StripeState, key: ApiKey, stripe_account: str | None) -> Caller:
    """Apply a ``Stripe-Account`` header: only to an account the key's account is a platform for."""
    # ASSUMPTION: Stripe-Context (which supersedes Stripe-Account in newer docs) is not modelled; procon
    # does not send it.
    target = (stripe_account or "").strip()
    # ASSUMPTION: naming the key's own account acts directly, as if the header were absent.
    if not target or target == key.account_id:
        return Caller(key, key.account_id, via_connect=False)
    if key.kind is KeyKind.RESTRICTED and not key.connect_permissions:
        raise errors.restricted_key_without_connect()
    with state.lock:
        owner = state.accounts.get(key.account_id)
    if owner is None or not owner.is_platform:
        raise errors.not_a_platform()
    if target not in owner.connected_accounts:
        raise errors.account_not_accessible(key.masked, target)
    return Caller(key, target, via_connect=True)


def require(state: StripeState, caller: Caller, needed: str) -> None:
    """403 unless the caller's key allows ``needed`` (secret keys allow everything)."""
    key = caller.key
    if key.kind is KeyKind.SECRET:
        return
    granted = key.connect_permissions if caller.via_connect else key.permissions
    if permissions.allows(granted, needed):
        return
    raise denied(state, caller, needed)


def denied(state: StripeState, caller: Caller, needed: str) -> errors.StripeError:
    """The 403 for ``needed``, in the message style the fixture chose."""
    style = state.settings.permission_message_style
    message = permissions.denied_message(style, caller.key.masked, caller.account_id, needed)
    # ASSUMPTION: the newer message shape comes with code more_permissions_required (3P samples: Airbyte's
    # Stripe source and others); the legacy shape has no code (docs/processors/stripe.md, "Permission
    # errors").
    code = "more_permissions_required" if style is MessageStyle.NEW else None
    return errors.permission_denied(message, code=code)

"""Out-of-band changes to webhooks, as a Customer Area user would make them.

Tests use these (through ``AdyenEmulator`` or the control API) to play
everyone but the operator: someone adding a webhook at the same URL, switching
one off, changing its URL, typing in a new HMAC key. They go through the same
validation as the API, without authentication, roles or faults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procon.emulators.adyen import webhooks
from procon.emulators.adyen.errors import AdyenError
from procon.emulators.adyen.state import AccountRef, AdyenState, Environment, Level, Webhook, check_value


def view(webhook: Webhook) -> dict[str, Any]:
    """A webhook as stored, the HMAC key unmasked (for tests that check what was published)."""
    return {
        "id": webhook.id,
        "environment": webhook.where.environment.value,
        "level": webhook.where.level.value,
        "account": webhook.where.account,
        **webhook.config,
        "hasPassword": webhook.password is not None,
        "hmacKey": webhook.hmac_key,
        "previousHmacKey": webhook.previous_hmac_key,
        "hmacKeyCheckValue": webhook.check_value,
    }


def _context(state: AdyenState, where: AccountRef) -> webhooks.Context:
    if where.level is Level.COMPANY:
        company = state.companies.get(where.account)
    else:
        company = state.company_of_merchant(where.account)
    if company is None:
        raise KeyError(f"no {where.level.value} account {where.account}")
    return webhooks.Context(
        level=where.level,
        environment=where.environment,
        account=where.account,
        company_merchants=frozenset(company.merchants),
        settings=state.settings,
    )


def _checked(call: Any) -> Any:
    try:
        return call()
    except AdyenError as error:
        raise ValueError(f"{error}: {[f.name + ': ' + f.message for f in error.invalid_fields]}") from None


def where(environment: str, company: str | None = None, merchant: str | None = None) -> AccountRef:
    if (company is None) == (merchant is None):
        raise ValueError("name exactly one of company and merchant")
    level, account = (Level.COMPANY, company) if company is not None else (Level.MERCHANT, merchant)
    assert account is not None
    return AccountRef(Environment(environment), level, account)


def create(state: AdyenState, at: AccountRef, body: Mapping[str, Any]) -> Webhook:
    with state.lock:
        context = _context(state, at)
        parsed = _checked(lambda: webhooks.parse(body, context, creating=True))
        return state.add_webhook(at, webhooks.new_config(parsed, context), parsed.password)


def update(state: AdyenState, webhook_id: str, changes: Mapping[str, Any]) -> Webhook:
    with state.lock:
        webhook = state.webhook(webhook_id)
        parsed = _checked(lambda: webhooks.parse(changes, _context(state, webhook.where), creating=False))
        webhooks.apply_update(webhook, parsed)
        return webhook


def delete(state: AdyenState, webhook_id: str) -> Webhook:
    with state.lock:
        return state.webhooks.pop(webhook_id)


def set_hmac_key(state: AdyenState, webhook_id: str, key: str | None = None) -> str:
    """Replace a webhook's HMAC key (``key`` as typed into the Customer Area, or a new random one)."""
    if key is not None:
        try:
            check_value(key)
        except ValueError:
            raise ValueError("an HMAC key is hexadecimal") from None
    with state.lock:
        return state.generate_hmac(state.webhook(webhook_id), key.upper() if key else None)

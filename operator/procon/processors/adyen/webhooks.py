"""A procon webhook as an Adyen webhook configuration, and back: pure, no I/O.

Ownership: Adyen webhooks have no metadata field, so procon's tag is the
``description``, ``procon/<cluster>/<namespace>/<name>/<uid>``
(docs/processors/adyen.md, "Ownership marker"). A webhook is procon's only if
its description has exactly that shape; a webhook is never adopted by its URL,
because Adyen allows many webhooks at one URL and a foreign one always has a
description of its own.

What procon sets and restores: the URL, ``active``, the JSON format, the
event codes it asked for, the merchant-account filter (company level), and
certificate checks left on. The type and the account cannot change
(docs/processors/adyen.md, "Webhook fields"): a different type means a new
webhook. The HMAC key cannot be read back; ``hmacKeyCheckValue`` tells which
key a webhook has, so a check value other than the published one means the
key changed outside procon.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from procon.processors.base import MalformedResponse, ObservedWebhook
from procon.reconcile.ownership import CLUSTER, CONNECT, MANAGED_BY, MANAGED_BY_VALUE, NAME, NAMESPACE, UID

MARKER_PREFIX = "procon/"
COMMUNICATION_FORMAT = "json"
# Adyen's default; "HTTP" (no TLS) is the one value procon corrects (docs/processors/adyen.md,
# "Webhook fields").
ENCRYPTION_PROTOCOL = "TLSv1.2"
CERTIFICATE_CHECKS = (
    "acceptsExpiredCertificate",
    "acceptsSelfSignedCertificate",
    "acceptsUntrustedRootCertificate",
)
# Event codes: upper-case words joined by underscores (docs/processors/adyen.md, "Event codes").
EVENT_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# ASSUMPTION: Adyen checks nothing about a description's length (none is documented); procon's
# marker is at most about 420 characters (cluster 63, namespace 63, name 253, UID 36).


def marker(owner: Mapping[str, str]) -> str:
    """The description that tags a webhook as the connection's."""
    return MARKER_PREFIX + "/".join(owner.get(k, "") for k in (CLUSTER, NAMESPACE, NAME, UID))


def owner_of(description: str | None) -> dict[str, str]:
    """The ownership tag a description carries; empty for a webhook procon did not tag."""
    if not description or not description.startswith(MARKER_PREFIX):
        return {}
    fields = description[len(MARKER_PREFIX) :].split("/")
    if len(fields) != 4 or not all(fields):
        return {}
    owner = dict(zip((CLUSTER, NAMESPACE, NAME, UID), fields, strict=True))
    # Adyen has no Connect; the tag says so like Stripe's does.
    return {MANAGED_BY: MANAGED_BY_VALUE, **owner, CONNECT: "false"}


@dataclass(frozen=True)
class AdyenWebhook:
    """A webhook configuration as Adyen reports it, checked field by field."""

    id: str
    url: str
    type: str
    active: bool
    description: str
    communication_format: str
    encryption_protocol: str | None
    filter_type: str | None
    filter_accounts: tuple[str, ...]
    include_codes: tuple[str, ...]
    exclude_codes: tuple[str, ...]
    # Which HMAC key the webhook signs with; None when it has none (docs/processors/adyen.md,
    # "HMAC keys").
    check_value: str | None
    certificate_checks_off: tuple[str, ...] = ()
    has_error: bool = False

    @property
    def owner(self) -> dict[str, str]:
        return owner_of(self.description)

    def observed(self) -> ObservedWebhook:
        """In the reconciler's neutral terms."""
        return ObservedWebhook(
            id=self.id,
            url=self.url,
            events=self.include_codes,
            description=None,
            enabled=self.active,
            metadata=self.owner,
            status="enabled" if self.active else "disabled",
            parts={
                "type": self.type,
                **({"hmacKeyCheckValue": self.check_value} if self.check_value else {}),
            },
        )


def _text(body: Mapping[str, Any], name: str, webhook: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MalformedResponse(f"Adyen's webhook {webhook} has a {name} that is not text")
    return value


def _flag(body: Mapping[str, Any], name: str, webhook: str, default: bool | None = None) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise MalformedResponse(f"Adyen's webhook {webhook} has a {name} that is not true or false")
    return value


def _texts(value: Any, name: str, webhook: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedResponse(f"Adyen's webhook {webhook} has {name} that are not a list of text")
    return tuple(sorted(value))


def parse_webhook(body: Any) -> AdyenWebhook:
    """A webhook from an answer; :class:`MalformedResponse` when it is not one.

    Required by Adyen's schema: ``type``, ``url``, ``active``, ``communicationFormat``; procon also
    needs the ``id``. ``encryptionProtocol`` was ``sslVersion`` in v1 and may still come under that
    name (docs/processors/adyen.md, "Hosts and environments").
    """
    if not isinstance(body, Mapping):
        raise MalformedResponse("Adyen answered with a webhook that is not an object")
    webhook_id = body.get("id")
    if not isinstance(webhook_id, str) or not webhook_id:
        raise MalformedResponse("Adyen answered with a webhook without an id")
    shown = webhook_id[:64]
    settings = body.get("additionalSettings")
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise MalformedResponse(f"Adyen's webhook {shown} has additionalSettings that are not an object")
    check_value = _text(body, "hmacKeyCheckValue", shown, required=False)
    protocol = _text(body, "encryptionProtocol", shown, required=False)
    if protocol is None:
        protocol = _text(body, "sslVersion", shown, required=False)
    return AdyenWebhook(
        id=webhook_id,
        url=_text(body, "url", shown) or "",
        type=_text(body, "type", shown) or "",
        active=_flag(body, "active", shown),
        description=_text(body, "description", shown, required=False) or "",
        communication_format=_text(body, "communicationFormat", shown) or "",
        encryption_protocol=protocol,
        filter_type=_text(body, "filterMerchantAccountType", shown, required=False),
        filter_accounts=_texts(body.get("filterMerchantAccounts"), "filterMerchantAccounts", shown),
        include_codes=_texts(settings.get("includeEventCodes"), "includeEventCodes", shown),
        exclude_codes=_texts(settings.get("excludeEventCodes"), "excludeEventCodes", shown),
        check_value=check_value or None,
        certificate_checks_off=tuple(c for c in CERTIFICATE_CHECKS if _flag(body, c, shown, False)),
        has_error=_flag(body, "hasError", shown, False),
    )


@dataclass(frozen=True)
class DesiredAdyenWebhook:
    """The webhook a connection wants at Adyen."""

    url: str
    event_codes: tuple[str, ...]
    description: str  # the ownership marker
    type: str
    company_level: bool
    filter_type: str = "allAccounts"
    filter_accounts: tuple[str, ...] = ()


def create_body(desired: DesiredAdyenWebhook) -> dict[str, Any]:
    """The create request: *inactive*, so nothing is delivered before its HMAC key is published.

    (docs/processors/adyen.md, "Creating a webhook safely").
    """
    body: dict[str, Any] = {
        "url": desired.url,
        "type": desired.type,
        "active": False,
        "communicationFormat": COMMUNICATION_FORMAT,
        "encryptionProtocol": ENCRYPTION_PROTOCOL,
        "description": desired.description,
        "additionalSettings": {"includeEventCodes": list(desired.event_codes)},
    }
    if desired.company_level:
        body["filterMerchantAccountType"] = desired.filter_type
        # ASSUMPTION: with allAccounts, an empty list is accepted (the create schema requires the
        # field, its description calls it "not needed" then; docs/processors/adyen.md, "Webhook fields").
        body["filterMerchantAccounts"] = list(desired.filter_accounts)
    return body


@dataclass(frozen=True)
class Comparison:
    """How an owned webhook differs from the desired one."""

    recreate_because: str | None = None
    patch: Mapping[str, Any] = field(default_factory=dict)
    changed: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        return list(self.changed)


def compare(observed: AdyenWebhook, desired: DesiredAdyenWebhook, *, activate: bool = True) -> Comparison:
    """What to do so ``observed`` serves as ``desired``: recreate it (and why), or PATCH these fields.

    ``activate``: whether an inactive webhook is to be switched on (not while its key is unpublished).
    """
    if observed.type != desired.type:
        return Comparison(recreate_because=f"its type changed ({observed.type} to {desired.type})")
    patch: dict[str, Any] = {}
    changed: list[str] = []
    if observed.url != desired.url:
        patch["url"] = desired.url
        changed.append("URL")
    if observed.description != desired.description:
        patch["description"] = desired.description
        changed.append("ownership marker")
    if observed.communication_format != COMMUNICATION_FORMAT:
        patch["communicationFormat"] = COMMUNICATION_FORMAT
        changed.append("communication format")
    if observed.encryption_protocol == "HTTP":
        patch["encryptionProtocol"] = ENCRYPTION_PROTOCOL
        changed.append("encryption protocol")
    for check in observed.certificate_checks_off:
        patch[check] = False
    if observed.certificate_checks_off:
        changed.append("certificate checks")
    # Adyen lists the codes it sends by default among the included ones, so the list may hold more
    # than procon asked for: what counts is that none asked for is missing or excluded.
    wanted = set(desired.event_codes)
    if not wanted <= set(observed.include_codes) or wanted & set(observed.exclude_codes):
        patch["additionalSettings"] = {"includeEventCodes": list(desired.event_codes)}
        changed.append("events")
    if desired.company_level and (
        (observed.filter_type or "allAccounts") != desired.filter_type
        or set(observed.filter_accounts) != set(desired.filter_accounts)
    ):
        patch["filterMerchantAccountType"] = desired.filter_type
        patch["filterMerchantAccounts"] = list(desired.filter_accounts)
        changed.append("merchant account filter")
    if activate and not observed.active:
        patch["active"] = True
        changed.append("enabled")
    return Comparison(patch=patch, changed=tuple(changed))


def key_changed(observed: AdyenWebhook, published_check_value: str | None) -> bool:
    """Whether the webhook signs with another key than the published one (or with none)."""
    return observed.check_value is None or observed.check_value != published_check_value


def event_codes(events: Sequence[str]) -> tuple[str, ...]:
    """The spec's events as Adyen event codes; ValueError naming what is not one."""
    bad = [e for e in events if not EVENT_CODE.match(e)]
    if bad:
        raise ValueError(
            "not Adyen event codes: "
            + ", ".join(repr(e[:64]) for e in bad[:10])
            + " (event codes are upper case, such as AUTHORISATION or REFUND; Adyen sends its default "
            "codes to every standard webhook, so '*' has no meaning here)"
        )
    return tuple(sorted(set(events)))

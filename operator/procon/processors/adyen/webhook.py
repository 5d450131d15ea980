"""An Adyen webhook configuration in procon's terms: the target, the desired and observed webhook,
and how they compare. Pure: no call is made here.

Ownership: Adyen webhooks have no metadata field, so procon's tag is the
``description``, ``procon/<cluster>/<namespace>/<name>/<uid>``
(docs/processors/adyen.md, "Ownership marker"). A webhook is procon's only if
its description has exactly that shape; a webhook is never adopted by its URL,
because Adyen allows many webhooks at one URL and a foreign one always has a
description of its own.

The HMAC key: Adyen generates it and never shows it again; a webhook's
``hmacKeyCheckValue`` tells which key it has (docs/processors/adyen.md, "HMAC
keys"). Once the key is in the signing Secret, procon appends its check value
to the marker (``...#917A8C``); a webhook whose check value differs from the
one recorded there has had its key changed outside procon, and a webhook at
procon's marker whose record is missing is one whose key was published but
not yet recorded (the create's last step). After the check value comes a
digest of the event codes procon asked for (``...#917A8C#<digest>``): Adyen
lists its own default codes among the included ones, so only this record
shows that a code was dropped from the spec and must be turned off.

What procon restores in place: ``active``, the JSON format, TLS, certificate
checks left on, the event codes it asked for, the merchant-account filter
(company level). What it recreates for: the type, which Adyen cannot change
(docs/processors/adyen.md, "Webhook fields"); the URL, as for Checkout.com (a
webhook at another URL is another receiver, with its own copy of the key);
and the key, when it changed outside procon.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from procon.processors.base import (
    Comparison,
    DesiredWebhook,
    MalformedResponse,
    ObservedWebhook,
    Target,
    WebhookChanges,
)
from procon.reconcile.ownership import CLUSTER, MANAGED_BY, MANAGED_BY_VALUE, NAME, NAMESPACE, UID

if TYPE_CHECKING:
    from procon.api.v1alpha1 import ProcessorConnectionSpec
    from procon.processors.adyen.spec import AdyenOptions

MARKER_PREFIX = "procon/"
# Between the marker and the recorded check value of the published key, and between that and the
# digest of the event codes procon asked for.
CHECK_SEPARATOR = "#"
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
# A check value as Adyen shows it (six hex digits seen); anything else is not recorded or trusted.
CHECK_VALUE = re.compile(r"^[0-9A-Za-z]{1,64}$")
# The digest of the asked-for event codes, as recorded: Adyen lists its default codes among the
# included ones, so only this record tells a code procon asked for earlier from one of Adyen's.
EVENTS_DIGEST = re.compile(r"^[0-9a-f]{12}$")
# ASSUMPTION: Adyen takes descriptions of a few hundred characters (no limit is documented,
# docs/processors/adyen.md, "Ownership marker"); procon's is at most about 430: cluster 63,
# namespace 63, name 253, UID 36, a check value, a 12-digit digest of the event codes.


@dataclass(frozen=True)
class AdyenTarget(Target):
    """The mode (which selects the host), and the account the webhook lives on: its level, as in the
    API's paths (``companies`` or ``merchants``), and its name. Empty when spec.adyen is missing."""

    level: str = "merchants"
    account: str = ""

    @property
    def described(self) -> str:
        return f"{'company' if self.level == 'companies' else 'merchant'} account {self.account}"


@dataclass(frozen=True)
class AdyenDesired(DesiredWebhook):
    """The webhook a connection wants at Adyen; ``events`` are event codes to include."""

    type: str = "standard"
    company_level: bool = False
    filter_type: str = "allAccounts"
    filter_accounts: tuple[str, ...] = ()

    @property
    def marker(self) -> str:
        return marker(self.metadata)

    def create_parameters(self) -> dict[str, Any]:
        return {
            **super().create_parameters(),
            "type": self.type,
            "company_level": self.company_level,
            "filter_type": self.filter_type,
            "filter_accounts": list(self.filter_accounts),
        }


@dataclass(frozen=True)
class AdyenWebhook(ObservedWebhook):
    """A webhook configuration as Adyen reports it, checked field by field. ``events`` are its
    included event codes (Adyen's defaults among them)."""

    type: str = ""
    active: bool = True
    description: str = ""
    communication_format: str = COMMUNICATION_FORMAT
    encryption_protocol: str | None = None
    filter_type: str | None = None
    filter_accounts: tuple[str, ...] = ()
    exclude_codes: tuple[str, ...] = ()
    # Which HMAC key the webhook signs with; None when it has none.
    check_value: str | None = None
    certificate_checks_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdyenChanges(WebhookChanges):
    """The fields to PATCH (Adyen merges them into the configuration), and what they are, in words."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    changed: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        return [*self.changed, *super().describe()]


# --- the ownership marker -------------------------------------------------------------------------


def marker(owner: Mapping[str, str]) -> str:
    """The description that tags a webhook as the connection's (without a recorded check value)."""
    return MARKER_PREFIX + "/".join(owner.get(k, "") for k in (CLUSTER, NAMESPACE, NAME, UID))


def split_description(description: str | None) -> tuple[str, str | None]:
    """(the marker part, the recorded check value or None)."""
    text = description or ""
    base, separator, rest = text.partition(CHECK_SEPARATOR)
    check = rest.partition(CHECK_SEPARATOR)[0]
    return base, (check if separator and CHECK_VALUE.match(check) else None)


def events_digest(codes: Sequence[str]) -> str:
    """What the description records of the event codes procon asked for (not the codes: a
    description is short, and the codes are the spec's to show)."""
    return hashlib.sha256(",".join(sorted(set(codes))).encode()).hexdigest()[:12]


def recorded_events_digest(description: str | None) -> str | None:
    """The digest of the event codes last asked for, as the description records it, or None."""
    parts = (description or "").split(CHECK_SEPARATOR)
    return parts[2] if len(parts) == 3 and EVENTS_DIGEST.match(parts[2]) else None


def owner_of(description: str | None) -> dict[str, str]:
    """The ownership tag a description carries; empty for a webhook procon did not tag."""
    base, _ = split_description(description)
    if not base.startswith(MARKER_PREFIX):
        return {}
    fields = base[len(MARKER_PREFIX) :].split("/")
    if len(fields) != 4 or not all(fields):
        return {}
    return {MANAGED_BY: MANAGED_BY_VALUE, **dict(zip((CLUSTER, NAMESPACE, NAME, UID), fields, strict=True))}


# --- from the spec ------------------------------------------------------------------------------------


def options(spec: ProcessorConnectionSpec) -> AdyenOptions | None:
    block: AdyenOptions | None = getattr(spec, "adyen", None)
    return block


def target(spec: ProcessorConnectionSpec) -> AdyenTarget:
    block = options(spec)
    if block is None:
        return AdyenTarget(mode=spec.mode)
    return AdyenTarget(mode=spec.mode, level=block.level, account=block.account)


def desired(spec: ProcessorConnectionSpec, tag: Mapping[str, str], events: Sequence[str]) -> AdyenDesired:
    block = options(spec)
    company = block is not None and block.level == "companies"
    return AdyenDesired(
        url=spec.webhook.url,
        events=tuple(sorted(events)),
        metadata=dict(tag),
        type=block.webhook_type.value if block else "standard",
        company_level=company,
        filter_type=block.filter_merchant_account_type.value if block and company else "allAccounts",
        filter_accounts=tuple(sorted(block.filter_merchant_accounts)) if block and company else (),
    )


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


# --- from Adyen's answers ---------------------------------------------------------------------------


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
    name (docs/processors/adyen.md, "Hosts and versions").
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
    protocol = _text(body, "encryptionProtocol", shown, required=False)
    if protocol is None:
        protocol = _text(body, "sslVersion", shown, required=False)
    check_value = _text(body, "hmacKeyCheckValue", shown, required=False)
    if check_value and not CHECK_VALUE.match(check_value):
        raise MalformedResponse(f"Adyen's webhook {shown} has an hmacKeyCheckValue that is not one")
    active = _flag(body, "active", shown)
    description = _text(body, "description", shown, required=False) or ""
    return AdyenWebhook(
        id=webhook_id,
        url=_text(body, "url", shown) or "",
        events=_texts(settings.get("includeEventCodes"), "includeEventCodes", shown),
        metadata=owner_of(description),
        status="enabled" if active else "disabled",
        type=_text(body, "type", shown) or "",
        active=active,
        description=description,
        communication_format=_text(body, "communicationFormat", shown) or "",
        encryption_protocol=protocol,
        filter_type=_text(body, "filterMerchantAccountType", shown, required=False),
        filter_accounts=_texts(body.get("filterMerchantAccounts"), "filterMerchantAccounts", shown),
        exclude_codes=_texts(settings.get("excludeEventCodes"), "excludeEventCodes", shown),
        check_value=check_value or None,
        certificate_checks_off=tuple(c for c in CERTIFICATE_CHECKS if _flag(body, c, shown, False)),
    )


# --- to Adyen -------------------------------------------------------------------------------------------


def create_body(wanted: AdyenDesired) -> dict[str, Any]:
    """The create request: *inactive*, so nothing is delivered before its HMAC key is published
    (docs/processors/adyen.md, "Creating a webhook safely")."""
    body: dict[str, Any] = {
        "url": wanted.url,
        "type": wanted.type,
        "active": False,
        "communicationFormat": COMMUNICATION_FORMAT,
        "encryptionProtocol": ENCRYPTION_PROTOCOL,
        "description": wanted.marker,
        "additionalSettings": {"includeEventCodes": list(wanted.events)},
    }
    if wanted.company_level:
        body["filterMerchantAccountType"] = wanted.filter_type
        # ASSUMPTION: with allAccounts, an empty list is accepted (the create schema requires the
        # field, its description calls it "not needed" then; docs/processors/adyen.md, "Webhook fields").
        body["filterMerchantAccounts"] = list(wanted.filter_accounts)
    return body


# --- compared -----------------------------------------------------------------------------------------------


def as_webhook(observed: ObservedWebhook) -> AdyenWebhook:
    if isinstance(observed, AdyenWebhook):
        return observed
    return AdyenWebhook(
        id=observed.id,
        url=observed.url,
        events=observed.events,
        metadata=observed.metadata,
        status=observed.status,
        created=observed.created,
    )


def as_desired(wanted: DesiredWebhook) -> AdyenDesired:
    if isinstance(wanted, AdyenDesired):
        return wanted
    return AdyenDesired(url=wanted.url, events=wanted.events, metadata=wanted.metadata)


def compare(observed: ObservedWebhook, wanted: DesiredWebhook) -> Comparison:
    """Recreate it (and why), PATCH these fields, or keep it as it is."""
    webhook, goal = as_webhook(observed), as_desired(wanted)
    if webhook.type != goal.type:
        return Comparison(recreate_because=f"its type changed ({webhook.type[:64]} to {goal.type})")
    if webhook.url != goal.url:
        return Comparison(recreate_because="its URL changed")
    base, recorded = split_description(webhook.description)
    if webhook.check_value is None:
        return Comparison(recreate_because="it has no HMAC key")
    if recorded is not None and recorded != webhook.check_value:
        return Comparison(recreate_because="its HMAC key was changed outside procon")
    patch: dict[str, Any] = {}
    changed: list[str] = []
    wanted_digest, recorded_digest = events_digest(goal.events), recorded_events_digest(webhook.description)
    asked_otherwise = recorded_digest is not None and recorded_digest != wanted_digest
    if base != goal.marker or recorded is None or asked_otherwise:
        # Record the check value of the key the Secret holds and the codes asked for (the create's
        # last step), bring the marker up to date (the cluster identity changed), or record the
        # codes the spec asks for now (a marker without a record of them, written before procon
        # kept one, is left as it is until it is written for another reason).
        patch["description"] = CHECK_SEPARATOR.join((goal.marker, webhook.check_value, wanted_digest))
        if base != goal.marker:
            changed.append("ownership marker")
        elif recorded is None:
            changed.append("key check value")
    if webhook.communication_format != COMMUNICATION_FORMAT:
        patch["communicationFormat"] = COMMUNICATION_FORMAT
        changed.append("communication format")
    if webhook.encryption_protocol == "HTTP":
        patch["encryptionProtocol"] = ENCRYPTION_PROTOCOL
        changed.append("encryption protocol")
    for check in webhook.certificate_checks_off:
        patch[check] = False
    if webhook.certificate_checks_off:
        changed.append("certificate checks")
    # Adyen lists the codes it sends by default among the included ones, so the list may hold more
    # than procon asked for: what counts is that none asked for is missing or excluded, and that
    # the codes asked for are the spec's (a code removed from the spec is turned off by sending
    # the new list; docs/processors/adyen.md, "Event codes").
    wanted_codes = set(goal.events)
    missing = not wanted_codes <= set(webhook.events) or bool(wanted_codes & set(webhook.exclude_codes))
    if asked_otherwise or missing:
        patch["additionalSettings"] = {"includeEventCodes": list(goal.events)}
        changed.append("events")
    if goal.company_level and (
        (webhook.filter_type or "allAccounts") != goal.filter_type
        or set(webhook.filter_accounts) != set(goal.filter_accounts)
    ):
        patch["filterMerchantAccountType"] = goal.filter_type
        patch["filterMerchantAccounts"] = list(goal.filter_accounts)
        changed.append("merchant account filter")
    if not webhook.active:
        patch["active"] = True
        changed.append("enabled")
    if not patch:
        return Comparison()
    return Comparison(changes=AdyenChanges(fields=patch, changed=tuple(changed)))

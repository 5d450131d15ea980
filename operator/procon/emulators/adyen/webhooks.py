"""Webhook configurations on the wire: request validation, the ``Webhook`` object, pages.

Pure functions over plain data; ``app`` calls them under the state's lock. The
fields, their types, defaults and which are required come from the spec's
create and update schemas (docs/processors/adyen.md, "Webhook fields"); what
an unknown or wrong value gets is the emulator's choice where no sample was
found (marked ASSUMPTION).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from procon.emulators.adyen import errors
from procon.emulators.adyen.errors import InvalidField
from procon.emulators.adyen.state import AdyenSettings, Choice, Environment, Level, Webhook

COMMUNICATION_FORMATS = frozenset({"http", "json", "soap"})
ENCRYPTION_PROTOCOLS = frozenset({"TLSv1.3", "TLSv1.2", "HTTP"})
PLAIN_HTTP = "HTTP"  # "only allowed on Test environment"
DEFAULT_ENCRYPTION_PROTOCOL = "TLSv1.2"
NETWORK_TYPES = frozenset({"public", "local"})
FILTER_TYPES = frozenset({"allAccounts", "includeAccounts", "excludeAccounts"})
ALL_ACCOUNTS = "allAccounts"
USERNAME_MAX = 255
# The values the create schemas list for ``type`` (the response schema adds terminal-api-notification).
WEBHOOK_TYPES = frozenset(
    {
        "standard",
        "account-settings-notification",
        "banktransfer-notification",
        "boletobancario-notification",
        "directdebit-notification",
        "ach-notification-of-change-notification",
        "direct-debit-notice-of-change-notification",
        "pending-notification",
        "ideal-notification",
        "ideal-pending-notification",
        "report-notification",
        "rreq-notification",
        "terminal-settings",
        "terminal-boarding",
    }
)
# The endpoint ports the docs allow, by environment and scheme.
ALLOWED_PORTS: dict[tuple[Environment, str], frozenset[int]] = {
    (Environment.TEST, "http"): frozenset({80, 8080, 8888}),
    (Environment.TEST, "https"): frozenset({443, 8443, 8843}),
    (Environment.LIVE, "https"): frozenset({443, 8443, 8843}),
}
# ASSUMPTION: the live alias, by analogy with the test one seen in captured answers.
CERTIFICATE_ALIAS = {
    Environment.TEST: "signed-test.adyen.com_2024",
    Environment.LIVE: "signed-live.adyen.com_2024",
}
BOOLEAN_FIELDS = (
    "acceptsExpiredCertificate",
    "acceptsSelfSignedCertificate",
    "acceptsUntrustedRootCertificate",
    "populateSoapActionHeader",
)
COMMON_FIELDS = frozenset(
    {
        "url",
        "active",
        "communicationFormat",
        "description",
        "username",
        "password",
        "encryptionProtocol",
        "networkType",
        "additionalSettings",
        *BOOLEAN_FIELDS,
    }
)
COMPANY_FIELDS = frozenset({"filterMerchantAccountType", "filterMerchantAccounts"})
# v1 names the encryption protocol field sslVersion (same values).
V1_ENCRYPTION_FIELD = "sslVersion"
V3_ENCRYPTION_FIELD = "encryptionProtocol"

# Event codes ``POST …/test`` accepts, by webhook type.
TEST_TYPES: dict[str, frozenset[str]] = {
    "standard": frozenset(
        {
            "AUTHORISATION",
            "CHARGEBACK_REVERSED",
            "ORDER_CLOSED",
            "ORDER_OPENED",
            "PAIDOUT_REVERSED",
            "PAYOUT_THIRDPARTY",
            "REFUNDED_REVERSED",
            "REFUND_WITH_DATA",
            "REPORT_AVAILABLE",
            "CUSTOM",
        }
    ),
    "banktransfer-notification": frozenset({"PENDING"}),
    "pending-notification": frozenset({"PENDING"}),
    "report-notification": frozenset({"REPORT_AVAILABLE"}),
    "ideal-notification": frozenset({"AUTHORISATION"}),
}
CUSTOM = "CUSTOM"
TEST_MERCHANTS_MAX = 20


@dataclass(frozen=True)
class Context:
    """What validation needs to know besides the body: where the webhook lives and its company's merchants."""

    level: Level
    environment: Environment
    account: str
    company_merchants: frozenset[str]
    settings: AdyenSettings
    version: str = "v3"


@dataclass(frozen=True)
class Parsed:
    """A validated create or update: config fields to set, and the password if one was sent."""

    changes: dict[str, Any]
    password: str | None
    password_sent: bool


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def to_v3(body: Mapping[str, Any], version: str) -> dict[str, Any]:
    """A request body in v3 names (v1's ``sslVersion`` is v3's ``encryptionProtocol``)."""
    data = dict(body)
    if version == "v1":
        data.pop(V3_ENCRYPTION_FIELD, None)  # not a v1 field
        if V1_ENCRYPTION_FIELD in data:
            data[V3_ENCRYPTION_FIELD] = data.pop(V1_ENCRYPTION_FIELD)
    return data


def _check_url(value: Any, context: Context, problems: list[InvalidField]) -> None:
    if not isinstance(value, str) or not value:
        problems.append(InvalidField("url", _text(value), "Must be a URL"))
        return
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        problems.append(InvalidField("url", value, "Invalid port"))
        return
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(InvalidField("url", value, "Must be an absolute http or https URL"))
        return
    if not context.settings.check_endpoint_ports:
        return
    allowed = ALLOWED_PORTS.get((context.environment, parts.scheme))
    if allowed is None:
        problems.append(InvalidField("url", value, "Only HTTPS is allowed on the live environment"))
        return
    effective = port if port is not None else (443 if parts.scheme == "https" else 80)
    if effective not in allowed:
        ports = ", ".join(str(p) for p in sorted(allowed))
        problems.append(InvalidField("url", value, f"Port must be one of {ports} for {parts.scheme}"))


def _check_bool(name: str, value: Any, problems: list[InvalidField], *, lenient: bool = False) -> Any:
    if isinstance(value, bool):
        return value
    # ASSUMPTION: ``active`` as the string "true"/"false" is accepted, as Adyen's commercetools
    # integration sends it that way; other booleans must be JSON booleans.
    if lenient and value in ("true", "false"):
        return value == "true"
    problems.append(InvalidField(name, _text(value), "Must be a boolean"))
    return None


def _check_choice(name: str, value: Any, allowed: frozenset[str], problems: list[InvalidField]) -> None:
    if not isinstance(value, str) or value not in allowed:
        problems.append(InvalidField(name, _text(value), f"Must be one of {', '.join(sorted(allowed))}"))


def _check_strings(name: str, value: Any, problems: list[InvalidField]) -> bool:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(InvalidField(name, _text(value), "Must be a list of strings"))
        return False
    return True


def _additional_settings(value: Any, problems: list[InvalidField]) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        problems.append(InvalidField("additionalSettings", _text(value), "Must be an object"))
        return None
    include = value.get("includeEventCodes")
    properties = value.get("properties")
    result: dict[str, Any] = {"includeEventCodes": [], "excludeEventCodes": [], "properties": {}}
    if include is not None and _check_strings("additionalSettings.includeEventCodes", include, problems):
        # ASSUMPTION: event codes are not checked against a list: Adyen adds codes, and documents more
        # than its enum holds.
        result["includeEventCodes"] = list(dict.fromkeys(include))
    if properties is not None:
        if not isinstance(properties, Mapping) or not all(isinstance(v, bool) for v in properties.values()):
            problems.append(
                InvalidField("additionalSettings.properties", _text(properties), "Must map names to booleans")
            )
        else:
            result["properties"] = dict(properties)
    return result


def parse(body: Any, context: Context, *, creating: bool) -> Parsed:
    """Validate a create or update body; every problem is reported at once in one 422."""
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    data = to_v3(body, context.version)
    # ASSUMPTION: null is taken as "not sent", and fields of no schema (the filters at merchant level
    # among them) are ignored rather than refused.
    data = {k: v for k, v in data.items() if v is not None}
    problems: list[InvalidField] = []
    changes: dict[str, Any] = {}
    allowed = COMMON_FIELDS | (COMPANY_FIELDS if context.level is Level.COMPANY else frozenset())

    if creating:
        required = ["url", "active", "communicationFormat", "type"]
        if context.level is Level.COMPANY:
            required.append("filterMerchantAccountType")
            # filterMerchantAccounts is required by the schema yet "not needed" for allAccounts:
            # the emulator accepts it left out there (docs/processors/adyen.md, "Webhook fields").
            if data.get("filterMerchantAccountType") != ALL_ACCOUNTS:
                required.append("filterMerchantAccounts")
        for name in required:
            if name not in data:
                problems.append(InvalidField(name, "", "Required field is missing"))
        if "type" in data:
            _check_choice("type", data["type"], WEBHOOK_TYPES, problems)
            changes["type"] = data["type"]
    elif "type" in data and context.settings.patch_type is Choice.REJECT:
        problems.append(InvalidField("type", _text(data["type"]), "The webhook type cannot be changed"))

    for name, value in data.items():
        if name not in allowed:
            continue
        if name == "url":
            _check_url(value, context, problems)
            changes[name] = value
        elif name == "active":
            changes[name] = _check_bool(name, value, problems, lenient=True)
        elif name in BOOLEAN_FIELDS:
            changes[name] = _check_bool(name, value, problems)
        elif name == "communicationFormat":
            _check_choice(name, value, COMMUNICATION_FORMATS, problems)
            changes[name] = value
        elif name == "encryptionProtocol":
            field_name = V1_ENCRYPTION_FIELD if context.version == "v1" else name
            _check_choice(field_name, value, ENCRYPTION_PROTOCOLS, problems)
            if value == PLAIN_HTTP and context.environment is Environment.LIVE:
                problems.append(
                    InvalidField(field_name, value, "HTTP is only allowed on the test environment")
                )
            changes[name] = value
        elif name == "networkType":
            _check_choice(name, value, NETWORK_TYPES, problems)
            changes[name] = value
        elif name in ("description", "username", "password"):
            if not isinstance(value, str):
                problems.append(InvalidField(name, _text(value), "Must be a string"))
            elif name == "username" and len(value) > USERNAME_MAX:
                problems.append(InvalidField(name, value[:20] + "...", f"At most {USERNAME_MAX} characters"))
            elif name != "password":
                changes[name] = value
        elif name == "filterMerchantAccountType":
            _check_choice(name, value, FILTER_TYPES, problems)
            changes[name] = value
        elif name == "filterMerchantAccounts":
            if _check_strings(name, value, problems):
                # ASSUMPTION: the named merchant accounts must be the company's.
                unknown = [m for m in value if m not in context.company_merchants]
                if unknown:
                    problems.append(
                        InvalidField(name, ", ".join(unknown), "Unknown merchant account for this company")
                    )
                changes[name] = list(dict.fromkeys(value))
        elif name == "additionalSettings":
            changes[name] = _additional_settings(value, problems)
    if problems:
        raise errors.validation(problems)
    password = data.get("password")
    return Parsed(changes, password if isinstance(password, str) else None, "password" in data)


def new_config(parsed: Parsed, context: Context, now: float | None = None) -> dict[str, Any]:
    """A created webhook's stored fields: what was sent, and Adyen's defaults for the rest."""
    stamp = int((time.time() if now is None else now) * 1000)
    config: dict[str, Any] = {
        # Adyen fills in a description when none is sent: "Webhook for <account> - <code>".
        "description": f"Webhook for {context.account} - {stamp}",
        "username": "",
        "encryptionProtocol": DEFAULT_ENCRYPTION_PROTOCOL,
        "acceptsExpiredCertificate": False,
        "acceptsSelfSignedCertificate": False,
        "acceptsUntrustedRootCertificate": False,
        "populateSoapActionHeader": False,
        "networkType": "public",
        "additionalSettings": {"includeEventCodes": [], "excludeEventCodes": [], "properties": {}},
    }
    config.update(parsed.changes)
    if context.level is Level.COMPANY and config.get("filterMerchantAccountType") == ALL_ACCOUNTS:
        config.pop("filterMerchantAccounts", None)
    return config


def apply_update(webhook: Webhook, parsed: Parsed) -> None:
    """Merge an update: only the fields sent change (``type`` never does)."""
    changes = {k: v for k, v in parsed.changes.items() if k != "type"}
    webhook.config.update(changes)
    if webhook.config.get("filterMerchantAccountType") == ALL_ACCOUNTS:
        webhook.config.pop("filterMerchantAccounts", None)
    if parsed.password_sent:
        # ASSUMPTION: an empty password removes it (hasPassword false).
        webhook.password = parsed.password or None


def account_path(level: Level, account: str) -> str:
    return f"{'companies' if level is Level.COMPANY else 'merchants'}/{account}"


def to_api(webhook: Webhook, base: str) -> dict[str, Any]:
    """The ``Webhook`` object; ``base`` is the scheme, host and version of the request (``…/v3``).

    The password is never shown, only ``hasPassword``; ``hmacKeyCheckValue`` is absent without a key.
    """
    where = webhook.where
    account_href = f"{base}/{account_path(where.level, where.account)}"
    href = f"{account_href}/webhooks/{webhook.id}"
    config = dict(webhook.config)
    body: dict[str, Any] = {"id": webhook.id, **config}
    body["additionalSettings"] = {
        "includeEventCodes": list(config["additionalSettings"].get("includeEventCodes", [])),
        "excludeEventCodes": list(config["additionalSettings"].get("excludeEventCodes", [])),
        "properties": dict(config["additionalSettings"].get("properties", {})),
    }
    body["hasPassword"] = webhook.password is not None
    body["hasError"] = False
    body["certificateAlias"] = CERTIFICATE_ALIAS[where.environment]
    # ASSUMPTION: the account reference is the account's id.
    body["accountReference"] = where.account
    if webhook.check_value is not None:
        body["hmacKeyCheckValue"] = webhook.check_value
    links: dict[str, Any] = {
        "self": {"href": href},
        "generateHmac": {"href": f"{href}/generateHmac"},
        "testWebhook": {"href": f"{href}/test"},
    }
    links[where.level.value] = {"href": account_href}
    body["_links"] = links
    if base.endswith("/v1"):
        body[V1_ENCRYPTION_FIELD] = body.pop(V3_ENCRYPTION_FIELD)
    return body


# Pages


PAGE_SIZE_DEFAULT = 10
PAGE_SIZE_MAX = 100


def _positive_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        # ASSUMPTION: a page number or size that is not a positive integer is a validation error.
        raise errors.validation([InvalidField(name, raw, "Must be a positive integer")])
    return value


def page_request(query: Mapping[str, str], settings: AdyenSettings) -> tuple[int, int]:
    """``(pageNumber, pageSize)``: 1-based, default size 10, at most 100 (refused or clamped above)."""
    number = _positive_int("pageNumber", query.get("pageNumber"), 1)
    size = _positive_int("pageSize", query.get("pageSize"), PAGE_SIZE_DEFAULT)
    if size > PAGE_SIZE_MAX:
        if settings.page_size_over_max is Choice.CLAMP:
            size = PAGE_SIZE_MAX
        else:
            raise errors.validation([InvalidField("pageSize", str(size), f"Must be at most {PAGE_SIZE_MAX}")])
    return number, size


def page(items: list[dict[str, Any]], number: int, size: int, href: str, account: str) -> dict[str, Any]:
    """A ``ListWebhooksResponse``: the page's items, true totals, links (``next``/``prev`` when they exist).

    A page past the end is a 200 with ``data: []`` and the true totals.
    """
    total = len(items)
    pages = math.ceil(total / size)

    def link(n: int) -> dict[str, str]:
        return {"href": f"{href}?pageNumber={n}&pageSize={size}"}

    links: dict[str, Any] = {"first": link(1), "last": link(max(pages, 1)), "self": link(number)}
    if number < pages:
        links["next"] = link(number + 1)
    if number > 1:
        links["prev"] = link(min(number - 1, max(pages, 1)))
    start = (number - 1) * size
    return {
        "_links": links,
        "itemsTotal": total,
        "pagesTotal": pages,
        "data": items[start : start + size],
        "accountReference": account,
    }


# Tests of a webhook


@dataclass(frozen=True)
class TestRequest:
    types: tuple[str, ...]
    merchant_ids: tuple[str, ...]
    notification: dict[str, Any] | None


def parse_test(body: Any, webhook: Webhook, covered_merchants: list[str]) -> TestRequest:
    """A ``POST …/test`` body: ``types`` allowed for the webhook's type, ``merchantIds`` (company level)."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise errors.malformed_body()
    problems: list[InvalidField] = []
    types = body.get("types")
    allowed = TEST_TYPES.get(str(webhook.config.get("type")), frozenset())
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        problems.append(InvalidField("types", _text(types), "Must be a non-empty list of event codes"))
        types = []
    else:
        # ASSUMPTION: a webhook type without a documented list of test codes can be tested with none.
        wrong = [t for t in types if t not in allowed]
        if wrong:
            problems.append(InvalidField("types", ", ".join(wrong), "Not allowed for this webhook type"))
    notification = body.get("notification")
    if CUSTOM in types and not isinstance(notification, Mapping):
        problems.append(InvalidField("notification", _text(notification), "Required for CUSTOM"))
    merchants = covered_merchants
    if webhook.where.level is Level.COMPANY and body.get("merchantIds") is not None:
        asked = body.get("merchantIds")
        if not isinstance(asked, list) or not all(isinstance(m, str) for m in asked):
            problems.append(InvalidField("merchantIds", _text(asked), "Must be a list of strings"))
        elif len(asked) > TEST_MERCHANTS_MAX:
            problems.append(InvalidField("merchantIds", str(len(asked)), f"At most {TEST_MERCHANTS_MAX}"))
        else:
            outside = [m for m in asked if m not in covered_merchants]
            if outside:
                # ASSUMPTION: merchants the webhook does not cover cannot be tested.
                problems.append(InvalidField("merchantIds", ", ".join(outside), "Not covered by the webhook"))
            merchants = list(dict.fromkeys(asked))
    if problems:
        raise errors.validation(problems)
    return TestRequest(
        tuple(dict.fromkeys(types)),
        tuple(merchants),
        dict(notification) if isinstance(notification, Mapping) else None,
    )


def covered_merchants(webhook: Webhook, company_merchants: tuple[str, ...]) -> list[str]:
    """The merchant accounts a webhook sends events for: its own, or its company's after the filter."""
    if webhook.where.level is Level.MERCHANT:
        return [webhook.where.account]
    kind = webhook.config.get("filterMerchantAccountType", ALL_ACCOUNTS)
    named = set(webhook.config.get("filterMerchantAccounts", []))
    if kind == "includeAccounts":
        return [m for m in company_merchants if m in named]
    if kind == "excludeAccounts":
        return [m for m in company_merchants if m not in named]
    return list(company_merchants)

"""The fixture format the Adyen emulator starts from (a YAML file or a mapping)::

    companies:
      - id: ProconDemoCompany                 # company account id (also the credential's companyName)
        merchants: [ProconDemoECOM, ProconDemoPOS]
    credentials:
      - username: ws_100001@Company.ProconDemoCompany
        api_key: AQE...                       # what X-API-Key carries
        environment: test                     # or live
        company: ProconDemoCompany            # a company-level credential; or instead:
        # merchant: ProconDemoECOM            # a merchant-level credential
        merchants: [ProconDemoECOM]           # company level: associated merchant accounts (omitted: all)
        roles:                                # as /me shows them (any spelling)
          - Management API - Webhooks read and write
        active: true                          # optional
        id: S2-...                            # optional: derived from the username
        client_key: test_...                  # optional: derived
        description: ...                      # optional
    settings:                                 # optional; see AdyenSettings
      default_environment: any                # test | live: what an IP-address host serves
      me_without_management_role_status: 403
      unreachable_account_status: 422         # or 403
      page_size_over_max: reject              # or clamp
      patch_type: ignore                      # or reject
      wrap_invalid_fields: false
      webhook_limit: null
      rate_limit_status: 429                  # or 500
      check_endpoint_ports: true
      generate_hmac_failures_after_create: 0
      newest_first: false

Mistakes (unknown fields, a merchant in two companies, a key declared twice)
raise ``FixtureError`` naming where they are, because a typo in a fixture
otherwise shows up as a puzzling 401 much later. Keys are never echoed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from procon.emulators.adyen.state import (
    AdyenSettings,
    AdyenState,
    Choice,
    Company,
    Credential,
    Environment,
    HostEnvironment,
    Level,
)
from procon.emulators.base import FixtureSource
from procon.emulators.fixtures import FixtureError, choice, integer, mapping, read_fixture, strings

_TOP_FIELDS = {"companies", "credentials", "settings"}
_COMPANY_FIELDS = {"id", "merchants"}
_CREDENTIAL_FIELDS = {
    "id",
    "username",
    "api_key",
    "environment",
    "company",
    "merchant",
    "merchants",
    "roles",
    "active",
    "client_key",
    "description",
    "allowed_ip_addresses",
}
SETTINGS_FIELDS = {
    "default_environment",
    "me_without_management_role_status",
    "unreachable_account_status",
    "page_size_over_max",
    "patch_type",
    "wrap_invalid_fields",
    "webhook_limit",
    "rate_limit_status",
    "check_endpoint_ports",
    "generate_hmac_failures_after_create",
    "newest_first",
}
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]{3,80}$")
_CREDENTIAL_ID = re.compile(r"^S2-[0-9A-F]{6,32}$")
MIN_KEY_LENGTH = 16


def _strings(value: Any, where: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(strings(value, where)))


def _account_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        raise FixtureError(f"{where}: expected an account id like ProconDemoECOM")
    return value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


def _company(data: Any, where: str) -> Company:
    fields = mapping(data, where, _COMPANY_FIELDS)
    merchants = _strings(fields.get("merchants"), f"{where}.merchants")
    for index, merchant in enumerate(merchants):
        _account_id(merchant, f"{where}.merchants[{index}]")
    return Company(id=_account_id(fields.get("id"), f"{where}.id"), merchants=merchants)


def _credential(data: Any, where: str, companies: Mapping[str, Company]) -> Credential:
    fields = mapping(data, where, _CREDENTIAL_FIELDS)
    username, api_key = fields.get("username"), fields.get("api_key")
    if not isinstance(username, str) or not username.startswith("ws"):
        raise FixtureError(f"{where}.username: expected an API credential username like ws_123456@Company.X")
    if not isinstance(api_key, str) or len(api_key) < MIN_KEY_LENGTH:
        raise FixtureError(f"{where}.api_key: expected a key of at least {MIN_KEY_LENGTH} characters")
    environment = choice(Environment, fields.get("environment"), f"{where}.environment", Environment.TEST)
    company_id, merchant_id = fields.get("company"), fields.get("merchant")
    if (company_id is None) == (merchant_id is None):
        raise FixtureError(
            f"{where}: give exactly one of company (company level) and merchant (merchant level)"
        )
    merchants = _strings(fields.get("merchants"), f"{where}.merchants")
    if company_id is not None:
        company = companies.get(_account_id(company_id, f"{where}.company"))
        if company is None:
            raise FixtureError(f"{where}.company: {company_id} is not among the companies")
        outside = sorted(set(merchants) - set(company.merchants))
        if outside:
            raise FixtureError(
                f"{where}.merchants: {', '.join(outside)} not merchant accounts of {company.id}"
            )
        level, account = Level.COMPANY, company.id
    else:
        merchant = _account_id(merchant_id, f"{where}.merchant")
        found = next((c for c in companies.values() if merchant in c.merchants), None)
        if found is None:
            raise FixtureError(f"{where}.merchant: {merchant} is no company's merchant account")
        if merchants:
            raise FixtureError(f"{where}.merchants: only company-level credentials have associated merchants")
        level, account, company = Level.MERCHANT, merchant, found
    credential_id = fields.get("id") or "S2-" + _digest(username)[:14]
    if not isinstance(credential_id, str) or not _CREDENTIAL_ID.match(credential_id):
        raise FixtureError(f"{where}.id: expected a credential id like S2-78712F343C575E")
    active = fields.get("active", True)
    if not isinstance(active, bool):
        raise FixtureError(f"{where}.active: expected true or false")
    # The client key's prefix is the environment's (test_ seen; live_ assumed).
    client_key = fields.get("client_key") or f"{environment.value}_{_digest('client:' + username)[:32]}"
    description = fields.get("description") or ""
    if not isinstance(client_key, str) or not isinstance(description, str):
        raise FixtureError(f"{where}: client_key and description must be strings")
    return Credential(
        id=credential_id,
        username=username,
        api_key=api_key,
        environment=environment,
        level=level,
        account=account,
        company=company.id,
        roles=_strings(fields.get("roles"), f"{where}.roles"),
        merchants=merchants,
        active=active,
        client_key=client_key,
        description=description,
        allowed_ip_addresses=_strings(fields.get("allowed_ip_addresses"), f"{where}.allowed_ip_addresses"),
    )


def parse_companies(data: Any, known: Mapping[str, Company] | None = None) -> dict[str, Company]:
    """The ``companies`` list (added to ``known``), checked for repeated ids and shared merchants."""
    result = dict(known or {})
    if data is None:
        return result
    if not isinstance(data, list):
        raise FixtureError("companies: expected a list")
    owners = {m: c.id for c in result.values() for m in c.merchants}
    for index, item in enumerate(data):
        company = _company(item, f"companies[{index}]")
        if company.id in result:
            raise FixtureError(f"companies[{index}].id: {company.id} is declared twice")
        for merchant in company.merchants:
            if merchant in owners:
                raise FixtureError(
                    f"companies[{index}].merchants: {merchant} already belongs to {owners[merchant]}"
                )
            owners[merchant] = company.id
        result[company.id] = company
    return result


def parse_credentials(
    data: Any, companies: Mapping[str, Company], known: tuple[Credential, ...] = ()
) -> tuple[Credential, ...]:
    """The ``credentials`` list, checked for repeated ids, usernames and keys (also against ``known``)."""
    if not isinstance(data, list) or not data:
        raise FixtureError("credentials: expected a non-empty list")
    credentials = tuple(
        _credential(item, f"credentials[{index}]", companies) for index, item in enumerate(data)
    )
    ids = {c.id for c in known}
    names = {c.username for c in known}
    keys = {c.api_key for c in known}
    for index, credential in enumerate(credentials):
        where = f"credentials[{index}]"
        if credential.id in ids or credential.username in names:
            raise FixtureError(f"{where}: {credential.username} ({credential.id}) is declared twice")
        if credential.api_key in keys:
            raise FixtureError(f"{where}.api_key: the same key is declared twice")
        ids.add(credential.id)
        names.add(credential.username)
        keys.add(credential.api_key)
    return credentials


def parse_settings(data: Any, base: AdyenSettings | None = None) -> AdyenSettings:
    """Settings from a mapping; fields it leaves out keep ``base``'s values (defaults if None)."""
    base = base or AdyenSettings()
    if data is None:
        return base
    fields = mapping(data, "settings", SETTINGS_FIELDS)
    values: dict[str, Any] = {}
    for name in (
        "me_without_management_role_status",
        "unreachable_account_status",
        "rate_limit_status",
        "generate_hmac_failures_after_create",
    ):
        if name in fields:
            values[name] = integer(fields[name], f"settings.{name}")
    if "webhook_limit" in fields:
        values["webhook_limit"] = integer(fields["webhook_limit"], "settings.webhook_limit", optional=True)
    for name in ("wrap_invalid_fields", "check_endpoint_ports", "newest_first"):
        if name in fields:
            if not isinstance(fields[name], bool):
                raise FixtureError(f"settings.{name}: expected true or false")
            values[name] = fields[name]
    if "default_environment" in fields:
        values["default_environment"] = choice(
            HostEnvironment,
            fields["default_environment"],
            "settings.default_environment",
            base.default_environment,
        )
    for name in ("page_size_over_max", "patch_type"):
        if name in fields:
            values[name] = choice(Choice, fields[name], f"settings.{name}", getattr(base, name))
    try:
        return AdyenSettings(**{**_settings_values(base), **values})
    except ValueError as error:
        raise FixtureError(f"settings: {error}") from None


def _settings_values(settings: AdyenSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in SETTINGS_FIELDS}


def parse_fixture(data: Any) -> tuple[dict[str, Company], tuple[Credential, ...], AdyenSettings]:
    """Check a decoded fixture and turn it into companies, credentials and settings."""
    fields = mapping(data, "fixture", _TOP_FIELDS)
    companies = parse_companies(fields.get("companies"))
    if not companies:
        raise FixtureError("companies: expected a non-empty list")
    credentials = parse_credentials(fields.get("credentials"), companies)
    return companies, credentials, parse_settings(fields.get("settings"))


def load_fixture(source: FixtureSource) -> tuple[dict[str, Company], tuple[Credential, ...], AdyenSettings]:
    """A fixture from a YAML file path or an already decoded mapping."""
    return read_fixture(source, parse_fixture)


def state_from_fixture(source: FixtureSource) -> AdyenState:
    companies, credentials, settings = load_fixture(source)
    return AdyenState(companies.values(), credentials, settings)

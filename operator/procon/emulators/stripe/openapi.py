"""What Stripe's OpenAPI spec says about the requests procon makes, for the emulator's data and its tests.

The spec is the one stripe-mock embeds (``hack/stripe-mock``, built by
:func:`procon.emulators.stripe.stripe_mock.ensure_stripe_mock`), so the Stripe emulator's value
lists and the parameters its endpoints accept can be held to the same schema
that stripe-mock validates the driver's requests against.

``python -m procon.emulators.stripe.openapi`` rewrites the emulator's value lists from
the spec; the contract test fails while they differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

WEBHOOK_ENDPOINTS = "/v1/webhook_endpoints"
FORM = "application/x-www-form-urlencoded"
DATA_DIR = Path(__file__).resolve().parent / "data"
EVENTS_FILE = "stripe-enabled-events.txt"
API_VERSIONS_FILE = "stripe-webhook-api-versions.txt"


@dataclass(frozen=True)
class StripeSpec:
    """Stripe's OpenAPI spec (``spec3.json``), read for the few facts procon needs."""

    document: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> StripeSpec:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    @property
    def version(self) -> str:
        """The API version the spec describes, e.g. ``2026-08-26.dahlia``."""
        return str(self.document["info"]["version"])

    def _operation(self, method: str, path: str) -> Mapping[str, Any]:
        operation: Mapping[str, Any] = self.document["paths"][path][method.lower()]
        return operation

    def query_parameters(self, path: str) -> frozenset[str]:
        """The query parameters a GET of ``path`` accepts; anything else is refused."""
        parameters = self._operation("GET", path).get("parameters", [])
        return frozenset(p["name"] for p in parameters if p["in"] == "query")

    def form_schema(self, method: str, path: str) -> Mapping[str, Any]:
        body = self._operation(method, path).get("requestBody", {})
        schema: Mapping[str, Any] = body.get("content", {}).get(FORM, {}).get("schema", {})
        return schema

    def form_parameters(self, method: str, path: str) -> frozenset[str]:
        return frozenset(self.form_schema(method, path).get("properties", {}))

    def required_form_parameters(self, method: str, path: str) -> frozenset[str]:
        """The parameters a POST to ``path`` must carry; an empty POST is refused only if there are some."""
        return frozenset(self.form_schema(method, path).get("required", ()))

    def has_operation(self, method: str, path: str) -> bool:
        return method.lower() in self.document["paths"].get(path, {})

    @cached_property
    def enabled_events(self) -> tuple[str, ...]:
        """Every value ``enabled_events`` accepts at create, ``*`` included, in the spec's order."""
        schema = self.form_schema("POST", WEBHOOK_ENDPOINTS)["properties"]["enabled_events"]
        return tuple(schema["items"]["enum"])

    @cached_property
    def webhook_api_versions(self) -> tuple[str, ...]:
        """Every value ``api_version`` accepts at create, oldest first, as the spec lists them."""
        return tuple(self.form_schema("POST", WEBHOOK_ENDPOINTS)["properties"]["api_version"]["enum"])


def data_files(spec: StripeSpec) -> dict[str, str]:
    """The emulator's value-list files as the spec has them (file name -> text)."""
    return {
        EVENTS_FILE: "".join(f"{event}\n" for event in spec.enabled_events),
        API_VERSIONS_FILE: "".join(f"{version}\n" for version in spec.webhook_api_versions),
    }


def main() -> int:
    """Rewrite the emulator's value lists from the spec of the pinned stripe-mock."""
    from procon.emulators.stripe.stripe_mock import ensure_stripe_mock

    tool = ensure_stripe_mock()
    spec = StripeSpec.load(tool.spec)
    for name, text in data_files(spec).items():
        (DATA_DIR / name).write_text(text, encoding="utf-8")
        count = text.count("\n")
        print(f"{DATA_DIR / name}: {count} values from stripe-mock {tool.version} ({spec.version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

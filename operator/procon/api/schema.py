"""The building blocks of the API's models, shared by ``v1alpha1`` and every processor's spec block.

Kept apart from :mod:`procon.api.v1alpha1` because that module composes the
spec from the processor registry: a processor's ``spec.<name>`` block is
declared in its own package (``procon.processors.<name>.spec``) with these
pieces, and must be importable before the spec that embeds it exists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def cel(
    rule: str, message: str, *, reason: str | None = None, field_path: str | None = None
) -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry, with a message a person understands."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if reason:
        entry["reason"] = reason
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Mode(StrEnum):
    LIVE = "live"
    TEST = "test"

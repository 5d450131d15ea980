"""Fixture loading shared by the emulators: what an emulator's state starts from, in YAML or a mapping.

Each emulator documents its own fixture's shape and parses it (its
``fixture`` module); the reading of the file and the checks every shape
needs live here. Mistakes raise ``FixtureError`` naming where they are,
because a typo in a fixture otherwise shows up as a puzzling 401 much later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from procon.emulators.base import FixtureSource

Parsed = TypeVar("Parsed")
Choice = TypeVar("Choice", bound=Enum)


class FixtureError(ValueError):
    """The fixture does not have the documented shape."""


def mapping(value: Any, where: str, fields: set[str]) -> Mapping[str, Any]:
    """``value`` as a mapping holding no field outside ``fields``."""
    if not isinstance(value, Mapping):
        raise FixtureError(f"{where}: expected a mapping")
    unknown = sorted(set(value) - fields)
    if unknown:
        raise FixtureError(f"{where}: unknown fields {', '.join(map(str, unknown))}")
    return value


def strings(value: Any, where: str) -> list[str]:
    """A list of strings; an absent one is empty."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FixtureError(f"{where}: expected a list of strings")
    return value


def integer(value: Any, where: str, *, optional: bool = False) -> int | None:
    """An integer (not a boolean); None too when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise FixtureError(f"{where}: expected an integer{' or null' if optional else ''}")
    return value


def choice(enum: type[Choice], value: Any, where: str, default: Choice) -> Choice:
    """One of ``enum``'s values; ``default`` when absent."""
    if value is None:
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum)
        raise FixtureError(f"{where}: expected one of {allowed}, not {value!r}") from None


def read_fixture(source: FixtureSource, parse: Callable[[Any], Parsed]) -> Parsed:
    """``parse`` applied to a fixture from a YAML file path or an already decoded mapping."""
    if isinstance(source, Mapping):
        return parse(source)
    path = Path(source)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FixtureError(f"cannot read fixture {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise FixtureError(f"{path} is not valid YAML: {error}") from None
    try:
        return parse(data)
    except FixtureError as error:
        raise FixtureError(f"{path}: {error}") from None

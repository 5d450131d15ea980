"""Which emulators there are: every subpackage of ``procon.emulators``, found without naming it.

Adding an emulator needs no edit outside its own package: the package exposes
``EMULATOR`` (a ``base.EmulatorKind``) and this module finds it. Listing the
names imports nothing heavy, so the command line can offer them at start-up.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procon.emulators.base import EmulatorKind

_PACKAGE = "procon.emulators"


def emulator_names() -> list[str]:
    """The emulator packages below ``procon.emulators``, found without importing them."""
    package = importlib.import_module(_PACKAGE)
    return sorted(module.name for module in pkgutil.iter_modules(package.__path__) if module.ispkg)


def emulator_kind(name: str) -> EmulatorKind[Any]:
    """The ``EMULATOR`` of ``procon.emulators.<name>``; LookupError if there is no such emulator."""
    if name not in emulator_names():
        raise LookupError(f"no emulator named {name!r}")
    from procon.emulators.base import EmulatorKind

    kind = getattr(importlib.import_module(f"{_PACKAGE}.{name}"), "EMULATOR", None)
    if not isinstance(kind, EmulatorKind):
        raise LookupError(f"procon.emulators.{name} has no EMULATOR descriptor")
    return kind


def key_prefixes() -> list[str]:
    """The API-key prefixes of every emulator (each imported to ask it)."""
    return sorted({prefix for name in emulator_names() for prefix in emulator_kind(name).key_prefixes})

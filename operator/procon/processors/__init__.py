"""The processor registry: every subpackage of this package that exposes ``PLUGIN``.

Adding a processor is adding ``procon/processors/<name>/`` with a ``PLUGIN``
(:class:`procon.processors.plugin.ProcessorPlugin`); nothing outside that
package names it. The registry is read lazily, on first use, because the
processors' own modules import :mod:`procon.processors.base` from this package.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from procon.processors.plugin import ProcessorPlugin


class UnknownProcessor(LookupError):
    """No processor package of that name."""


_discovering = False


@functools.cache
def _discovered() -> tuple[ProcessorPlugin, ...]:
    global _discovering
    if _discovering:
        # A processor package asked for the registry while being imported by it: it must not
        # need the composed API (procon.api.v1alpha1) at import time, only procon.api.schema.
        raise ImportError("a processor package needs the processor registry while it is imported")
    _discovering = True
    try:
        return _discover()
    finally:
        _discovering = False


def _discover() -> tuple[ProcessorPlugin, ...]:
    from procon.processors.plugin import ProcessorPlugin

    found: list[ProcessorPlugin] = []
    for module in pkgutil.iter_modules(__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{module.name}")
        plugin = getattr(package, "PLUGIN", None)
        if plugin is None:
            continue
        if not isinstance(plugin, ProcessorPlugin) or plugin.name != module.name:
            raise TypeError(f"{package.__name__}.PLUGIN must be a ProcessorPlugin named {module.name!r}")
        found.append(plugin)
    return tuple(sorted(found, key=lambda p: (p.order, p.name)))


def plugins() -> tuple[ProcessorPlugin, ...]:
    """Every processor, in the order they were added (:attr:`ProcessorPlugin.order`)."""
    return _discovered()


def names() -> tuple[str, ...]:
    return tuple(p.name for p in _discovered())


def get(name: str) -> ProcessorPlugin:
    """The processor named ``name``; :class:`UnknownProcessor` when no package has that name."""
    for candidate in _discovered():
        if candidate.name == name:
            return candidate
    raise UnknownProcessor(name)

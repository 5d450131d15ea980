"""The ProcessorConnection API: its types (``v1alpha1``) and the CRD generated from them (``crd``).

The names below are read from ``v1alpha1`` on first use, not at import: that
module composes the spec from the processor registry, whose packages import
:mod:`procon.api.schema` from here; importing it eagerly would be a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procon.api.v1alpha1 import (
        GROUP,
        KIND,
        PLURAL,
        VERSION,
        Condition,
        ConditionType,
        DeletionPolicy,
        Mode,
        ProcessorConnection,
        ProcessorConnectionSpec,
        ProcessorConnectionStatus,
    )

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "ConditionType",
    "DeletionPolicy",
    "Mode",
    "ProcessorConnection",
    "ProcessorConnectionSpec",
    "ProcessorConnectionStatus",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from procon.api import v1alpha1

        return getattr(v1alpha1, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

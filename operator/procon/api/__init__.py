"""The ProcessorConnection API: its types (``v1alpha1``) and the CRD generated from them (``crd``)."""

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

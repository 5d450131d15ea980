"""Stripe's form encoding: ``a[b]=c`` and ``a[0]=x`` pairs back to nested values.

stripe-python sends v1 parameters form-encoded with bracket notation
(``enabled_events[0]=*``, ``metadata[k]=v``, booleans as ``true``/``false``);
Stripe also accepts ``expand[]=x``. Whether ``a[0]`` is the first item of a list
or the key "0" of a hash (``metadata[0]=x``) depends on the parameter, so
``parse_form`` keeps both as hashes and ``as_list`` reads a hash as a list where
a parameter expects one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

# A parsed form value: strings at the leaves, hashes for ``a[k]``, ``a[0]`` and ``a[]``.
FormValue: TypeAlias = "str | dict[str, FormValue]"

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
APPENDED = "\x00"  # the prefix of the keys ``a[]`` creates: ordered after indexes, unlike any real key


def split_key(key: str) -> list[str]:
    """``metadata[k]`` -> ``["metadata", "k"]``; a malformed key is one segment, taken literally."""
    match = _KEY.match(key)
    if match is None:
        # ASSUMPTION: malformed bracket keys are kept verbatim, so they surface as unknown parameters.
        return [key]
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, FormValue]:
    """Nest decoded form pairs; later pairs win when the same leaf is set twice."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        segments = split_key(key)
        node = root
        for depth, segment in enumerate(segments):
            if segment == "":
                segment = f"{APPENDED}{len(node)}"
            if depth == len(segments) - 1:
                node[segment] = value
                break
            child = node.get(segment)
            if not isinstance(child, dict):
                # ASSUMPTION: a scalar later given children (``a=1&a[b]=2``) is replaced by them.
                child = {}
                node[segment] = child
            node = child
    return root


def _index(segment: str) -> tuple[int, int] | None:
    if segment.isdigit():
        return (0, int(segment))
    if segment.startswith(APPENDED) and segment[1:].isdigit():
        return (1, int(segment[1:]))
    return None


def as_list(value: FormValue) -> list[FormValue] | None:
    """A hash of ``[0]``/``[1]``/``[]`` entries as a list in index order; None for anything else."""
    if not isinstance(value, dict) or not value:
        return None
    indexes = {segment: _index(segment) for segment in value}
    if any(index is None for index in indexes.values()):
        return None
    return [value[segment] for segment in sorted(value, key=lambda segment: indexes[segment] or (0, 0))]


def fingerprint(method: str, path: str, params: Mapping[str, FormValue]) -> str:
    """A canonical text of a request, to tell whether a reused idempotency key comes with the same request."""
    return json.dumps({"method": method.upper(), "path": path, "params": params}, sort_keys=True)
